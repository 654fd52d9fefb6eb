/**
 * A least-recently-used map with hit/miss counters.
 *
 * @module
 */

import type { CacheStats } from "../cache_stats.ts";

/** A bounded map that evicts the least recently used entry first. */
export class LruCache<K, V> {
  readonly #map = new Map<K, V>();
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  readonly #weigh: (value: V) => number;
  #hits = 0;
  #misses = 0;

  /**
   * Creates an empty cache.
   *
   * @param maxEntries How many entries to keep; 0 keeps none.
   * @param weight How much the entries may weigh together (`maxWeight`),
   * as `weigh` tells, asked on every `set`: an entry may grow while it is
   * held.
   */
  constructor(
    maxEntries: number,
    { maxWeight = Infinity, weigh = () => 0 }: {
      maxWeight?: number;
      weigh?: (value: V) => number;
    } = {},
  ) {
    this.#maxEntries = maxEntries;
    this.#maxWeight = maxWeight;
    this.#weigh = weigh;
  }

  /** Returns the entry and marks it most recently used, counting a hit or a miss. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#map.delete(key);
    this.#map.set(key, value);
    // It may have grown since it was weighed (a module prepared for more limits).
    this.#evictOverWeight();
    return value;
  }

  /** Stores an entry, evicting the least recently used ones beyond the bound. */
  set(key: K, value: V): void {
    this.#map.delete(key);
    if (this.#maxEntries === 0) return;
    this.#map.set(key, value);
    while (this.#map.size > this.#maxEntries) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
    }
    this.#evictOverWeight();
  }

  /** Evicts the least recently used entries while the entries weigh more than the bound. */
  #evictOverWeight(): void {
    if (this.#maxWeight === Infinity) return;
    let weight = 0;
    for (const held of this.#map.values()) weight += this.#weigh(held);
    // The newest goes last: one heavier than the whole bound is not kept either.
    for (const [oldest, held] of this.#map) {
      if (weight <= this.#maxWeight) break;
      weight -= this.#weigh(held);
      this.#map.delete(oldest);
    }
  }

  /** Removes every entry (the counters stay). */
  clear(): void {
    this.#map.clear();
  }

  /** Current counters. */
  stats(): CacheStats {
    const total = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: this.#map.size,
      hitRate: total === 0 ? 0 : this.#hits / total,
    };
  }
}

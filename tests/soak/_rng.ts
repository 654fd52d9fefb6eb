/**
 * The soak's seeded randomness: one generator per caller, so the sequence of
 * calls each caller makes is the same on every run with the same seed.
 *
 * @module
 */

import { random } from "../instrument/_random_program.ts";

/** A seeded pseudo-random generator (mulberry32) with the draws a soak needs. */
export class Rng {
  readonly #next: () => number;

  /** A generator for `seed`, and `stream` (e.g. a caller's number) within it. */
  constructor(seed: number, stream = 0) {
    this.#next = random(
      Math.imul(seed ^ 0x9e37_79b9, 0x85eb_ca6b) + Math.imul(stream, 0xc2b2_ae35),
    );
  }

  /** A float in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** Any 32-bit signed integer. */
  int32(): number {
    return (this.#next() * 2 ** 32) | 0;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** One element of a non-empty array, drawn in proportion to its weight. */
  weighted<T>(items: readonly T[], weight: (item: T) => number): T {
    const total = items.reduce((sum, item) => sum + weight(item), 0);
    let at = this.#next() * total;
    for (const item of items) {
      at -= weight(item);
      if (at < 0) return item;
    }
    return items[items.length - 1]!;
  }

  /** A shuffled copy of `items`. */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = this.int(256);
    return bytes;
  }
}

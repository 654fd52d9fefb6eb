/**
 * A bounded, never-blocking stream of manager events.
 *
 * @module
 */

import type { PluginEvent } from "./plugin_event.ts";

/**
 * Events of a {@linkcode PluginManager} as an async iterator. The buffer is
 * bounded: when a subscriber reads slower than plugins produce, the oldest
 * buffered events are dropped (and counted in `dropped`), so plugins never
 * wait for a subscriber. The iterator ends when the manager closes or the
 * loop exits.
 *
 * @example
 * ```ts
 * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new PluginManager(runtime);
 * const events = manager.subscribe({ bufferSize: 100 });
 * await manager.loadWat("(module)");
 * const first = await events.next();
 * console.log(first.value?.type, events.dropped); // loaded 0
 * await events.return();
 * ```
 */
export class EventSubscription implements AsyncIterableIterator<PluginEvent> {
  readonly #buffer: PluginEvent[] = [];
  readonly #bufferSize: number;
  readonly #onEnd: () => void;
  #waiter: ((result: IteratorResult<PluginEvent>) => void) | undefined;
  #ended = false;
  #dropped = 0;

  /**
   * Creates a subscription; managers do this in `subscribe()`.
   *
   * @param bufferSize How many unread events to keep.
   * @param onEnd Called once when the subscription ends.
   */
  constructor(bufferSize: number, onEnd: () => void) {
    if (!Number.isInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(
        `Cannot subscribe with 'bufferSize' = ${bufferSize}: it must be a positive integer`,
      );
    }
    this.#bufferSize = bufferSize;
    this.#onEnd = onEnd;
  }

  /**
   * Events dropped because the buffer was full.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * for (const id of ["a", "b", "c"]) events.push(new PluginEvent("loaded", id, { name: id }));
   * console.log(events.dropped); // 1
   * ```
   */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Events buffered and not yet read.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * events.push(new PluginEvent("loaded", "a", { name: "a" }));
   * console.log(events.pending); // 1
   * ```
   */
  get pending(): number {
    return this.#buffer.length;
  }

  /**
   * Delivers an event: to a waiting reader, else into the buffer.
   *
   * @param event The event.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * events.push(new PluginEvent("loaded", "a", { name: "a" }));
   * ```
   */
  push(event: PluginEvent): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ value: event, done: false });
      return;
    }
    if (this.#buffer.length >= this.#bufferSize) {
      this.#buffer.shift();
      this.#dropped++;
    }
    this.#buffer.push(event);
  }

  /**
   * The next event, waiting for one if none is buffered.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * events.push(new PluginEvent("loaded", "a", { name: "a" }));
   * console.log((await events.next()).value?.pluginId); // a
   * ```
   */
  next(): Promise<IteratorResult<PluginEvent>> {
    const event = this.#buffer.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) {
      return Promise.reject(new TypeError("Cannot read a subscription twice at the same time"));
    }
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /**
   * Ends the subscription (unread events are discarded).
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * await events.return();
   * console.log((await events.next()).done); // true
   * ```
   */
  return(): Promise<IteratorResult<PluginEvent>> {
    this.end();
    this.#buffer.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * Ends the subscription after the buffered events are read.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * events.push(new PluginEvent("loaded", "a", { name: "a" }));
   * events.end();
   * console.log((await events.next()).value?.pluginId); // a
   * ```
   */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  /**
   * The subscription itself.
   *
   * @example
   * ```ts
   * import { EventSubscription, PluginEvent } from "@wasmplug/wasmplug";
   * const events = new EventSubscription(2, () => {});
   * events.end();
   * for await (const event of events) console.log(event.type);
   * ```
   */
  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * A bounded, never-blocking stream of manager events.
 *
 * @module
 */

import type { PluginEvent } from "./plugin_event.ts";

/**
 * Events of a {@linkcode PluginManager} as an async iterator, from
 * `manager.subscribe()`. The buffer is bounded: when a subscriber reads
 * slower than plugins produce, the oldest buffered events are dropped (and
 * counted in `dropped`), so plugins never wait for a subscriber. The iterator
 * ends when the manager closes or the loop exits.
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
 * console.log(first.value?.type, events.dropped, events.pending); // loaded 0 0
 * await events.return();
 * ```
 */
export interface EventSubscription extends AsyncIterableIterator<PluginEvent> {
  /** Events dropped because the buffer was full. */
  readonly dropped: number;
  /** Events buffered and not yet read. */
  readonly pending: number;
  /** The next event, waiting for one if none is buffered. */
  next(): Promise<IteratorResult<PluginEvent>>;
  /** Ends the subscription now; unread events are discarded. */
  return(): Promise<IteratorResult<PluginEvent>>;
  /** Ends the subscription after the buffered events are read. */
  end(): void;
  /** The subscription itself, for `for await`. */
  [Symbol.asyncIterator](): EventSubscription;
}

/**
 * Per-call options.
 *
 * @module
 */

/**
 * The optional last argument of every plugin call.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat(
 *   '(module (func (export "answer") (result i32) i32.const 42))',
 * );
 * const controller = new AbortController();
 * console.log(await plugin.callI32("answer", [], { signal: controller.signal, timeoutMs: 100 }));
 * ```
 */
export interface CallOptions {
  /**
   * Aborts the call: it rejects with the signal's reason. A worker plugin's
   * call ends within milliseconds wherever its guest is. An inline plugin's
   * guest code holds the host's thread, so nothing on it can abort the call
   * until the guest waits on the host (an async host function or tool,
   * `host_sleep_ms`; not a WASI sleep, which holds the thread): a signal
   * aborted while the guest computes takes effect then, or the call ends at
   * its deadline. Use worker isolation where a call must be
   * stoppable from outside at any moment. A call still waiting for its turn
   * (behind the plugin's running call) leaves the line at once and runs
   * nothing, unless its worker had already begun it ahead of its turn: then,
   * as for a running call, a call that finished answers as it ended.
   */
  signal?: AbortSignal;
  /**
   * Wall-clock budget of this call, in milliseconds: at most the plugin's
   * `maxExecutionTimeMs` (a larger value is a `RangeError`). A bytes, JSON or
   * `run` call spends it on all of its steps.
   *
   * @default {the plugin's maxExecutionTimeMs}
   */
  timeoutMs?: number;
  /**
   * Fuel budget of this call: at most the plugin's `maxFuel` (a larger value
   * is a `RangeError`). A bytes, JSON or `run` call spends it on all of its
   * steps (`alloc`, the function, `dealloc`).
   *
   * @default {the plugin's maxFuel}
   */
  fuel?: number;
}

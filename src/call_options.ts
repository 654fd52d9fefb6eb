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
  /** Aborts the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Wall-clock budget of this call, in milliseconds.
   *
   * @default {the plugin's maxExecutionTimeMs}
   */
  timeoutMs?: number;
  /**
   * Fuel budget of this call.
   *
   * @default {the plugin's maxFuel}
   */
  fuel?: number;
}

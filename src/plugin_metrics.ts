/**
 * Per-plugin execution metrics.
 *
 * @module
 */

/**
 * A snapshot of one plugin's metrics, updated on every call, success or failure.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat(
 *   '(module (func (export "one") (result i32) i32.const 1))',
 * );
 * await plugin.callI32("one", []);
 * const metrics = await plugin.metrics();
 * console.log(metrics.callCount, metrics.successCount); // 1 1
 * ```
 */
export interface PluginMetrics {
  /**
   * Calls made, successful or not (an aborted or timed-out call included).
   * A call the plugin refuses for its state, with a `PluginStateError`
   * before it runs (the plugin is paused, stopping or stopped, or a stop
   * ended the queue it waited in), is not one of its calls: it counts
   * nowhere and has no `executed` event.
   */
  readonly callCount: number;
  /** Calls that returned a result. */
  readonly successCount: number;
  /** Calls that failed (trap, limit, bad argument…). */
  readonly failureCount: number;
  /** `totalExecutionTimeNs / callCount`, or 0 before the first call. */
  readonly avgExecutionTimeNs: number;
  /** Wall-clock time spent in calls, in nanoseconds (microsecond resolution). */
  readonly totalExecutionTimeNs: number;
  /**
   * Median call duration in nanoseconds, within 1 % (from a fixed-size
   * log-bucket histogram of every call), or 0 before the first call.
   */
  readonly p50ExecutionTimeNs: number;
  /** 99th-percentile call duration in nanoseconds, within 1 %, or 0 before the first call. */
  readonly p99ExecutionTimeNs: number;
  /** Longest call, in nanoseconds, or 0 before the first call. */
  readonly maxExecutionTimeNs: number;
  /** Fuel used by all calls (0 while fuel metering is off). */
  readonly fuelConsumed: number;
  /** Largest linear-memory size seen, in bytes. */
  readonly peakMemoryBytes: number;
  /** Linear-memory size after the last call (or the initializers, or creation), in bytes. */
  readonly currentMemoryBytes: number;
  /** When the last call ended, or `null` before the first call. */
  readonly lastExecution: Date | null;
  /**
   * `host_log` records dropped over the rate limit (a burst of 1 000, then
   * 1 000 a second), over the plugin's life.
   */
  readonly droppedLogRecords: number;
}

/**
 * The manager's anomaly detection: what an `anomaly` event says, and how to
 * tune it (`new PluginManager(runtime, { anomaly })`).
 *
 * @module
 */

/**
 * What departed from a plugin's learned baseline:
 * - `"duration"`: a call's wall-clock time (per exported function); in
 *   worker isolation as the host sees it, so waits for the host's thread
 *   (busy with other plugins' host calls or the application's work) count
 *   too: act on a duration anomaly with that in mind. A call whose worker
 *   was started for it (parked) is not learned: its code runs cold (so a
 *   plugin called less often than `idleTimeoutMs` has no duration baseline);
 * - `"fuel"`: the fuel a call consumed (per exported function);
 * - `"memory"`: linear memory grew in calls where it usually does not;
 * - `"error_rate"`: calls fail more often than they used to.
 *
 * @example
 * ```ts
 * import type { AnomalyMetric } from "@wasmplug/wasmplug";
 * const metric: AnomalyMetric = "duration";
 * ```
 */
export type AnomalyMetric = "duration" | "fuel" | "memory" | "error_rate";

/**
 * The payload of an `anomaly` event.
 *
 * | `metric`       | `value` and `baseline`                                  |
 * | -------------- | ------------------------------------------------------- |
 * | `"duration"`   | milliseconds: the call, and the usual (geometric mean)  |
 * | `"fuel"`       | fuel units: the call, and the usual (geometric mean)    |
 * | `"memory"`     | bytes grown per call: recent calls, and the usual       |
 * | `"error_rate"` | fraction of calls that failed: recent calls, the usual  |
 *
 * `score` is how far `value` is from `baseline` in the detector's units (a
 * z-score of the logarithm for duration and fuel, of the count for memory
 * and error rate); an event needs `score >= threshold`.
 *
 * @example
 * ```ts
 * import type { AnomalyDetail } from "@wasmplug/wasmplug";
 * const detail: AnomalyDetail = {
 *   metric: "duration", value: 12.5, baseline: 0.4, score: 9.1, function: "render",
 * };
 * ```
 */
export interface AnomalyDetail {
  /** What departed from the baseline. */
  readonly metric: AnomalyMetric;
  /** What was observed (units in the table above). */
  readonly value: number;
  /** What is usual for this plugin (same units). */
  readonly baseline: number;
  /** How far `value` departs from `baseline`. */
  readonly score: number;
  /** The exported function, for `duration` and `fuel`. */
  readonly function?: string;
}

/**
 * What the manager does to a plugin that keeps behaving abnormally.
 *
 * @example Pause after 3 anomalies, unload after 10
 * ```ts
 * import type { AnomalyActions } from "@wasmplug/wasmplug";
 * const actions: AnomalyActions = { pauseAfter: 3, unloadAfter: 10 };
 * ```
 */
export interface AnomalyActions {
  /**
   * Pause the plugin (`plugin.pause()`; `resume()` undoes it) once this many
   * anomalies were reported for it.
   */
  pauseAfter?: number;
  /** Unload the plugin once this many anomalies were reported for it. */
  unloadAfter?: number;
}

/**
 * How the manager learns each plugin's normal behaviour and reports
 * departures from it.
 *
 * Baselines are learned online, per plugin (and per exported function for
 * duration and fuel): an exponentially weighted mean and variance of the
 * logarithm of duration and fuel, and exponentially weighted rates of memory
 * growth and failures. A single slow call is never an anomaly: duration and
 * fuel need 5 of the last 8 calls above the threshold (and, for duration, at
 * least 4 times and 0.25 ms slower than usual), so scheduler noise does not
 * count; memory and error rate compare the recent calls with the usual rate.
 * A call that ran no guest code (refused, aborted before it began, with
 * arguments that do not fit) or that its caller's signal ended is its
 * caller's doing and is not learned.
 *
 * @example A stricter detector that pauses a misbehaving plugin
 * ```ts
 * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new PluginManager(runtime, {
 *   anomaly: { threshold: 4, warmupCalls: 100, actions: { pauseAfter: 3 } },
 * });
 * manager.addEventListener("anomaly", (event) => {
 *   console.log(`${event.pluginId}: unusual ${event.detail.metric}`);
 * });
 * ```
 */
export interface AnomalyOptions {
  /**
   * How far from its baseline a metric must be to count (the `score` of an
   * event). Higher is quieter.
   *
   * @default {5}
   */
  threshold?: number;
  /** Calls each baseline learns from before it reports anything. @default {30} */
  warmupCalls?: number;
  /** What to do with a plugin after repeated anomalies; nothing by default. */
  actions?: AnomalyActions;
}

/**
 * Options of `new PluginManager(runtime, options)`.
 *
 * @example Without anomaly detection
 * ```ts
 * import { PluginManager, type PluginManagerOptions, WasmRuntime } from "@wasmplug/wasmplug";
 * const options: PluginManagerOptions = { anomaly: false };
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new PluginManager(runtime, options);
 * ```
 */
export interface PluginManagerOptions {
  /**
   * Learn each plugin's normal duration, fuel, memory growth and error rate,
   * and emit an `anomaly` event when it departs from them; `false` turns
   * this off.
   *
   * @default {true}
   */
  anomaly?: boolean | AnomalyOptions;
}

/**
 * Accumulates a plugin's metrics on the call path, cheaply, and hands each
 * call to OpenTelemetry when a provider is registered.
 *
 * @module
 */

import type { AnomalyDetector } from "./_anomaly_detector.ts";
import { LatencyHistogram } from "./_latency_histogram.ts";
import { type CallTelemetryIdentity, exportCall, telemetryActive } from "./_otel.ts";
import type { PluginMetrics } from "../plugin_metrics.ts";

/** Mutable counters behind {@linkcode PluginMetrics} snapshots. */
export class MetricsRecorder {
  callCount = 0;
  successCount = 0;
  failureCount = 0;
  totalExecutionTimeMs = 0;
  fuelConsumed = 0;
  peakMemoryBytes = 0;
  currentMemoryBytes = 0;
  lastExecutionMs = 0;
  /** Fuel used by the last call (0 while fuel metering is off). */
  lastFuelUsed = 0;
  /** Durations of every call, in nanoseconds. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  /**
   * What learns the plugin's calls for the manager watching it for anomalies
   * (the plugin feeds it after each call), or `null`.
   */
  detector: AnomalyDetector | null = null;
  readonly #identity: CallTelemetryIdentity;

  /**
   * Creates the recorder of one plugin.
   *
   * @param owner The plugin, for {@linkcode metricsRecorderOf}.
   * @param identity How the plugin's telemetry names it.
   */
  constructor(owner: object, identity: CallTelemetryIdentity) {
    this.#identity = identity;
    recorders.set(owner, this);
  }

  /**
   * Records one call of `fn` between two `performance.now()` readings;
   * `error` is `undefined` when it succeeded.
   */
  record(
    fn: string,
    startMs: number,
    endMs: number,
    error: unknown,
    memoryBytes: number,
    fuel: number,
  ): void {
    const elapsedMs = endMs - startMs;
    this.callCount++;
    if (error === undefined) this.successCount++;
    else this.failureCount++;
    this.totalExecutionTimeMs += elapsedMs;
    this.latency.record(elapsedMs * 1e6);
    this.fuelConsumed += fuel;
    this.lastFuelUsed = fuel;
    this.observeMemory(memoryBytes);
    this.lastExecutionMs = performance.timeOrigin + endMs;
    if (telemetryActive()) {
      exportCall(this.#identity, { fn, startMs, endMs, error, fuel, memoryBytes });
    }
  }

  /** Records the current memory size outside a call (e.g. after instantiation). */
  observeMemory(memoryBytes: number): void {
    this.currentMemoryBytes = memoryBytes;
    if (memoryBytes > this.peakMemoryBytes) this.peakMemoryBytes = memoryBytes;
  }

  /** Records a memory size seen elsewhere (a command's own instance): the peak only. */
  observePeak(memoryBytes: number): void {
    if (memoryBytes > this.peakMemoryBytes) this.peakMemoryBytes = memoryBytes;
  }

  /** A frozen snapshot; `droppedLogRecords` is counted by the host services. */
  snapshot(droppedLogRecords = 0): PluginMetrics {
    const totalNs = Math.round(this.totalExecutionTimeMs * 1e6);
    return Object.freeze({
      callCount: this.callCount,
      successCount: this.successCount,
      failureCount: this.failureCount,
      avgExecutionTimeNs: this.callCount === 0 ? 0 : Math.round(totalNs / this.callCount),
      totalExecutionTimeNs: totalNs,
      p50ExecutionTimeNs: Math.round(this.latency.percentile(0.5)),
      p99ExecutionTimeNs: Math.round(this.latency.percentile(0.99)),
      maxExecutionTimeNs: Math.round(this.latency.maxNs),
      fuelConsumed: this.fuelConsumed,
      peakMemoryBytes: this.peakMemoryBytes,
      currentMemoryBytes: this.currentMemoryBytes,
      lastExecution: this.callCount === 0 ? null : new Date(Math.round(this.lastExecutionMs)),
      droppedLogRecords,
    });
  }
}

const recorders = new WeakMap<object, MetricsRecorder>();

/**
 * The recorder behind a plugin's metrics (for the manager's anomaly
 * detection and the dashboard), or `undefined` for an object that is no
 * plugin. Internal: not part of the public API.
 */
export function metricsRecorderOf(plugin: object): MetricsRecorder | undefined {
  return recorders.get(plugin);
}

/**
 * The histogram of a plugin's call durations in nanoseconds (the source of
 * `p50ExecutionTimeNs`, `p99ExecutionTimeNs` and Prometheus buckets).
 *
 * @throws {TypeError} If `plugin` is not a plugin.
 */
export function latencyHistogramOf(plugin: object): LatencyHistogram {
  const recorder = recorders.get(plugin);
  if (recorder === undefined) {
    throw new TypeError("Cannot read the latency histogram: expected a WasmPlugin");
  }
  return recorder.latency;
}

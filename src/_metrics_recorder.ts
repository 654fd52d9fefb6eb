/**
 * Accumulates a plugin's metrics on the call path, cheaply.
 *
 * @module
 */

import type { PluginMetrics } from "./plugin_metrics.ts";

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

  /** Records one call between two `performance.now()` readings. */
  record(startMs: number, endMs: number, ok: boolean, memoryBytes: number, fuel: number): void {
    const elapsedMs = endMs - startMs;
    this.callCount++;
    if (ok) this.successCount++;
    else this.failureCount++;
    this.totalExecutionTimeMs += elapsedMs;
    this.fuelConsumed += fuel;
    this.observeMemory(memoryBytes);
    this.lastExecutionMs = performance.timeOrigin + endMs;
  }

  /** Records the current memory size outside a call (e.g. after instantiation). */
  observeMemory(memoryBytes: number): void {
    this.currentMemoryBytes = memoryBytes;
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
      fuelConsumed: this.fuelConsumed,
      peakMemoryBytes: this.peakMemoryBytes,
      currentMemoryBytes: this.currentMemoryBytes,
      lastExecution: this.callCount === 0 ? null : new Date(Math.round(this.lastExecutionMs)),
      droppedLogRecords,
    });
  }
}

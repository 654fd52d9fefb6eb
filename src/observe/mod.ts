/**
 * Entry module of `src/observe/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * What a plugin's metrics, anomaly detection, OpenTelemetry export and the
 * dashboard server are built from.
 *
 * @module
 */

export { AnomalyDetector, resolveAnomalySettings } from "./_anomaly_detector.ts";
export type { AnomalySettings } from "./_anomaly_detector.ts";
export { startDashboardServer } from "./_dashboard_server.ts";
export { latencyHistogramOf, MetricsRecorder, metricsRecorderOf } from "./_metrics_recorder.ts";

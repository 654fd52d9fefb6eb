/**
 * Plugin metrics in the Prometheus text exposition format, version 0.0.4.
 *
 * @module
 */

import type { PluginMetrics } from "../plugin_metrics.ts";

/** The `Content-Type` of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Upper bounds of the `wasmplug_call_duration_seconds` buckets, in
 * nanoseconds: 1 µs (an inline call) to 60 s (a long worker call).
 */
export const DURATION_BUCKET_BOUNDS_NS: readonly number[] = [
  1e3,
  2.5e3,
  5e3,
  1e4,
  2.5e4,
  5e4,
  1e5,
  2.5e5,
  5e5,
  1e6,
  2.5e6,
  5e6,
  1e7,
  2.5e7,
  5e7,
  1e8,
  2.5e8,
  5e8,
  1e9,
  2.5e9,
  5e9,
  1e10,
  3e10,
  6e10,
];

/** The part of a latency histogram the exposition reads. */
export interface DurationHistogram {
  /** Calls recorded. */
  readonly count: number;
  /** Their total duration, in nanoseconds. */
  readonly sumNs: number;
  /** Calls at or below each bound (ns), cumulative. */
  cumulativeCounts(upperBoundsNs: readonly number[]): number[];
}

/** One plugin as the exposition sees it. */
export interface PrometheusPlugin {
  readonly id: string;
  readonly name: string;
  readonly metrics: PluginMetrics;
  /** Its call durations; without one, the histogram has only the `+Inf` bucket. */
  readonly durations?: DurationHistogram | undefined;
}

/**
 * Renders the metrics of `plugins` as Prometheus text: `wasmplug_calls_total`
 * (by `result`), the `wasmplug_call_duration_seconds` histogram,
 * `wasmplug_fuel_consumed_total` and `wasmplug_memory_bytes`, each labelled
 * with `plugin_id` and `plugin_name`.
 */
export function renderPrometheus(plugins: readonly PrometheusPlugin[]): string {
  const lines: string[] = [];
  family(lines, "wasmplug_calls_total", "counter", "Calls made to the plugin, by result.");
  for (const plugin of plugins) {
    const labels = pluginLabels(plugin);
    const { successCount, failureCount } = plugin.metrics;
    lines.push(sample("wasmplug_calls_total", `${labels},result="ok"`, successCount));
    lines.push(sample("wasmplug_calls_total", `${labels},result="error"`, failureCount));
  }

  family(
    lines,
    "wasmplug_call_duration_seconds",
    "histogram",
    "Wall-clock duration of the plugin's calls, in seconds.",
  );
  const bounds = [...DURATION_BUCKET_BOUNDS_NS, Infinity];
  for (const plugin of plugins) {
    const labels = pluginLabels(plugin);
    const name = "wasmplug_call_duration_seconds";
    const durations = plugin.durations;
    const count = durations?.count ?? plugin.metrics.callCount;
    const sumNs = durations?.sumNs ?? plugin.metrics.totalExecutionTimeNs;
    const counts = durations?.cumulativeCounts(bounds) ?? [count];
    const shown = durations === undefined ? [Infinity] : bounds;
    // Bucket counts come from one histogram, so they only grow with the bound;
    // the running maximum keeps that true even for a histogram that rounds.
    let running = 0;
    shown.forEach((bound, i) => {
      running = Math.max(running, counts[i] ?? count);
      const le = bound === Infinity ? "+Inf" : formatNumber(bound / 1e9);
      lines.push(
        sample(`${name}_bucket`, `${labels},le="${le}"`, bound === Infinity ? count : running),
      );
    });
    lines.push(sample(`${name}_sum`, labels, sumNs / 1e9));
    lines.push(sample(`${name}_count`, labels, count));
  }

  family(
    lines,
    "wasmplug_fuel_consumed_total",
    "counter",
    "Fuel (metered instructions) used by the plugin's calls.",
  );
  for (const plugin of plugins) {
    lines.push(
      sample("wasmplug_fuel_consumed_total", pluginLabels(plugin), plugin.metrics.fuelConsumed),
    );
  }

  family(lines, "wasmplug_memory_bytes", "gauge", "The plugin's linear memory size, in bytes.");
  for (const plugin of plugins) {
    lines.push(
      sample("wasmplug_memory_bytes", pluginLabels(plugin), plugin.metrics.currentMemoryBytes),
    );
  }
  return lines.join("\n") + "\n";
}

function family(lines: string[], name: string, type: string, help: string): void {
  lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

function pluginLabels(plugin: PrometheusPlugin): string {
  return `plugin_id="${escapeLabelValue(plugin.id)}",plugin_name="${
    escapeLabelValue(plugin.name)
  }"`;
}

function sample(name: string, labels: string, value: number): string {
  return `${name}{${labels}} ${formatNumber(value)}`;
}

/** A label value with `\`, `"` and line feeds escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** `# HELP` text escapes only `\` and line feeds. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/** A sample value as Go's `ParseFloat` reads it (`+Inf`, `-Inf`, `NaN`). */
function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

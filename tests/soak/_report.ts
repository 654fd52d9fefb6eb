/**
 * A soak report as plain text (for the terminal) or as Markdown (for the
 * README).
 *
 * @module
 */

import type { Counts } from "./_tally.ts";
import type { SoakReport } from "./soak.ts";

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** The rows both formats share: a label and its value. */
function rows(report: SoakReport): [string, string][] {
  const { settings, calls, latency, rss, workers, timers, listeners, manager } = report;
  return [
    [
      "Load",
      `${settings.plugins} plugins × ${settings.callers} callers, ${settings.isolation} isolation, ${
        seconds(settings.durationMs)
      }, fault rate ${settings.faultRate}, seed ${settings.seed}`,
    ],
    [
      "Calls",
      `${integer.format(calls.issued)} issued, ${integer.format(calls.settled)} settled, ${
        integer.format(calls.lost)
      } lost; ${calls.perSecond.toFixed(1)} calls/s over ${seconds(report.elapsedMs)}`,
    ],
    [
      "Latency (successful normal calls)",
      `p50 ${ms(latency.p50)}, p99 ${ms(latency.p99)}, max ${ms(latency.max)} (n = ${
        integer.format(latency.count)
      })`,
    ],
    ["Outcomes", list(report.outcomes)],
    ["Faults injected", list(report.faults)],
    ["Calls ended by their plugin's restart", list(report.collateral)],
    ["Unexpected outcomes", integer.format(report.unexpected.count)],
    [
      "RSS",
      `start ${rss.start.toFixed(1)} MB, end ${rss.end.toFixed(1)} MB, peak ${
        rss.peak.toFixed(1)
      } MB; median ${rss.firstHalfMedian.toFixed(1)} MB in the first half, ${
        rss.secondHalfMedian.toFixed(1)
      } MB in the second (${signed(rss.growth)} MB, bound ${rss.bound} MB; ${rss.samples} samples)`,
    ],
    [
      "Workers",
      `${integer.format(workers.spawned)} spawned, ${
        integer.format(workers.terminated)
      } terminated, ${workers.live} live at the end, at most ${workers.peak} at once; ${
        integer.format(workers.reused)
      } plugin starts took a kept worker`,
    ],
    ["Timers", `${integer.format(timers.created)} created, ${timers.live} live at the end`],
    ["Listeners", `at most ${listeners.peak} on one EventTarget (bound ${listeners.bound})`],
    [
      "Manager",
      `${integer.format(manager.totalCalls)} calls, ${
        integer.format(manager.failedCalls)
      } failed; ${integer.format(manager.events)} events (subscription: ${
        integer.format(manager.subscriptionRead)
      } read, ${integer.format(manager.subscriptionDropped)} dropped)`,
    ],
  ];
}

/** The report as aligned plain text, checks and unexpected outcomes last. */
export function formatText(report: SoakReport): string {
  const table = rows(report);
  const width = Math.max(...table.map(([label]) => label.length)) + 2;
  const lines = [
    "wasmplug soak",
    ...table.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`),
  ];
  lines.push("Checks:");
  for (const check of report.checks) {
    lines.push(`  ${check.passed ? "ok  " : "FAIL"} ${check.name} (${check.detail})`);
  }
  lines.push(...details(report).map((line) => `  ${line}`));
  lines.push(report.passed ? "PASSED" : "FAILED");
  return lines.join("\n");
}

/** The report as a Markdown table and a list of checks. */
export function formatMarkdown(report: SoakReport): string {
  const lines = ["| measure | value |", "| --- | --- |"];
  for (const [label, value] of rows(report)) {
    lines.push(`| ${label} | ${value.replaceAll("|", "\\|")} |`);
  }
  lines.push("");
  for (const check of report.checks) {
    lines.push(`- ${check.passed ? "✅" : "❌"} ${check.name}: ${check.detail}`);
  }
  const more = details(report);
  if (more.length > 0) lines.push("", ...more.map((line) => `    ${line}`));
  return lines.join("\n");
}

/** What went wrong, call by call: unexpected outcomes and lost calls. */
function details(report: SoakReport): string[] {
  const lines: string[] = [];
  for (const example of report.unexpected.examples) lines.push(`unexpected: ${example}`);
  for (const call of report.lostCalls) {
    lines.push(`lost: call #${call.id}, ${call.action} on ${call.plugin}`);
  }
  return lines;
}

function list(counts: Counts): string {
  const entries = Object.entries(counts).sort(([, a], [, b]) => b - a);
  if (entries.length === 0) return "none";
  return entries.map(([name, count]) => `${name} ${integer.format(count)}`).join(", ");
}

function seconds(value: number): string {
  return `${(value / 1000).toFixed(1)} s`;
}

function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

function signed(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(1)}`;
}

/**
 * Writes the README's performance tables from `bench/results.json`, between
 * the `<!-- bench:start -->` and `<!-- bench:end -->` markers, so the figures
 * in the README are always the last run's, never typed by hand.
 *
 * @module
 */

import type { Figure } from "./_measure.ts";

interface Group {
  figures: Figure[];
  ratios: Record<string, number>;
}

interface Results {
  date: string;
  machine: { deno: string; v8: string; os: string; arch: string; cpus: number };
  callOverhead: Group;
  workerCalls: Group & { rssPerIdleWorkerPluginBytes: number };
  peers: Group & {
    extismVersion: string;
    timeouts: Record<
      string,
      | { limitMs: number; medianTimeToErrorMs: number; usableAfterwards: boolean; error: string }
      | string
    >;
  };
}

const DESCRIPTIONS: Record<string, string> = {
  raw: "raw `instance.exports.add()`",
  awaitedRaw: "`await` of an async wrapper of the raw call",
  performanceNow: "`performance.now()`",
  dateNow: "`Date.now()`",
  callI32: 'inline `plugin.callI32("add")`, unmetered',
  callI32Metered: "the same with fuel, depth and deadline instrumentation",
  managerCallI32: '`manager.callI32(handle, "add")`, unmetered',
  postMessageRoundTrip: "postMessage round trip to a bare worker doing the same wasm call",
  workerCallI32: 'worker-isolated `plugin.callI32("add")`',
  crowdCallI32: "the same, 50 worker plugins × 4 callers at once (wall time per call)",
  inlineHostCall: "host (linker) function called from an inline guest",
  workerHostCall: "host (linker) function called from a worker guest",
  bareSpawnAndInstantiate: "spawn a bare Worker and instantiate the module by hand",
  createWorkerPlugin: "create (and stop) a worker plugin, module compiled",
  wasmplugInlineCall:
    'wasmplug inline `callI32("count")` (100-iteration loop), default instrumentation',
  wasmplugInlineCallUnmetered: "the same, unmetered (no fuel, deadline or depth checks)",
  extismInProcessCall: 'Extism in-process `call("count")`',
  wasmplugWorkerCall: 'wasmplug worker-isolated `callI32("count")`',
  extismWorkerCall: 'Extism `runInWorker` `call("count")`',
  wasmplugCreateInline: "wasmplug: create (and stop) an inline plugin, module compiled",
  extismCreateInProcess: "Extism: create (and close) an in-process plugin, module compiled",
  wasmplugCreateWorker: "wasmplug: create (and stop) a worker plugin, module compiled",
  extismCreateWorker: "Extism: create (and close) a `runInWorker` plugin, module compiled",
};

function format(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(1)} ns`;
}

function table(group: Group): string {
  const rows = group.figures.map((f) =>
    `| ${DESCRIPTIONS[f.name] ?? f.name} | ${format(f.medianNs)} | ${format(f.minNs)} | ${
      format(f.maxNs)
    } |`
  );
  const ratios = Object.entries(group.ratios).map(([name, value]) =>
    `- \`${name}\`: ${value.toFixed(2)}x`
  );
  return ["| per operation | median | min | max |", "|---|---:|---:|---:|", ...rows, "", ...ratios]
    .join("\n");
}

/** Renders the performance section's generated part. */
export function renderReport(results: Results): string {
  const { machine } = results;
  return [
    `Measured ${
      results.date.slice(0, 10)
    } on ${machine.os}/${machine.arch}, ${machine.cpus} cores, ` +
    `Deno ${machine.deno} (V8 ${machine.v8}); medians of interleaved rounds.`,
    "",
    "**Inline calls**",
    "",
    table(results.callOverhead),
    "",
    "**Worker isolation**",
    "",
    table(results.workerCalls),
    `- RSS per idle worker plugin: ${
      (results.workerCalls.rssPerIdleWorkerPluginBytes / 1e6).toFixed(1)
    } MB`,
    "",
    `**Side by side with Extism ${results.peers.extismVersion}** (ratios are wasmplug ÷ Extism; below 1 means wasmplug is faster)`,
    "",
    table(results.peers),
    ...Object.entries(results.peers.timeouts).map(([name, t]) =>
      typeof t === "string"
        ? `- timeout, ${name}: ${t}`
        : `- timeout, ${name}: ${
          t.medianTimeToErrorMs.toFixed(0)
        } ms to error at a ${t.limitMs} ms limit, ${
          t.usableAfterwards ? "usable afterwards" : "plugin lost"
        }`
    ),
  ].join("\n");
}

if (import.meta.main) {
  const results = JSON.parse(
    await Deno.readTextFile(new URL("./results.json", import.meta.url)),
  ) as Results;
  const readmeUrl = new URL("../README.md", import.meta.url);
  const readme = await Deno.readTextFile(readmeUrl);
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${start} … ${end} markers`);
  const updated = `${readme.slice(0, from + start.length)}\n${renderReport(results)}\n${
    readme.slice(to)
  }`;
  await Deno.writeTextFile(readmeUrl, updated);
  console.log("README.md performance tables updated from bench/results.json");
}

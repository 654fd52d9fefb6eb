/**
 * Writes the README's performance tables from `bench/results.json`, between
 * the `<!-- bench:start -->` and `<!-- bench:end -->` markers, so the figures
 * in the README are always the last run's, never typed by hand.
 *
 * @module
 */

import type { Figure } from "./_measure.ts";
import { formatTarget, type GoalResult } from "./_goals.ts";

interface Group {
  figures: Figure[];
  ratios: Record<string, number>;
}

interface Results {
  date: string;
  machine: { deno: string; v8: string; os: string; arch: string; cpus: number };
  callOverhead: Group;
  rounds?: Record<string, number>;
  workerCalls: Group & { rssPerIdleWorkerPluginBytes: number; busyCores?: number };
  instrumentation?: Group;
  thirdParty?: Group & { fuel: Record<string, number> };
  otel?: Group;
  peers: Group & {
    extismVersion: string;
    timeouts: Record<
      string,
      | { limitMs: number; medianTimeToErrorMs: number; usableAfterwards: boolean; error: string }
      | string
    >;
  };
  goals?: GoalResult[];
}

const DESCRIPTIONS: Record<string, string> = {
  raw: "raw `instance.exports.add()`",
  awaitedRaw: "`await` of an async wrapper of the raw call",
  performanceNow: "`performance.now()`",
  dateNow: "`Date.now()`",
  callI32: 'inline `plugin.callI32("add")`, unmetered',
  callI32Metered: "the same with fuel, depth and deadline instrumentation",
  managerCallI32: '`manager.callI32(handle, "add")`, unmetered',
  postMessageRoundTrip: "quiet: postMessage round trip to a bare worker doing the same wasm call",
  workerCallI32: 'quiet: worker-isolated `plugin.callI32("add")`',
  workerCallBytes16: 'quiet: worker-isolated `plugin.callBytes("echo")`, 16 B in and out',
  workerCallBytes1MiB: "quiet: the same, 1 MiB in and out",
  ownedCopy16:
    "a new 16-byte `Uint8Array` filled from another (the caller's own copy a bytes call returns)",
  minimalSabRoundTrip:
    "quiet floor: the least a shared-memory round trip costs here (bare worker, one 64-byte block, adaptive spin then sleep)",
  bareChannelRoundTrip: "quiet floor: wasmplug's channel alone, a worker that answers at once",
  busyPostMessageRoundTrip: "busy: postMessage round trip to the bare worker",
  busyMinimalSabRoundTrip: "busy floor: the least a shared-memory round trip costs",
  busyWorkerCallI32: 'busy: worker-isolated `plugin.callI32("add")`',
  crowdCallI32:
    'crowd: `callI32("add")`, 50 worker plugins × 4 callers at once (wall time per call)',
  crowdPostMessageRoundTrip:
    "crowd: postMessage round trips, 50 bare workers × 4 callers at once (wall time per call)",
  workerCallWork:
    'quiet: worker-isolated `plugin.callI32("count", [30000])` (15-20 µs of guest code)',
  inlineCallWork: "the same call inline",
  inlineHostCall: "host (linker) function called from an inline guest",
  workerHostCall: "host (linker) function called from a worker guest",
  bareSpawnAndInstantiate: "spawn a bare Worker and instantiate the module by hand",
  createWorkerPlugin: "create (and stop) a worker plugin, module compiled, in a new worker",
  createWorkerPluginKept:
    "the same in the worker the plugin before left (kept by the runtime, see _Starting a worker_)",
  wasmplugInlineCall:
    'wasmplug inline `callI32("count")` (100-iteration loop), default instrumentation',
  wasmplugInlineCallUnmetered: "the same, unmetered (no fuel, deadline or depth checks)",
  extismInProcessCall: 'Extism in-process `call("count")`',
  clockFloorCall:
    "floor: the plain `count` export awaited between two `performance.now()` reads (a call that times itself)",
  wasmplugWorkerCall: 'wasmplug worker-isolated `callI32("count")`',
  extismWorkerCall: 'Extism `runInWorker` `call("count")`',
  wasmplugCreateInline: "wasmplug: create (and stop) an inline plugin, module compiled",
  extismCreateInProcess: "Extism: create (and close) an in-process plugin, module compiled",
  wasmplugCreateWorker:
    "wasmplug: create (and stop) a worker plugin, module compiled, in a new worker",
  wasmplugCreateWorkerKept: "wasmplug: the same in the worker the plugin before left",
  extismCreateWorker: "Extism: create (and close) a `runInWorker` plugin, module compiled",
  fibPlain: "recursive `fib(30)` in WAT, plain",
  fibInstrumented: "the same, instrumented (fuel, depth, clock deadline: plugins)",
  qsortPlain: "C `qsort` of 20 000 ints with a comparator callback (wasi-libc), plain",
  qsortInstrumented: "the same, instrumented (clock deadline)",
  loopPlain: "loop without calls (FNV-1a over 2 MB), plain",
  loopInstrumented: "the same, instrumented (clock deadline)",
  brotliPlain: "brotli-wasm 3.0.1 (Rust): compress 200 KB at quality 9 and decompress it, plain",
  brotliInstrumented: "the same, instrumented as plugins are",
  tiktokenPlain: "@dqbd/tiktoken 1.0.22 (Rust): encode 27 KB of text, plain",
  tiktokenInstrumented: "the same, instrumented as plugins are",
  sqlitePlain:
    "sql.js 1.17.0 (SQLite, C): 3 000 inserts and a recursive query over 30 000 rows, plain",
  sqliteInstrumented: "the same, instrumented as plugins are",
  quickjsPlain: "quickjs-emscripten 0.32.0 (QuickJS, C): a loop and `fib(20)` in JavaScript, plain",
  quickjsInstrumented: "the same, instrumented as plugins are",
  callI32OtelNoProvider:
    'inline `plugin.callI32("add")`, unmetered, OpenTelemetry API loaded, no provider',
  callI32OtelOff: "the same with the OpenTelemetry check switched off",
  callI32OtelSdk: "the same with an SDK tracer and meter provider (spans and metrics, no exporter)",
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

function goalTable(goals: readonly GoalResult[]): string {
  const ratio = (value: number | null | undefined): string =>
    value === null || value === undefined ? "–" : `${value.toFixed(2)}x`;
  const rows = goals.map((goal) =>
    `| ${goal.description} | ${formatTarget(goal)} | ${ratio(goal.value)} | ${
      ratio(goal.floor)
    } | ${goal.met === null ? "not measured" : goal.met ? "met" : "**not met**"} |`
  );
  return [
    "| goal (ratio of medians) | target | measured | floor | status |",
    "|---|---:|---:|---:|---|",
    ...rows,
  ]
    .join("\n");
}

function roundsText(rounds: Record<string, number> | undefined): string {
  if (rounds === undefined) return "medians of interleaved rounds";
  const counts = Object.values(rounds);
  const [least, most] = [Math.min(...counts), Math.max(...counts)];
  return `median, min and max of ${
    least === most ? least : `${least} to ${most}`
  } interleaved rounds per figure (after a warm-up round)`;
}

/** Renders the performance section's generated part. */
export function renderReport(results: Results): string {
  const { machine } = results;
  return [
    `Measured ${
      results.date.slice(0, 10)
    } on ${machine.os}/${machine.arch}, ${machine.cpus} cores, ` +
    `Deno ${machine.deno} (V8 ${machine.v8}); ${roundsText(results.rounds)}.`,
    "",
    ...(results.goals === undefined ? [] : ["**Goals**", "", goalTable(results.goals), ""]),
    "**Inline calls**",
    "",
    table(results.callOverhead),
    "",
    `**Worker isolation** (quiet: nothing else runs; busy: ${
      results.workerCalls.busyCores === undefined
        ? "all cores but one"
        : `${results.workerCalls.busyCores} of ${machine.cpus} cores`
    } spinning in child processes; crowd: many callers at once)`,
    "",
    table(results.workerCalls),
    `- RSS per idle worker plugin: ${
      (results.workerCalls.rssPerIdleWorkerPluginBytes / 1e6).toFixed(1)
    } MB`,
    "",
    ...(results.instrumentation === undefined ? [] : [
      "**Instrumentation overhead** (one export call on a `WebAssembly.Instance`, plain bytes beside instrumented bytes)",
      "",
      table(results.instrumentation),
      "",
    ]),
    ...(results.thirdParty === undefined ? [] : [
      "**Instrumentation overhead on third-party code** (packages from npm run by their own glue code, on plain and on instrumented bytes; one process per sample, medians over processes)",
      "",
      table(results.thirdParty),
      `- fuel per run, the same in every process: ${
        Object.entries(results.thirdParty.fuel).map(([name, units]) =>
          `${name} ${units.toLocaleString("en-US")}`
        ).join(", ")
      }`,
      "",
    ]),
    ...(results.otel === undefined ? [] : [
      "**OpenTelemetry** (what a call pays without a provider, and with one)",
      "",
      table(results.otel),
      "",
    ]),
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

/**
 * Formats markdown as `deno fmt` does with the project's settings, so that
 * `deno fmt --check` passes on the README without a manual step.
 */
async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: new URL("..", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { success, stdout } = await child.output();
  if (!success) throw new Error("deno fmt failed on the generated README tables");
  return new TextDecoder().decode(stdout);
}

/**
 * Rewrites the README's generated part from `bench/results.json`; what
 * `deno task bench` does after measuring, and `deno task bench:report` alone.
 * Needs `--allow-run` to format the tables with `deno fmt`.
 */
export async function updateReadme(): Promise<void> {
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
  const report = await formatMarkdown(renderReport(results));
  const updated = `${readme.slice(0, from + start.length)}\n\n${report}\n${readme.slice(to)}`;
  await Deno.writeTextFile(readmeUrl, updated);
  console.log("README.md performance tables updated from bench/results.json");
}

if (import.meta.main) await updateReadme();

/**
 * `deno task bench [--rounds N] [--only group,…]`: runs the benchmark groups,
 * prints their tables, writes `bench/results.json` with the machine it ran on
 * and the goals met or not (`bench/_goals.ts`), then the README's tables from
 * that file (`bench/report.ts`, which also runs alone).
 *
 * - `--rounds N`: interleaved rounds of every group (after one warm-up round).
 *   Default: each group's own (30 for inline calls, 21 for worker calls and
 *   instrumentation, 7 for third-party code, 15 for Extism).
 * - `--only callOverhead,workerCalls,instrumentation,thirdParty,peers,otel`: measure only these
 *   groups; the others keep their figures from the last `results.json`.
 *
 * Needs `--allow-run` (busy cores, `_load.ts`), read, and write to `bench/`
 * and `README.md`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchCallOverhead } from "./call_overhead.ts";
import type { Figure } from "./_measure.ts";
import { benchInstrumentation } from "./instrumentation.ts";
import { benchWorkerCalls } from "./worker_calls.ts";
import { benchExtism } from "./peers/extism.ts";
import { benchOtel } from "./otel.ts";
import { benchThirdParty } from "./third_party.ts";
import { evaluateGoals, formatTarget, type GroupName } from "./_goals.ts";
import { updateReadme } from "./report.ts";

/**
 * The groups, in the order they run. `peers` runs last: its timeout trials
 * leave Extism's timed-out worker threads spinning (they keep a core busy
 * after `close()`, measured 2026-12-04), which would slow every group after it.
 */
const GROUPS: readonly GroupName[] = [
  "callOverhead",
  "workerCalls",
  "instrumentation",
  "thirdParty",
  "otel",
  "peers",
];
const DEFAULT_ROUNDS: Record<GroupName, number> = {
  callOverhead: 30,
  workerCalls: 21,
  instrumentation: 21,
  thirdParty: 7,
  peers: 15,
  otel: 30,
};

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string" }, only: { type: "string" } },
});
const roundsFlag = flags.rounds === undefined ? undefined : Number(flags.rounds);
if (roundsFlag !== undefined && !(Number.isInteger(roundsFlag) && roundsFlag > 0)) {
  throw new RangeError(
    `Cannot run as '--rounds' must be a positive integer: current value is ${flags.rounds}`,
  );
}
const only = flags.only?.split(",").map((name) => name.trim()) ?? [...GROUPS];
for (const name of only) {
  if (!GROUPS.includes(name as GroupName)) {
    throw new RangeError(
      `Cannot run as '--only' names no group "${name}": expected ${GROUPS.join(", ")}`,
    );
  }
}
const selected = (group: GroupName): boolean => only.includes(group);
const roundsOf = (group: GroupName): number => roundsFlag ?? DEFAULT_ROUNDS[group];

function table(title: string, figures: Figure[], ratios: Record<string, number>): void {
  console.log(`\n## ${title}\n`);
  console.log("| figure | median ns/op | min | max |");
  console.log("|---|---:|---:|---:|");
  for (const f of figures) {
    console.log(
      `| ${f.name} | ${f.medianNs.toFixed(1)} | ${f.minNs.toFixed(1)} | ${f.maxNs.toFixed(1)} |`,
    );
  }
  for (const [name, ratio] of Object.entries(ratios)) {
    console.log(`- ${name}: ${ratio.toFixed(2)}x`);
  }
}

const resultsUrl = new URL("./results.json", import.meta.url);
let previous: Record<string, unknown> = {};
if (only.length < GROUPS.length) {
  try {
    previous = JSON.parse(await Deno.readTextFile(resultsUrl));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
const groups: Record<string, unknown> = {};
const rounds: Record<string, number> = { ...(previous.rounds as Record<string, number>) };
const started = performance.now();

if (selected("callOverhead")) {
  const callOverhead = await benchCallOverhead({ rounds: roundsOf("callOverhead") });
  table("Inline call overhead", callOverhead.figures, callOverhead.ratios);
  groups.callOverhead = callOverhead;
  rounds.callOverhead = roundsOf("callOverhead");
}
if (selected("workerCalls")) {
  const workerCalls = await benchWorkerCalls({ rounds: roundsOf("workerCalls") });
  table("Worker isolation", workerCalls.figures, workerCalls.ratios);
  console.log(
    `- RSS per idle worker plugin: ${
      (workerCalls.rssPerIdleWorkerPluginBytes / 1e6).toFixed(1)
    } MB`,
  );
  groups.workerCalls = workerCalls;
  rounds.workerCalls = roundsOf("workerCalls");
}
if (selected("instrumentation")) {
  const instrumentation = await benchInstrumentation({ rounds: roundsOf("instrumentation") });
  table("Instrumentation overhead", instrumentation.figures, instrumentation.ratios);
  groups.instrumentation = instrumentation;
  rounds.instrumentation = roundsOf("instrumentation");
}
if (selected("thirdParty")) {
  const thirdParty = await benchThirdParty({ rounds: roundsOf("thirdParty") });
  table("Instrumentation overhead on third-party code", thirdParty.figures, thirdParty.ratios);
  groups.thirdParty = thirdParty;
  rounds.thirdParty = roundsOf("thirdParty");
}
if (selected("otel")) {
  const otel = await benchOtel({ rounds: roundsOf("otel") });
  table("OpenTelemetry overhead (inline calls)", otel.figures, otel.ratios);
  groups.otel = otel;
  rounds.otel = roundsOf("otel");
}
if (selected("peers")) {
  const peers = await benchExtism({ rounds: roundsOf("peers") });
  table(`Side by side with Extism ${peers.extismVersion}`, peers.figures, peers.ratios);
  for (const [name, t] of Object.entries(peers.timeouts)) {
    console.log(
      `- timeout ${name}: ${
        typeof t === "string"
          ? t
          : `${t.medianTimeToErrorMs.toFixed(1)} ms, usable afterwards: ${t.usableAfterwards}`
      }`,
    );
  }
  groups.peers = peers;
  rounds.peers = roundsOf("peers");
}

const merged = { ...previous, ...groups } as Parameters<typeof evaluateGoals>[0];
const goals = evaluateGoals(merged);
console.log("\n## Goals\n");
for (const goal of goals) {
  const value = goal.value === null ? "not measured" : `${goal.value.toFixed(2)}x`;
  const status = goal.met === null ? "" : goal.met ? "met" : "NOT MET";
  const floor = goal.floor === null ? "" : `, floor ${goal.floor.toFixed(2)}x`;
  console.log(`- ${goal.description}: ${value} (goal ${formatTarget(goal)}${floor}) ${status}`);
}
console.log(`\nMeasured in ${((performance.now() - started) / 1000).toFixed(0)} s`);

const results = {
  ...previous,
  date: new Date().toISOString(),
  machine: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
  },
  rounds,
  ...groups,
  goals,
};
await Deno.writeTextFile(resultsUrl, JSON.stringify(results, null, 2) + "\n");
await updateReadme();

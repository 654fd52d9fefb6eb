/**
 * `deno task bench`: runs every benchmark group and writes
 * `bench/results.json` with the machine it ran on.
 *
 * @module
 */

import { benchCallOverhead } from "./call_overhead.ts";
import type { Figure } from "./_measure.ts";
import { benchWorkerCalls } from "./worker_calls.ts";
import { benchExtism } from "./peers/extism.ts";

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

const callOverhead = await benchCallOverhead();
table("Inline call overhead", callOverhead.figures, callOverhead.ratios);
const workerCalls = await benchWorkerCalls();
table("Worker isolation", workerCalls.figures, workerCalls.ratios);
console.log(
  `- RSS per idle worker plugin: ${(workerCalls.rssPerIdleWorkerPluginBytes / 1e6).toFixed(1)} MB`,
);

const peers = await benchExtism();
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

const results = {
  date: new Date().toISOString(),
  machine: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
  },
  callOverhead,
  workerCalls,
  peers,
};
await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify(results, null, 2) + "\n",
);

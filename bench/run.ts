/**
 * `deno task bench`: runs every benchmark group and writes
 * `bench/results.json` with the machine it ran on.
 *
 * @module
 */

import { benchCallOverhead } from "./call_overhead.ts";

const callOverhead = await benchCallOverhead();
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
};
await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify(results, null, 2) + "\n",
);

console.log("| figure | median ns/op | min | max |");
console.log("|---|---:|---:|---:|");
for (const f of callOverhead.figures) {
  console.log(
    `| ${f.name} | ${f.medianNs.toFixed(1)} | ${f.minNs.toFixed(1)} | ${f.maxNs.toFixed(1)} |`,
  );
}
for (const [name, ratio] of Object.entries(callOverhead.ratios)) {
  console.log(`${name}: ${ratio.toFixed(2)}x`);
}

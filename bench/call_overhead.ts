/**
 * Inline call overhead: `plugin.callI32("add")` beside a raw
 * `instance.exports.add()` call, an awaited async wrapper of that raw call,
 * and the clock reads that metrics need, all measured in the same run.
 *
 * The variants are interleaved round by round and reported as medians, since
 * the machine is shared and noisy.
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/_artifact.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';

/** One measured figure: nanoseconds per operation over the rounds. */
export interface Figure {
  name: string;
  medianNs: number;
  minNs: number;
  maxNs: number;
}

function summarize(name: string, samples: number[]): Figure {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    name,
    medianNs: sorted[Math.floor(sorted.length / 2)]!,
    minNs: sorted[0]!,
    maxNs: sorted[sorted.length - 1]!,
  };
}

async function timeAsync(
  iterations: number,
  body: (i: number) => Promise<unknown>,
): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await body(i);
  return ((performance.now() - start) * 1e6) / iterations;
}

function timeSync(iterations: number, body: (i: number) => unknown): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) body(i);
  return ((performance.now() - start) * 1e6) / iterations;
}

/** Runs the comparison and returns its figures and ratios. */
export async function benchCallOverhead(
  options: { rounds?: number; iterations?: number } = {},
): Promise<{ figures: Figure[]; ratios: Record<string, number> }> {
  const { rounds = 30, iterations = 20_000 } = options;
  await using runtime = new WasmRuntime({
    execution: { isolation: "inline", fuelMetering: false, epochInterruption: false },
  });
  await using plugin = await runtime.createPluginFromWat(ADD_WAT, { name: "add" });
  const compiled = await runtime.compileWat("add", ADD_WAT);
  const { instance } = await WebAssembly.instantiate(
    artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>,
  );
  const add = instance.exports.add as (a: number, b: number) => number;
  // deno-lint-ignore require-await
  const wrapped = async (a: number, b: number): Promise<number> => add(a, b);

  const samples: Record<string, number[]> = {
    raw: [],
    awaitedRaw: [],
    performanceNow: [],
    dateNow: [],
    callI32: [],
  };
  let sink = 0;
  for (let round = 0; round < rounds; round++) {
    samples.raw!.push(timeSync(iterations * 10, (i) => (sink += add(i, 1))));
    samples.awaitedRaw!.push(
      await timeAsync(iterations, async (i) => (sink += await wrapped(i, 1))),
    );
    samples.performanceNow!.push(timeSync(iterations, () => (sink += performance.now())));
    samples.dateNow!.push(timeSync(iterations, () => (sink += Date.now())));
    samples.callI32!.push(
      await timeAsync(iterations, async (i) => (sink += await plugin.callI32("add", [i, 1]))),
    );
  }
  if (sink === 0.5) console.log(sink); // keeps the loops from being optimized away
  const figures = Object.entries(samples).map(([name, values]) => summarize(name, values));
  const median = (name: string): number => figures.find((f) => f.name === name)!.medianNs;
  const floor = median("awaitedRaw") + 2 * median("performanceNow");
  return {
    figures,
    ratios: {
      callI32VsAwaitedRawPlusClocks: median("callI32") / floor,
      callI32VsRaw: median("callI32") / median("raw"),
      awaitedRawVsRaw: median("awaitedRaw") / median("raw"),
    },
  };
}

/**
 * What the instrumentation costs on third-party code: packages from npm that
 * ship WebAssembly (`tests/fixtures/third_party/_workloads.ts`: Rust and C, compression,
 * tokenizing, SQLite, a JavaScript interpreter), each driven by its own glue
 * code, on its plain bytes and on the bytes instrumented as plugins' are
 * (`_instrument_all.ts` there).
 *
 * Each sample is one process (`_run.ts` there): the package is loaded,
 * run twice untimed (V8 compiles and tiers up wasm lazily), then timed over
 * a few runs, whose median is the sample. Plain and instrumented processes
 * alternate, round by round, in an order that flips each round. The group
 * also checks what the instrumentation must not change: every process
 * computes the same result, and every instrumented one consumes the same
 * fuel (it throws otherwise; `Math.random` is seeded the same in each).
 *
 * @module
 */

import type { Figure } from "./_measure.ts";
import { runWorkloadProcess } from "../tests/fixtures/third_party/_run_process.ts";
import { WORKLOADS } from "../tests/fixtures/third_party/_workloads.ts";

/** The group's figures (ns per workload run), ratios and each workload's fuel. */
export interface ThirdPartyResults {
  figures: Figure[];
  ratios: Record<string, number>;
  /** Fuel one run of each workload consumes, instrumented. */
  fuel: Record<string, number>;
}

function middle(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs the group. */
export async function benchThirdParty(
  options: { rounds?: number; runs?: number; onRound?: (round: number) => void } = {},
): Promise<ThirdPartyResults> {
  const { rounds = 5, runs = 7 } = options;
  const names = Object.keys(WORKLOADS);
  const samples: Record<string, number[]> = {};
  const results = new Map<string, string | number>();
  const fuel: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const order = round % 2 === 0 ? [false, true] : [true, false];
      for (const instrumented of order) {
        const report = await runWorkloadProcess(name, { instrumented, runs });
        if (instrumented && report.modules === 0) {
          throw new Error(`${name}: nothing was instrumented`);
        }
        const expected = results.get(name);
        if (expected === undefined) results.set(name, report.result);
        else if (report.result !== expected) {
          throw new Error(
            `${name} computed ${report.result} in one process, ${expected} in another`,
          );
        }
        if (instrumented) {
          if (fuel[name] === undefined) fuel[name] = report.fuel;
          else if (report.fuel !== fuel[name]) {
            throw new Error(
              `${name} consumed ${report.fuel} units in one process, ${fuel[name]} in another`,
            );
          }
        }
        const key = `${name}${instrumented ? "Instrumented" : "Plain"}`;
        (samples[key] ??= []).push(middle(report.timesMs) * 1e6);
      }
    }
    options.onRound?.(round + 1);
  }
  const figures: Figure[] = Object.entries(samples).map(([name, values]) => ({
    name,
    medianNs: middle(values),
    minNs: Math.min(...values),
    maxNs: Math.max(...values),
  }));
  const medianOf = (key: string): number => figures.find((f) => f.name === key)!.medianNs;
  const ratios: Record<string, number> = {};
  for (const name of names) {
    ratios[`${name}InstrumentedVsPlain`] = medianOf(`${name}Instrumented`) /
      medianOf(`${name}Plain`);
  }
  return { figures, ratios, fuel };
}

if (import.meta.main) {
  const result = await benchThirdParty({ onRound: (round) => console.error(`round ${round}`) });
  console.log(JSON.stringify(result, null, 2));
}

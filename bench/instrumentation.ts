/**
 * What instrumentation costs at run time: the same module's export run through
 * a `WebAssembly.Instance` of its plain bytes and of its instrumented bytes
 * (fuel, call depth and deadline, as the runtime instruments them, with
 * `InstanceLimits.prepare()` before every call as the runtime does), so the
 * ratio is the instrumentation's alone, with no plugin call path around it.
 *
 * Workloads: two call-heavy ones, a recursive `fib` in WAT and wasi-libc's
 * `qsort` calling a C comparator through a function pointer
 * (`bench/fixtures/qsort.c`, built by `bench/fixtures/build.sh`), and a loop
 * without calls (FNV-1a over a 64 KiB buffer). Each is instrumented as
 * plugins of both isolations are. Interleaved round by round, medians.
 *
 * @module
 */

import { InstanceLimits, instrument, type InstrumentResult } from "../src/instrument/instrument.ts";
import type { DeadlineMode } from "../src/instrument/instrument.ts";
import { DEFAULT_LIMITS } from "../mod.ts";
import { wat } from "../tests/instrument/_wat.ts";
import { FIB_FUNC, HASH_FUNC } from "../tests/fixtures/fib.ts";
import { type Figure, interleave, median } from "./_measure.ts";

const FIB_WAT = `(module ${FIB_FUNC})`;

const LOOP_WAT = `(module
  (memory (export "memory") 1)
  ${HASH_FUNC})`;

const QSORT_WASM = new URL("./fixtures/qsort.wasm", import.meta.url);

/** A plugin without `maxFuel` gets this budget; it never runs out here. */
const FUEL = BigInt(Number.MAX_SAFE_INTEGER);

interface Workload {
  /** Prefix of the figure names. */
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly fn: string;
  readonly arg: number;
  /** Calls per sample, so that a sample takes tens of milliseconds. */
  readonly iterations: number;
}

/** The instrumented variants, by the deadline mode they get. */
const MODES: Record<string, DeadlineMode> = {
  Instrumented: "clock",
};

/** One instance of a workload's bytes, plain or instrumented, ready to call. */
function instantiate(workload: Workload, mode: DeadlineMode | null): (n: number) => number {
  let result: InstrumentResult | null = null;
  if (mode !== null) {
    // The passes and options `src/compile/_artifact.ts` asks for with default limits.
    result = instrument(workload.bytes, {
      fuel: true,
      callDepth: true,
      deadline: mode,
      // A worker plugin's module also exports its state, which changes no code.
      exportState: true,
      validate: false,
    });
  }
  const instance = new WebAssembly.Instance(
    new WebAssembly.Module((result?.bytes ?? workload.bytes) as Uint8Array<ArrayBuffer>),
  );
  const f = instance.exports[workload.fn] as (n: number) => number;
  if (result === null) return f;
  const limits = new InstanceLimits(instance, result);
  return (n) => {
    const now = performance.now();
    limits.prepare({
      fuel: FUEL,
      maxCallDepth: DEFAULT_LIMITS.maxCallDepth,
      deadline: now + DEFAULT_LIMITS.maxExecutionTimeMs,
      now,
    });
    return f(n);
  };
}

/** Runs the comparison and returns its figures (ns per export call) and ratios. */
export async function benchInstrumentation(
  options: { rounds?: number } = {},
): Promise<{ figures: Figure[]; ratios: Record<string, number> }> {
  const { rounds = 21 } = options;
  const workloads: Workload[] = [
    { name: "fib", bytes: wat(FIB_WAT), fn: "fib", arg: 30, iterations: 5 },
    {
      name: "qsort",
      bytes: await Deno.readFile(QSORT_WASM),
      fn: "sort",
      arg: 20_000,
      iterations: 10,
    },
    { name: "loop", bytes: wat(LOOP_WAT), fn: "hash", arg: 2_000_000, iterations: 10 },
  ];
  const variants: Parameters<typeof interleave>[0] = {};
  for (const workload of workloads) {
    const plain = instantiate(workload, null);
    const expected = plain(workload.arg);
    const calls: Record<string, (n: number) => number> = { Plain: plain };
    for (const [suffix, mode] of Object.entries(MODES)) {
      const call = instantiate(workload, mode);
      const value = call(workload.arg);
      if (value !== expected) {
        throw new Error(`${workload.name} (${mode}) computed ${value}, not ${expected}`);
      }
      calls[suffix] = call;
    }
    for (const [suffix, call] of Object.entries(calls)) {
      variants[`${workload.name}${suffix}`] = {
        iterations: workload.iterations,
        run: (n) => {
          for (let i = 0; i < n; i++) {
            if (call(workload.arg) !== expected) throw new Error(`${workload.name} changed`);
          }
        },
      };
    }
  }
  const figures = await interleave(variants, rounds);
  const ratios: Record<string, number> = {};
  for (const { name } of workloads) {
    for (const suffix of Object.keys(MODES)) {
      ratios[`${name}${suffix}VsPlain`] = median(figures, `${name}${suffix}`) /
        median(figures, `${name}Plain`);
    }
  }
  return { figures, ratios };
}

if (import.meta.main) {
  // deno run --allow-read bench/instrumentation.ts [--rounds N]
  const at = Deno.args.indexOf("--rounds");
  const rounds = at >= 0 ? Number(Deno.args[at + 1]) : undefined;
  const { figures, ratios } = await benchInstrumentation(rounds === undefined ? {} : { rounds });
  for (const f of figures) {
    console.log(
      `${f.name}: ${(f.medianNs / 1e6).toFixed(2)} ms (${(f.minNs / 1e6).toFixed(2)}–${
        (f.maxNs / 1e6).toFixed(2)
      })`,
    );
  }
  for (const [name, value] of Object.entries(ratios)) console.log(`${name}: ${value.toFixed(2)}x`);
}

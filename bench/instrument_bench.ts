/**
 * Measures what the instrumenter costs: run-time overhead of instrumented
 * code on three compute workloads, and instrumenting throughput on a large
 * synthesized module and on the 10 MB+ module clang built for the tests
 * (`tests/fixtures/large/large.wasm`). Variants are interleaved round by
 * round and medians compared, since the machine is noisy.
 *
 * Run with `deno run --allow-read bench/instrument_bench.ts [--rounds N]`
 * (default 15 rounds after 3 warm-up rounds).
 *
 * @module
 */

import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
} from "../src/instrument/instrument.ts";
import { wat } from "../tests/instrument/_wat.ts";
import { medianOf } from "./_measure.ts";
import { FIB_FUNC, HASH_FUNC } from "../tests/fixtures/fib.ts";

const WORKLOADS = `(module
  (memory (export "memory") 32)
  ${HASH_FUNC}
  ${FIB_FUNC}
  ;; Fills n i32s with an LCG sequence, then quicksorts them in place.
  (func (export "sort") (param $n i32) (result i32) (local $i i32) (local $x i32)
    i32.const 12345 local.set $x
    (loop $fill
      local.get $i i32.const 2 i32.shl
      local.get $x i32.const 1103515245 i32.mul i32.const 12345 i32.add local.tee $x
      i32.store
      local.get $i i32.const 1 i32.add local.tee $i local.get $n i32.lt_u br_if $fill)
    i32.const 0 local.get $n i32.const 1 i32.sub call $qsort
    i32.const 400 i32.load)
  (func $qsort (param $lo i32) (param $hi i32) (local $p i32) (local $i i32) (local $j i32) (local $t i32)
    (loop $tail
      local.get $lo local.get $hi i32.ge_s if return end
      local.get $hi i32.const 2 i32.shl i32.load local.set $p
      local.get $lo local.set $i
      local.get $lo local.set $j
      (block $done (loop $part
        local.get $j local.get $hi i32.ge_s br_if $done
        local.get $j i32.const 2 i32.shl i32.load local.get $p i32.lt_s
        if
          local.get $i i32.const 2 i32.shl i32.load local.set $t
          local.get $i i32.const 2 i32.shl local.get $j i32.const 2 i32.shl i32.load i32.store
          local.get $j i32.const 2 i32.shl local.get $t i32.store
          local.get $i i32.const 1 i32.add local.set $i
        end
        local.get $j i32.const 1 i32.add local.set $j
        br $part))
      local.get $i i32.const 2 i32.shl i32.load local.set $t
      local.get $i i32.const 2 i32.shl local.get $hi i32.const 2 i32.shl i32.load i32.store
      local.get $hi i32.const 2 i32.shl local.get $t i32.store
      local.get $lo local.get $i i32.const 1 i32.sub call $qsort
      local.get $i i32.const 1 i32.add local.set $lo
      br $tail)))`;

const CASES: { name: string; fn: string; arg: number }[] = [
  { name: "hash loop", fn: "hash", arg: 30_000_000 },
  { name: "recursive fib", fn: "fib", arg: 32 },
  { name: "memory-heavy sort", fn: "sort", arg: 300_000 },
];

const VARIANTS: Record<string, InstrumentOptions | null> = {
  plain: null,
  "all (clock)": { fuel: true, callDepth: true, deadline: "clock" },
  "fuel only": { fuel: true },
  "depth only": { callDepth: true },
  "deadline (clock)": { deadline: "clock" },
};

/** Median time of each variant on one workload, and its ratio to plain. */
export interface OverheadRow {
  readonly workload: string;
  readonly rounds: number;
  readonly medianMs: Record<string, number>;
  readonly ratio: Record<string, number>;
}

/** Runs every workload under every variant, interleaved, `rounds` times. */
export function overhead(rounds: number): OverheadRow[] {
  const source = wat(WORKLOADS);
  const runners = Object.entries(VARIANTS).map(([name, options]) => {
    const result = options === null ? null : instrument(source, options);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(result?.bytes ?? source));
    const limits = result === null ? null : new InstanceLimits(instance, result);
    return { name, instance, limits };
  });
  const rows: OverheadRow[] = [];
  for (const { name, fn, arg } of CASES) {
    const times = new Map<string, number[]>(runners.map((r) => [r.name, []]));
    let expected: unknown = undefined;
    for (let round = -3; round < rounds; round++) {
      for (const runner of runners) {
        runner.limits?.prepare({ fuel: 1n << 62n, maxCallDepth: 100_000 });
        const f = runner.instance.exports[fn] as (n: number) => number;
        const started = performance.now();
        const value = f(arg);
        const elapsed = performance.now() - started;
        expected ??= value;
        if (value !== expected) {
          throw new Error(`${runner.name} computed ${value}, not ${expected}`);
        }
        if (round >= 0) times.get(runner.name)!.push(elapsed); // negative rounds warm up
      }
    }
    const medianMs: Record<string, number> = {};
    const ratio: Record<string, number> = {};
    const base = medianOf(times.get("plain")!);
    for (const r of runners) {
      medianMs[r.name] = medianOf(times.get(r.name)!);
      ratio[r.name] = medianMs[r.name]! / base;
    }
    rows.push({ workload: name, rounds, medianMs, ratio });
  }
  return rows;
}

function synthesize(functions: number): Uint8Array<ArrayBuffer> {
  const parts = ["(module (memory 1) (global $g (mut i32) (i32.const 0))"];
  for (let i = 0; i < functions; i++) {
    parts.push(`(func $f${i} (param i32 i32) (result i32) (local i32 i64 f64)
      (block $out (loop $l
        local.get 0 i32.const ${i} i32.add local.get 1 i32.mul local.set 2
        local.get 2 i32.const 3 i32.and
        (if (then local.get 2 i32.load offset=${i % 1000} global.set $g)
            (else local.get 3 i64.const ${i * 7919} i64.xor local.set 3))
        local.get 4 f64.const 1.5 f64.mul local.set 4
        (br_table $out $l $out (local.get 2))
        local.get 0 i32.const 1 i32.sub local.tee 0 br_if $l))
      local.get 0 ${i > 0 ? `local.get 0 local.get 1 call $f${i - 1} i32.add` : ""}
      local.get 3 i32.wrap_i64 i32.add global.get $g i32.add)`);
  }
  parts.push(")");
  return wat(parts.join("\n"));
}

/** Instrumenting speed on one module. */
export interface ThroughputRow {
  readonly module: string;
  readonly megabytes: number;
  readonly validate: boolean;
  readonly medianMs: number;
  readonly megabytesPerSecond: number;
}

const LARGE_FIXTURE = new URL("../tests/fixtures/large/large.wasm", import.meta.url);

/** Times `instrument()` with all passes on the synthesized and the clang-built module. */
export function throughput(rounds: number): ThroughputRow[] {
  const modules: [string, Uint8Array][] = [["synthesized (12 000 functions)", synthesize(12_000)]];
  try {
    modules.push(["clang-built (tests/fixtures/large)", Deno.readFileSync(LARGE_FIXTURE)]);
  } catch {
    // The fixture is optional here.
  }
  const rows: ThroughputRow[] = [];
  for (const [name, module] of modules) {
    const megabytes = module.length / 1e6;
    for (const validate of [false, true]) {
      const times: number[] = [];
      for (let i = 0; i < rounds + 1; i++) {
        const started = performance.now();
        instrument(module, { fuel: true, callDepth: true, deadline: "clock", validate });
        if (i > 0) times.push(performance.now() - started);
      }
      const medianMs = medianOf(times);
      rows.push({
        module: name,
        megabytes,
        validate,
        medianMs,
        megabytesPerSecond: megabytes / (medianMs / 1000),
      });
    }
  }
  return rows;
}

if (import.meta.main) {
  const roundsAt = Deno.args.indexOf("--rounds");
  const rounds = roundsAt >= 0 ? Number(Deno.args[roundsAt + 1]) : 15;
  // deno-lint-ignore no-console
  const log = console.log;
  const names = Object.keys(VARIANTS);
  log(`Run-time overhead, median of ${rounds} interleaved rounds (ratio to plain):\n`);
  log(`| workload | plain ms | ${names.slice(1).join(" | ")} |`);
  log(`|---|---:|${names.slice(1).map(() => "---:").join("|")}|`);
  for (const row of overhead(rounds)) {
    const cells = names.slice(1).map((n) => `${row.ratio[n]!.toFixed(2)}x`);
    log(`| ${row.workload} | ${row.medianMs.plain!.toFixed(1)} | ${cells.join(" | ")} |`);
  }
  log(`\nInstrumenting throughput, all passes, median of ${rounds} runs:\n`);
  log("| module | MB | validate | ms | MB/s |");
  log("|---|---:|---|---:|---:|");
  for (const row of throughput(rounds)) {
    log(
      `| ${row.module} | ${row.megabytes.toFixed(2)} | ${row.validate} | ${
        row.medianMs.toFixed(1)
      } | ${row.megabytesPerSecond.toFixed(0)} |`,
    );
  }
}

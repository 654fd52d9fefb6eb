/**
 * `deno task bench:compare <dir> [rounds] [filter]`: the call paths of this checkout beside
 * those of another checkout of wasmplug (e.g. `git worktree add /tmp/base
 * HEAD~1`), interleaved round by round in one process, so that a change is
 * judged by ratios measured side by side, never against old figures.
 *
 * Prints one row per call path: median, min and max ns per call of both
 * checkouts, and the ratio of the medians (this ÷ base).
 *
 * @module
 */

import { type Figure, interleavePhases, median, type Phase } from "./_measure.ts";

type Module = typeof import("../mod.ts");

const base = Deno.args[0];
if (base === undefined) {
  console.error("usage: deno task bench:compare <directory of another wasmplug checkout>");
  Deno.exit(2);
}
const rounds = Number(Deno.args[1] ?? 21);
/** Only the call paths whose name contains this text, e.g. `worker`. */
const only = Deno.args[2] ?? "";

const here: Module = await import("../mod.ts");
const there: Module = await import(new URL(`file://${Deno.realPathSync(base)}/mod.ts`).href);

const WAT = `(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "trap") (result i32) unreachable)
  (func (export "alloc") (param $n i32) (result i32)
    (global.set $next (i32.const 1024)) (global.get $next))
  (func (export "dealloc") (param i32 i32))
  (func (export "echo") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
      (i64.extend_i32_u (local.get 1)))))`;

/** Worker plugins of the crowd path, and callers of each (as the bench's crowd). */
const CROWD = { plugins: 50, callers: 4 };
const CROWD_PATH = "worker crowd 50 × 4, per call";

/** The plugins of one checkout: default limits, inline and worker, and a crowd of workers. */
async function pluginsOf(mod: Module) {
  const inline = new mod.WasmRuntime({ execution: { isolation: "inline" } });
  const worker = new mod.WasmRuntime({
    execution: { isolation: "worker" },
    resourceLimits: { maxInstances: CROWD.plugins + 10 },
  });
  const compiled = await worker.compileWat("crowd", WAT);
  return {
    inline: await inline.createPluginFromWat(WAT),
    worker: await worker.createPluginFromWat(WAT),
    /** A second worker plugin, for two plugins called at once. */
    other: await worker.createPluginFromWat(WAT),
    crowd: CROWD_PATH.includes(only)
      ? await Promise.all(
        Array.from({ length: CROWD.plugins }, () => worker.createPlugin(compiled)),
      )
      : [],
    close: async () => {
      await inline.close();
      await worker.close();
    },
  };
}

const mine = await pluginsOf(here);
const theirs = await pluginsOf(there);
const input = new Uint8Array(16).fill(7);
let sink = 0;

type Plugins = typeof mine;
type Path = { iterations: number; run: (p: Plugins, n: number) => Promise<void> };

/** A path of `iterations` awaited `callI32(fn, argsOf(i))` calls of one plugin, one after another. */
function callsOf(
  plugin: "inline" | "worker",
  iterations: number,
  fn: string,
  argsOf: (i: number) => number[],
): Path {
  return {
    iterations,
    run: async (p, n) => {
      for (let i = 0; i < n; i++) sink += await p[plugin].callI32(fn, argsOf(i));
    },
  };
}

const paths: Record<string, Path> = {
  "inline callI32 add": callsOf("inline", 20_000, "add", (i) => [i, 1]),
  "inline callI32 count(100)": callsOf("inline", 10_000, "count", () => [100]),
  "inline callI32 fib(20)": callsOf("inline", 50, "fib", () => [20]),
  "inline callBytes 16 B": {
    iterations: 5_000,
    run: async (p, n) => {
      for (let i = 0; i < n; i++) sink += (await p.inline.callBytes("echo", input)).length;
    },
  },
  "worker callI32 add": callsOf("worker", 2_000, "add", (i) => [i, 1]),
  // A guest of about 20 µs: longer than a short spin, so it shows what a wait costs.
  "worker callI32 fib(20)": callsOf("worker", 1_000, "fib", () => [20]),
  // A call that traps: its error is made and sent across, and the host makes its own.
  "worker callI32 trap": {
    iterations: 1_000,
    run: async (p, n) => {
      for (let i = 0; i < n; i++) {
        try {
          await p.worker.callI32("trap");
        } catch {
          sink++;
        }
      }
    },
  },
  "worker callI32 add, 2 plugins with a caller each, per call": {
    iterations: 4_000,
    run: async (p, n) => {
      await Promise.all(
        [p.worker, p.other].map(async (plugin) => {
          for (let i = 0; i < n / 2; i++) sink += await plugin.callI32("add", [i, 1]);
        }),
      );
    },
  },
  "worker callI32 add, 4 callers at once, per call": {
    iterations: 4_000,
    run: async (p, n) => {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < n / 4; i++) sink += await p.worker.callI32("add", [i, 1]);
        }),
      );
    },
  },
  [CROWD_PATH]: {
    iterations: 10_000,
    run: async (p, n) => {
      const perCaller = Math.ceil(n / (CROWD.plugins * CROWD.callers));
      await Promise.all(
        p.crowd.flatMap((plugin) =>
          Array.from({ length: CROWD.callers }, async () => {
            for (let i = 0; i < perCaller; i++) sink += await plugin.callI32("add", [i, 1]);
          })
        ),
      );
    },
  },
  "worker callBytes 16 B": {
    iterations: 1_000,
    run: async (p, n) => {
      for (let i = 0; i < n; i++) sink += (await p.worker.callBytes("echo", input)).length;
    },
  },
};

// One phase per call path: within it the two checkouts alternate which runs first, so
// each follows the other as often as it follows another path. (With every variant in
// one rotation, each ran after the same neighbour: about 5 % apart for the same code.)
const phases: Phase[] = [];
for (const [name, { iterations, run }] of Object.entries(paths)) {
  if (!name.includes(only)) continue;
  phases.push({
    variants: {
      [`${name} | this`]: { iterations, run: (n) => run(mine, n) },
      [`${name} | base`]: { iterations, run: (n) => run(theirs, n) },
    },
  });
}
const figures: Figure[] = await interleavePhases(phases, rounds);
await mine.close();
await theirs.close();
if (sink === 0.5) console.log(sink);

console.log(`\n${rounds} interleaved rounds; this = ${Deno.cwd()}, base = ${base}\n`);
console.log("| call path | this median (min–max) ns | base median (min–max) ns | this ÷ base |");
console.log("|---|---:|---:|---:|");
const show = (f: Figure): string =>
  `${f.medianNs.toFixed(0)} (${f.minNs.toFixed(0)}–${f.maxNs.toFixed(0)})`;
for (const name of Object.keys(paths)) {
  if (!name.includes(only)) continue;
  const mineFigure = figures.find((f) => f.name === `${name} | this`)!;
  const theirFigure = figures.find((f) => f.name === `${name} | base`)!;
  const ratio = median(figures, `${name} | this`) / median(figures, `${name} | base`);
  console.log(`| ${name} | ${show(mineFigure)} | ${show(theirFigure)} | ${ratio.toFixed(2)} |`);
}

/**
 * How much RSS the memories of stopped worker plugins hold when their
 * worker is kept for the next plugin:
 * `deno run --unstable-worker-options --allow-read bench/kept_worker_memory.ts [plugins] [MiB]`.
 *
 * A stopped plugin's linear memory is freed only when the worker it ran in
 * collects its garbage, or ends. Plugins run in turn, each filling `MiB` of
 * its memory and stopped before the next, in three runtimes: one that keeps
 * no worker, one that keeps workers with the default `maxServedBytes`
 * (64 MiB: a worker whose plugins' memories add up to more is ended), and
 * one that keeps them without that bound. Prints each one's peak RSS growth.
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";

const PAGE = 65_536;

/** `fill(pages)` grows the memory by `pages` and writes to each of its 4 KiB pages. */
const FILL_WAT = `(module (memory (export "memory") 1 65536)
  (func (export "fill") (param $pages i32) (result i32) (local $at i32) (local $end i32)
    (drop (memory.grow (local.get $pages)))
    (local.set $end (i32.mul (memory.size) (i32.const ${PAGE})))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (i32.store (local.get $at) (i32.const 1))
      (local.set $at (i32.add (local.get $at) (i32.const 4096)))
      (br $each)))
    (memory.size)))`;

const plugins = Number(Deno.args[0] ?? 12);
const mib = Number(Deno.args[1] ?? 500);
const rss = () => Deno.memoryUsage().rss / 2 ** 20;

const variants = {
  "no kept worker": { maxIdle: 0 },
  "kept, default maxServedBytes": {},
  "kept, unbounded": { maxServedBytes: Number.MAX_SAFE_INTEGER },
};

console.log(`${plugins} worker plugins in turn, each filling ${mib} MiB and stopped`);
for (const [label, workerPool] of Object.entries(variants)) {
  await using runtime = new WasmRuntime({ execution: { isolation: "worker" }, workerPool });
  const compiled = await runtime.compileWat("fill", FILL_WAT);
  const start = rss();
  let peak = start;
  for (let i = 0; i < plugins; i++) {
    const plugin = await runtime.createPlugin(compiled, {
      resourceLimits: { maxMemoryPages: 65_536, maxExecutionTimeMs: 60_000 },
    });
    await plugin.callI32("fill", [(mib * 2 ** 20) / PAGE]);
    await plugin.stop();
    peak = Math.max(peak, rss());
  }
  console.log(`${label.padEnd(30)} peak RSS growth ${(peak - start).toFixed(0)} MiB`);
}

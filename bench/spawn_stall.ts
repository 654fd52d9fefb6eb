/**
 * How long creating a worker plugin blocks the host's thread, with other
 * worker plugins busy or not, when it starts a new worker and when it takes
 * the worker a stopped plugin left:
 * `deno run --unstable-worker-options --allow-read bench/spawn_stall.ts [busy,…] [creations]`.
 *
 * Deno's `new Worker()` returns only once the new thread has set up its
 * isolate, and the host's thread waits for it meanwhile: no timer, no call
 * answer, no other plugin is served. With busy plugins the new thread waits
 * for a core too, so the wait grows with them. A runtime keeps the idle
 * worker of a stopped or parked plugin for a while (see `_worker_pool.ts`),
 * and the next plugin with the same permissions starts in it; a first
 * start, a crash, a stuck call, or a guest that can suspend on the host
 * still pay the wait.
 *
 * For each count of busy plugins (worker plugins calling an endless loop,
 * each call stopped by its fuel and called again), plugin creations
 * alternate between a runtime that keeps no worker and one that keeps them,
 * each creation's plugin stopped before the next, and a 1 ms interval timer
 * measures the longest gap in the host's event loop during each
 * `createPlugin`. Prints the medians and the maximum.
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { medianOf } from "./_measure.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';
const SPIN_WAT = '(module (func (export "spin") (loop $again (br $again))))';
const BUSY_COUNTS = (Deno.args[0] ?? "0,2,8,20").split(",").map(Number);
const CREATIONS = Number(Deno.args[1] ?? 9);

/** The longest gap between ticks of a 1 ms interval timer while `work` runs, and how long it took. */
async function longestStall(
  work: () => Promise<unknown>,
): Promise<{ stallMs: number; ms: number }> {
  let stallMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 1);
  const start = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - start;
  // The gap still open as the work ended counts too.
  return { stallMs: Math.max(stallMs, performance.now() - last), ms };
}

const config = {
  execution: { isolation: "worker" },
  resourceLimits: { maxInstances: Math.max(...BUSY_COUNTS) + 10 },
  idleTimeoutMs: Infinity,
} as const;
await using runtime = new WasmRuntime(config);
/** A runtime that starts a new worker for every plugin. */
await using fresh = new WasmRuntime({ ...config, workerPool: { maxIdle: 0 } });
const add = await runtime.compileWat("add", ADD_WAT);
const addFresh = await fresh.compileWat("add", ADD_WAT);
const spin = await runtime.compileWat("spin", SPIN_WAT);

/** Creates a plugin of `module` in `on`, timed, and stops it. */
async function creations(
  on: WasmRuntime,
  module: typeof add,
): Promise<{ stallMs: number; ms: number }> {
  let created: Awaited<ReturnType<typeof runtime.createPlugin>> | undefined;
  const measured = await longestStall(async () => {
    created = await on.createPlugin(module);
  });
  await created?.stop();
  return measured;
}

console.log(
  "| busy worker plugins | `createPlugin`, new worker | with a kept worker | longest host stall, new worker (median, max) | with a kept worker (median, max) |",
);
console.log("| ---: | ---: | ---: | ---: | ---: |");
for (const busy of BUSY_COUNTS) {
  const spinners = await Promise.all(
    Array.from({ length: busy }, () => runtime.createPlugin(spin)),
  );
  let spinning = true;
  const loops = spinners.map(async (plugin) => {
    while (spinning) await plugin.callVoid("spin").catch(() => {});
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  // One creation first, so that the kept runtime has a worker to take.
  await creations(runtime, add);
  const newWorker = { stalls: [] as number[], times: [] as number[] };
  const kept = { stalls: [] as number[], times: [] as number[] };
  for (let i = 0; i < CREATIONS; i++) {
    for (
      const [into, on, module] of [[newWorker, fresh, addFresh], [kept, runtime, add]] as const
    ) {
      const { stallMs, ms } = await creations(on, module);
      into.stalls.push(stallMs);
      into.times.push(ms);
    }
  }
  spinning = false;
  await Promise.all(spinners.map((plugin) => plugin.stop({ abort: true })));
  await Promise.all(loops);
  const ms = (value: number) => `${value.toFixed(value < 10 ? 1 : 0)} ms`;
  console.log(
    `| ${busy} | ${ms(medianOf(newWorker.times))} | ${ms(medianOf(kept.times))} | ${
      ms(medianOf(newWorker.stalls))
    }, ${ms(Math.max(...newWorker.stalls))} | ${ms(medianOf(kept.stalls))}, ${
      ms(Math.max(...kept.stalls))
    } |`,
  );
}

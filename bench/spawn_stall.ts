/**
 * How long creating a worker plugin blocks the host's thread, with other
 * worker plugins busy or not:
 * `deno run --unstable-worker-options --allow-read bench/spawn_stall.ts [busy,…] [creations]`.
 *
 * Deno's `new Worker()` returns only once the new thread has set up its
 * isolate, and the host's thread waits for it meanwhile: no timer, no call
 * answer, no other plugin is served. With busy plugins the new thread waits
 * for a core too, so the wait grows with them. A parked plugin's next call
 * (see `idleTimeoutMs`), a respawn after a crash, a stuck call or a restart
 * all pay it.
 *
 * For each count of busy plugins (worker plugins calling an endless loop,
 * each call stopped by its fuel and called again), the plugin creations
 * alternate with nothing else, and a 1 ms interval timer measures the
 * longest gap in the host's event loop during each `createPlugin`. Prints
 * the medians and the maximum.
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

await using runtime = new WasmRuntime({
  execution: { isolation: "worker" },
  resourceLimits: { maxInstances: Math.max(...BUSY_COUNTS) + 10 },
  idleTimeoutMs: Infinity,
});
const add = await runtime.compileWat("add", ADD_WAT);
const spin = await runtime.compileWat("spin", SPIN_WAT);

console.log(
  "| busy worker plugins | `createPlugin` | longest host stall (median) | longest host stall (max) |",
);
console.log("| ---: | ---: | ---: | ---: |");
for (const busy of BUSY_COUNTS) {
  const spinners = await Promise.all(
    Array.from({ length: busy }, () => runtime.createPlugin(spin)),
  );
  let spinning = true;
  const loops = spinners.map(async (plugin) => {
    while (spinning) await plugin.callVoid("spin").catch(() => {});
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const stalls: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < CREATIONS; i++) {
    let created: Awaited<ReturnType<typeof runtime.createPlugin>> | undefined;
    const { stallMs, ms } = await longestStall(async () => {
      created = await runtime.createPlugin(add);
    });
    stalls.push(stallMs);
    times.push(ms);
    await created?.stop();
  }
  spinning = false;
  await Promise.all(spinners.map((plugin) => plugin.stop({ abort: true })));
  await Promise.all(loops);
  console.log(
    `| ${busy} | ${medianOf(times).toFixed(0)} ms | ${medianOf(stalls).toFixed(0)} ms | ${
      Math.max(...stalls).toFixed(0)
    } ms |`,
  );
}

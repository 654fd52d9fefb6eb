/**
 * The worker call channel under load:
 * `deno run --unstable-worker-options --allow-read --allow-run bench/channel.ts [rounds]`.
 *
 * Side by side, interleaved round by round, in three conditions:
 * - quiet: nothing else runs;
 * - busy: all cores but one spin in other processes (see `_load.ts`);
 * - crowd: 50 plugins × 4 callers each at once, wall time per call.
 *
 * Variants: a worker plugin's `callI32("add")`; the bare channel (one
 * `HostChannel` round trip to a worker that answers at once, no plugin
 * around it); a bare worker's `postMessage` round trip doing the same wasm
 * call. Then the CPU that 50 idle worker plugins use over 3 s.
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/compile/_artifact.ts";
import { bareCaller } from "./_bare_caller.ts";
import { spawnBareChannel } from "./_floor_workers.ts";
import { startBusyCores } from "./_load.ts";
import { type Figure, processCpuUs, summarize } from "./_measure.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';
const BARE_WORKER = new URL("./_bare_worker.ts", import.meta.url);
const CROWD_PLUGINS = 50;
const CROWD_CALLERS = 4;
const IDLE_PLUGINS = 50;
const IDLE_MS = 3_000;
/** Every bare worker, terminated at the end (a live worker keeps the process alive). */
const bareWorkers: Worker[] = [];

await main();

async function spawnBare(module: WebAssembly.Module): Promise<Worker> {
  const worker = new Worker(
    BARE_WORKER,
    { type: "module", deno: { permissions: "none" } } as WorkerOptions,
  );
  bareWorkers.push(worker);
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage(module);
  });
  return worker;
}

/** Runs `perCaller` calls on each of `callers` callers at once. */
async function crowdRun(
  callers: readonly ((value: number) => Promise<number>)[],
  perCaller: number,
): Promise<number> {
  let sum = 0;
  await Promise.all(callers.map(async (call) => {
    for (let i = 0; i < perCaller; i++) sum += await call(i);
  }));
  return sum;
}

async function main(): Promise<void> {
  const rounds = Number(Deno.args[0] ?? 15);
  const began = performance.now();
  await using runtime = new WasmRuntime({
    execution: { isolation: "worker" },
    resourceLimits: { maxInstances: 2 * CROWD_PLUGINS + IDLE_PLUGINS + 10 },
    idleTimeoutMs: Infinity,
  });
  const compiled = await runtime.compileWat("add", ADD_WAT);
  const bareModule = await WebAssembly.compile(
    artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>,
  );
  const plugin = await runtime.createPlugin(compiled, { name: "add" });
  const bare = bareCaller(await spawnBare(bareModule));
  await using raw = await spawnBareChannel();
  const rawCall = (value: number): Promise<number> => raw.call(value);
  const crowd = await Promise.all(
    Array.from({ length: CROWD_PLUGINS }, () => runtime.createPlugin(compiled)),
  );
  const crowdBare = await Promise.all(
    Array.from({ length: CROWD_PLUGINS }, async () => bareCaller(await spawnBare(bareModule))),
  );
  const pluginCall = (value: number): Promise<number> => plugin.callI32("add", [value, 1]);
  const crowdPluginCallers = crowd.flatMap((member) =>
    Array.from(
      { length: CROWD_CALLERS },
      () => (value: number) => member.callI32("add", [value, 1]),
    )
  );
  const crowdBareCallers = crowdBare.flatMap((call) =>
    Array.from({ length: CROWD_CALLERS }, () => call)
  );

  const samples: Record<string, number[]> = {};
  let sink = 0;
  const time = async (name: string, calls: number, run: () => Promise<void>): Promise<void> => {
    const start = performance.now();
    await run();
    (samples[name] ??= []).push(((performance.now() - start) * 1e3) / calls);
  };
  const serial = (call: (value: number) => Promise<number>, n: number) => async () => {
    for (let i = 0; i < n; i++) sink += await call(i);
  };
  // Warm up every path (JIT, buffers) before the first round.
  for (const call of [pluginCall, bare, rawCall]) await serial(call, 2_000)();
  await crowdRun(crowdPluginCallers, 20);
  await crowdRun(crowdBareCallers, 20);

  console.error(`set up in ${((performance.now() - began) / 1000).toFixed(0)} s`);
  for (let round = 0; round < rounds; round++) {
    // Quiet.
    await time("quiet plugin", 10_000, serial(pluginCall, 10_000));
    await time("quiet channel", 10_000, serial(rawCall, 10_000));
    await time("quiet postMessage", 3_000, serial(bare, 3_000));
    // Busy: the other cores spin.
    {
      await using _load = await startBusyCores();
      await time("busy plugin", 3_000, serial(pluginCall, 3_000));
      await time("busy channel", 3_000, serial(rawCall, 3_000));
      await time("busy postMessage", 2_000, serial(bare, 2_000));
    }
    // Crowd: 200 callers at once; per call, wall time.
    const perCaller = 100;
    const calls = perCaller * crowdPluginCallers.length;
    await time("crowd plugin", calls, async () => {
      sink += await crowdRun(crowdPluginCallers, perCaller);
    });
    await time("crowd postMessage", calls, async () => {
      sink += await crowdRun(crowdBareCallers, perCaller);
    });
    console.error(
      `round ${round + 1}/${rounds} (${((performance.now() - began) / 1000).toFixed(0)} s): ${
        Object.entries(samples).map(([name, s]) => `${name} ${s.at(-1)!.toFixed(1)}`).join(", ")
      }`,
    );
  }
  if (sink === 0.5) console.log(sink);

  const figures = new Map<string, Figure>(
    Object.entries(samples).map(([name, values]) => [name, summarize(name, values)]),
  );
  const show = (name: string): string => {
    const f = figures.get(name)!;
    return `${f.medianNs.toFixed(2)} (${f.minNs.toFixed(2)}–${f.maxNs.toFixed(2)})`;
  };
  const med = (name: string): number => figures.get(name)!.medianNs;

  for (const worker of bareWorkers) worker.terminate();
  await Promise.all(crowd.map((member) => member.stop()));
  const idle = await idleCpu(runtime, compiled);
  await plugin.stop();

  console.log(`\n${rounds} interleaved rounds, µs per call: median (min–max)\n`);
  console.log("| condition | plugin callI32 | bare channel | postMessage | plugin ÷ postMessage |");
  console.log("|---|---:|---:|---:|---:|");
  for (const condition of ["quiet", "busy"]) {
    console.log(
      `| ${condition} | ${show(`${condition} plugin`)} | ${show(`${condition} channel`)} | ${
        show(`${condition} postMessage`)
      } | ${(med(`${condition} plugin`) / med(`${condition} postMessage`)).toFixed(2)} |`,
    );
  }
  console.log(
    `| crowd ${CROWD_PLUGINS}×${CROWD_CALLERS} | ${show("crowd plugin")} | – | ${
      show("crowd postMessage")
    } | ${(med("crowd plugin") / med("crowd postMessage")).toFixed(2)} |`,
  );
  console.log(
    `\ncrowd ÷ one caller (quiet), plugin: ${
      (med("crowd plugin") / med("quiet plugin")).toFixed(2)
    }; postMessage: ${(med("crowd postMessage") / med("quiet postMessage")).toFixed(2)}`,
  );
  console.log(
    `${IDLE_PLUGINS} idle worker plugins for ${IDLE_MS / 1000} s: ${
      (idle * 100).toFixed(2)
    } % of one CPU (whole process)`,
  );
}

/** The share of one CPU the whole process uses while idle plugins sit there. */
async function idleCpu(
  runtime: WasmRuntime,
  compiled: Awaited<ReturnType<WasmRuntime["compileWat"]>>,
): Promise<number> {
  const plugins = await Promise.all(
    Array.from({ length: IDLE_PLUGINS }, () => runtime.createPlugin(compiled)),
  );
  // Each has served a call, so every channel has been through a wait.
  await Promise.all(plugins.map((p) => p.callI32("add", [1, 2])));
  // Workers go on compiling in the background for a while after they start.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const before = processCpuUs();
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const after = processCpuUs();
  const wallUs = (performance.now() - start) * 1e3;
  await Promise.all(plugins.map((p) => p.stop()));
  return (after - before) / wallUs;
}

/**
 * Worker isolation: a worker-isolated `callI32` beside a plain postMessage
 * round trip to a bare worker doing the same wasm call; a host function
 * called from a worker guest beside the same call inline; plugin creation
 * beside spawning a bare worker and instantiating by hand; RSS per idle
 * worker plugin; and 50 worker plugins called by 4 callers each at once, per
 * call, beside one plugin called by one caller. Interleaved, medians.
 *
 * @module
 */

import { Capability, WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/_artifact.ts";
import { type Figure, interleave, median } from "./_measure.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';
const HOST_LOOP_WAT = `(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (func (export "run") (param $n i32) (result i32)
    (local $sum i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $sum (i32.add (local.get $sum) (call $tick (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $sum)))`;
const BARE_WORKER = new URL("./_bare_worker.ts", import.meta.url);
/** Plugins called at once in the crowd figure, and callers per plugin. */
const CROWD_PLUGINS = 50;
const CROWD_CALLERS = 4;

async function spawnBare(module: WebAssembly.Module): Promise<Worker> {
  const worker = new Worker(
    BARE_WORKER,
    { type: "module", deno: { permissions: "none" } } as WorkerOptions,
  );
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage(module);
  });
  return worker;
}

function roundTrip(worker: Worker, value: number): Promise<number> {
  return new Promise((resolve) => {
    worker.onmessage = (event) => resolve(event.data as number);
    worker.postMessage(value);
  });
}

/** Runs the worker comparisons. */
export async function benchWorkerCalls(
  options: { rounds?: number } = {},
): Promise<
  { figures: Figure[]; ratios: Record<string, number>; rssPerIdleWorkerPluginBytes: number }
> {
  const { rounds = 15 } = options;
  // Never parked: a respawn in the middle of a round is not what is measured.
  await using runtime = new WasmRuntime({
    execution: { isolation: "worker" },
    resourceLimits: { maxInstances: 100 },
    idleTimeoutMs: Infinity,
  });
  await using inline = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await runtime.compileWat("add", ADD_WAT);
  const bareModule = await WebAssembly.compile(
    artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>,
  );
  await using plugin = await runtime.createPlugin(compiled, { name: "add" });
  const bare = await spawnBare(bareModule);
  const linker = runtime.createLinker().funcWrap("env", "tick", (n: number) => n & 1);
  const hostLoop = await runtime.compileWat("host-loop", HOST_LOOP_WAT);
  const grant = { capabilities: [Capability.CallHostFunction] };
  await using workerHost = await runtime.createPluginWithLinker(hostLoop, grant, linker);
  await using inlineHost = await inline.createPluginWithLinker(
    await inline.compileWat("host-loop", HOST_LOOP_WAT),
    grant,
    linker,
  );
  const crowd = await Promise.all(
    Array.from({ length: CROWD_PLUGINS }, () => runtime.createPlugin(compiled)),
  );
  let sink = 0;
  try {
    const figures = await interleave({
      postMessageRoundTrip: {
        iterations: 5_000,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await roundTrip(bare, i);
        },
      },
      workerCallI32: {
        iterations: 20_000,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await plugin.callI32("add", [i, 1]);
        },
      },
      crowdCallI32: {
        iterations: 20_000,
        run: async (n) => {
          // n calls in all, spread over CROWD_CALLERS callers of each plugin.
          const perCaller = Math.ceil(n / (CROWD_PLUGINS * CROWD_CALLERS));
          await Promise.all(
            crowd.flatMap((member) =>
              Array.from({ length: CROWD_CALLERS }, async () => {
                for (let i = 0; i < perCaller; i++) sink += await member.callI32("add", [i, 1]);
              })
            ),
          );
        },
      },
      inlineHostCall: {
        iterations: 20_000,
        run: async (n) => {
          sink += await inlineHost.callI32("run", [n]);
        },
      },
      workerHostCall: {
        iterations: 20_000,
        run: async (n) => {
          sink += await workerHost.callI32("run", [n]);
        },
      },
      bareSpawnAndInstantiate: {
        iterations: 5,
        run: async (n) => {
          for (let i = 0; i < n; i++) (await spawnBare(bareModule)).terminate();
        },
      },
      createWorkerPlugin: {
        iterations: 5,
        run: async (n) => {
          for (let i = 0; i < n; i++) await (await runtime.createPlugin(compiled)).stop();
        },
      },
    }, rounds);
    if (sink === 0.5) console.log(sink);
    const rssPerIdleWorkerPluginBytes = await rssPerIdlePlugin(runtime, compiled);
    return {
      figures,
      ratios: {
        postMessageVsWorkerCallI32: median(figures, "postMessageRoundTrip") /
          median(figures, "workerCallI32"),
        workerHostCallVsInline: median(figures, "workerHostCall") /
          median(figures, "inlineHostCall"),
        crowdVsSingleWorkerCallI32: median(figures, "crowdCallI32") /
          median(figures, "workerCallI32"),
        createWorkerPluginVsBareSpawn: median(figures, "createWorkerPlugin") /
          median(figures, "bareSpawnAndInstantiate"),
      },
      rssPerIdleWorkerPluginBytes,
    };
  } finally {
    bare.terminate();
    await Promise.all(crowd.map((member) => member.stop()));
  }
}

async function rssPerIdlePlugin(
  runtime: WasmRuntime,
  compiled: Awaited<ReturnType<WasmRuntime["compileWat"]>>,
): Promise<number> {
  const count = 20;
  const before = Deno.memoryUsage().rss;
  const plugins = [];
  for (let i = 0; i < count; i++) plugins.push(await runtime.createPlugin(compiled));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = Deno.memoryUsage().rss;
  await Promise.all(plugins.map((p) => p.stop()));
  return (after - before) / count;
}

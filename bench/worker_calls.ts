/**
 * Worker isolation, side by side in one run, interleaved round by round in
 * three conditions:
 * - quiet: nothing else runs. A worker-isolated `callI32` beside a plain
 *   postMessage round trip to a bare worker doing the same wasm call, and
 *   beside the floors of `_floor_workers.ts` (the least a shared-memory
 *   round trip costs here, and wasmplug's bare channel);
 *   `callBytes` of 16 B and of 1 MiB beside that `callI32`; a call whose
 *   guest works for 15-20 µs beside the same inline; a host function
 *   called from a worker guest beside the same call inline; plugin creation
 *   beside spawning a bare worker and instantiating by hand;
 * - busy: child processes spin on all cores but one (`_load.ts`), started
 *   before the phase and stopped after it, every round. The same `callI32`,
 *   postMessage round trip and floors;
 * - crowd: 50 worker plugins called by 4 callers each at once, wall time per
 *   call, beside 50 bare workers with 4 callers each over postMessage (and,
 *   in the ratios, beside one plugin called by one caller).
 *
 * Then RSS per idle worker plugin. Medians, min and max over the rounds.
 *
 * @module
 */

import { Capability, WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/compile/_artifact.ts";
import { startBusyCores } from "./_load.ts";
import { type Figure, interleavePhases, median } from "./_measure.ts";
import { bareCaller } from "./_bare_caller.ts";
import { spawnBareChannel, spawnMinimalSab } from "./_floor_workers.ts";

/**
 * `add` for the calls, `count` for calls whose guest works for a while,
 * `alloc` and `echo` for `callBytes` (up to 1 MiB at 1024).
 */
const CALLS_WAT = `(module
  (memory (export "memory") 20)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $i))
  (func (export "alloc") (param i32) (result i32) i32.const 1024)
  (func (export "echo") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
      (i64.extend_i32_u (local.get 1)))))`;
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
/**
 * Untimed round trips before each timed run of a round-trip figure: the
 * figures are steady states, and a channel's first ≈ 1000 calls after the
 * crowd phase or spawned workers still pay for those (both sides of each
 * comparison get the same warm-up).
 */
const WARMUP = 1_000;
/**
 * Crowd calls made once, untimed, before the rounds: the crowd's figure is
 * a steady state, and 50 workers each warm their own code (a worker's JIT
 * sees a fiftieth of the calls). In a run on this machine, rounds of 10 000
 * calls read 23-41 µs a call in the first five rounds and 6-12 µs after
 * 500 000 calls, at the same 0.29 worker sleeps a call: the cost of each
 * call fell, not their wake-ups.
 */
const CROWD_WARMUP_CALLS = 200_000;
/**
 * Calls a round of a crowd figure times, after {@linkcode CROWD_WARMUP}
 * untimed ones: the first calls of a round, while the crowd forms, and its
 * last, while it thins, are not its steady state.
 */
const CROWD_ITERATIONS = 20_000;
/** Untimed calls before each timed run of a crowd figure (20 a caller). */
const CROWD_WARMUP = 4_000;
/**
 * Iterations of `count` in the working-call figures: about 15-20 µs of guest
 * code here, longer than a short spin of the channel.
 */
const WORK_ITERATIONS = 30_000;
/** Plugins called at once in the crowd figures, and callers per plugin. */
export const CROWD_PLUGINS = 50;
/** Callers per plugin (or bare worker) in the crowd figures. */
export const CROWD_CALLERS = 4;

/** What {@linkcode benchWorkerCalls} measures. */
export interface WorkerCalls {
  figures: Figure[];
  ratios: Record<string, number>;
  rssPerIdleWorkerPluginBytes: number;
  /** How many processes spun in the busy phase. */
  busyCores: number;
}

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

/** `n` calls in all, spread evenly over the callers, all running at once. */
async function crowdRun(
  callers: readonly ((value: number) => Promise<number>)[],
  n: number,
): Promise<number> {
  const perCaller = Math.ceil(n / callers.length);
  let sum = 0;
  await Promise.all(callers.map(async (call) => {
    for (let i = 0; i < perCaller; i++) sum += await call(i);
  }));
  return sum;
}

/** Runs the worker comparisons. */
export async function benchWorkerCalls(options: { rounds?: number } = {}): Promise<WorkerCalls> {
  const { rounds = 21 } = options;
  // Never parked: a respawn in the middle of a round is not what is measured.
  await using runtime = new WasmRuntime({
    execution: { isolation: "worker" },
    resourceLimits: { maxInstances: 200, maxMemoryPages: 32 },
    idleTimeoutMs: Infinity,
  });
  await using inline = new WasmRuntime({ execution: { isolation: "inline" } });
  /** Keeps no idle worker: each plugin it creates starts a thread, as a bare spawn does. */
  await using fresh = new WasmRuntime(
    { execution: { isolation: "worker" }, workerPool: { maxIdle: 0 } },
  );
  const compiled = await runtime.compileWat("calls", CALLS_WAT);
  const compiledFresh = await fresh.compileWat("calls", CALLS_WAT);
  const bareModule = await WebAssembly.compile(
    artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>,
  );
  await using plugin = await runtime.createPlugin(compiled, { name: "calls" });
  await using inlinePlugin = await inline.createPluginFromWat(CALLS_WAT, { name: "calls" });
  const bareWorker = await spawnBare(bareModule);
  const bare = bareCaller(bareWorker);
  await using minimalSab = await spawnMinimalSab(bareModule);
  await using bareChannel = await spawnBareChannel();
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
  const crowdBareWorkers = await Promise.all(
    Array.from({ length: CROWD_PLUGINS }, () => spawnBare(bareModule)),
  );
  const crowdPluginCallers = crowd.flatMap((member) =>
    Array.from(
      { length: CROWD_CALLERS },
      () => (value: number) => member.callI32("add", [value, 1]),
    )
  );
  const crowdBareCallers = crowdBareWorkers.flatMap((worker) => {
    const call = bareCaller(worker);
    return Array.from({ length: CROWD_CALLERS }, () => call);
  });
  let sink = await crowdRun(crowdPluginCallers, CROWD_WARMUP_CALLS);
  sink += await crowdRun(crowdBareCallers, CROWD_WARMUP_CALLS);
  const small = new Uint8Array(16).fill(7);
  const large = new Uint8Array(1 << 20).fill(7);
  for (const input of [small, large]) {
    const output = await plugin.callBytes("echo", input);
    if (output.length !== input.length) {
      throw new Error(`echo returned ${output.length} bytes, not ${input.length}`);
    }
  }
  let busyCores = 0;
  const serial = (call: (value: number) => Promise<number>) => async (n: number) => {
    for (let i = 0; i < n; i++) sink += await call(i);
  };
  const callI32 = serial((value) => plugin.callI32("add", [value, 1]));
  try {
    const figures = await interleavePhases(
      [
        {
          variants: {
            postMessageRoundTrip: { iterations: 2_000, warmup: WARMUP, run: serial(bare) },
            workerCallI32: { iterations: 5_000, warmup: WARMUP, run: callI32 },
            minimalSabRoundTrip: {
              iterations: 5_000,
              warmup: WARMUP,
              run: serial((value) => minimalSab.call(value)),
            },
            bareChannelRoundTrip: {
              iterations: 5_000,
              warmup: WARMUP,
              run: serial((value) => bareChannel.call(value)),
            },
            workerCallWork: {
              iterations: 1_000,
              warmup: WARMUP,
              run: serial(() => plugin.callI32("count", [WORK_ITERATIONS])),
            },
            inlineCallWork: {
              iterations: 1_000,
              run: serial(() => inlinePlugin.callI32("count", [WORK_ITERATIONS])),
            },
            workerCallBytes16: {
              iterations: 5_000,
              warmup: WARMUP,
              run: async (n) => {
                for (let i = 0; i < n; i++) sink += (await plugin.callBytes("echo", small)).length;
              },
            },
            // What a bytes call cannot avoid beyond a plain call: the caller's own copy of the
            // output (a new ArrayBuffer costs about 1 µs in Deno 2.9).
            ownedCopy16: {
              iterations: 20_000,
              run: (n) => {
                for (let i = 0; i < n; i++) {
                  const copy = new Uint8Array(small.length);
                  copy.set(small);
                  sink += copy.length;
                }
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
          },
        },
        {
          // The heavy operations of the quiet condition, apart: their garbage and their new
          // threads would otherwise disturb the round trips measured after them.
          variants: {
            workerCallBytes1MiB: {
              iterations: 50,
              run: async (n) => {
                for (let i = 0; i < n; i++) sink += (await plugin.callBytes("echo", large)).length;
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
                for (let i = 0; i < n; i++) await (await fresh.createPlugin(compiledFresh)).stop();
              },
            },
            createWorkerPluginKept: {
              iterations: 5,
              run: async (n) => {
                for (let i = 0; i < n; i++) await (await runtime.createPlugin(compiled)).stop();
              },
            },
          },
        },
        {
          enter: async () => {
            const load = await startBusyCores();
            busyCores = load.count;
            return load;
          },
          variants: {
            busyPostMessageRoundTrip: { iterations: 1_000, warmup: WARMUP, run: serial(bare) },
            busyWorkerCallI32: { iterations: 2_000, warmup: WARMUP, run: callI32 },
            busyMinimalSabRoundTrip: {
              iterations: 2_000,
              warmup: WARMUP,
              run: serial((value) => minimalSab.call(value)),
            },
          },
        },
        {
          variants: {
            crowdCallI32: {
              iterations: CROWD_ITERATIONS,
              warmup: CROWD_WARMUP,
              run: async (n) => {
                sink += await crowdRun(crowdPluginCallers, n);
              },
            },
            crowdPostMessageRoundTrip: {
              iterations: CROWD_ITERATIONS,
              warmup: CROWD_WARMUP,
              run: async (n) => {
                sink += await crowdRun(crowdBareCallers, n);
              },
            },
          },
        },
      ],
      rounds,
      { onRound: (round) => console.error(`worker calls: round ${round}/${rounds}`) },
    );
    if (sink === 0.5) console.log(sink);
    const rssPerIdleWorkerPluginBytes = await rssPerIdlePlugin(runtime, compiled);
    const ratio = (a: string, b: string): number => median(figures, a) / median(figures, b);
    return {
      figures,
      ratios: {
        postMessageVsWorkerCallI32: ratio("postMessageRoundTrip", "workerCallI32"),
        postMessageVsMinimalSab: ratio("postMessageRoundTrip", "minimalSabRoundTrip"),
        postMessageVsBareChannel: ratio("postMessageRoundTrip", "bareChannelRoundTrip"),
        workerCallI32VsBareChannel: ratio("workerCallI32", "bareChannelRoundTrip"),
        busyMinimalSabVsPostMessage: ratio("busyMinimalSabRoundTrip", "busyPostMessageRoundTrip"),
        busyWorkerCallI32VsPostMessage: ratio("busyWorkerCallI32", "busyPostMessageRoundTrip"),
        crowdVsSingleWorkerCallI32: ratio("crowdCallI32", "workerCallI32"),
        crowdVsSinglePostMessage: ratio("crowdPostMessageRoundTrip", "postMessageRoundTrip"),
        callBytes16VsCallI32: ratio("workerCallBytes16", "workerCallI32"),
        callBytes16FloorVsCallI32:
          (median(figures, "workerCallI32") + median(figures, "ownedCopy16")) /
          median(figures, "workerCallI32"),
        callBytes1MiBVsCallI32: ratio("workerCallBytes1MiB", "workerCallI32"),
        workerHostCallVsInline: ratio("workerHostCall", "inlineHostCall"),
        workerCallWorkVsInline: ratio("workerCallWork", "inlineCallWork"),
        createWorkerPluginVsBareSpawn: ratio("createWorkerPlugin", "bareSpawnAndInstantiate"),
        createKeptWorkerPluginVsBareSpawn: ratio(
          "createWorkerPluginKept",
          "bareSpawnAndInstantiate",
        ),
      },
      rssPerIdleWorkerPluginBytes,
      busyCores,
    };
  } finally {
    bareWorker.terminate();
    for (const worker of crowdBareWorkers) worker.terminate();
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

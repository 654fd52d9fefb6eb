/**
 * Side by side with the closest peer, the Extism JS SDK: the same plugin
 * workloads on wasmplug and on Extism, interleaved round by round, medians.
 *
 * The workload is a module whose export `count` loops {@link LOOP_COUNT}
 * times and returns 0. It takes no arguments and reads no input, so it is
 * valid for both calling conventions (Extism's PDK ABI: exports take nothing
 * and return an i32 status) and needs none of Extism's input/output host
 * functions: the comparison is call machinery against call machinery.
 *
 * - in-process call: wasmplug inline `callI32("count")` (default
 *   instrumentation, and unmetered) beside Extism `call("count")`;
 * - worker call: wasmplug worker isolation beside Extism `runInWorker`;
 * - plugin creation in each mode, from an already compiled module on both
 *   sides (wasmplug `createPlugin(compiled)`, Extism
 *   `createPlugin({ wasm: [{ module }] })`), closed/stopped each time;
 * - the timeout of a `loop br 0` plugin: time to error, and whether the
 *   plugin answers a call afterwards. Extism offers call timeouts only with
 *   `runInWorker` (in-process it rejects `timeoutMs`).
 *
 * Extism is a bench-only dependency, pinned here and imported nowhere else.
 * Its 2.0 release candidates need `nodeWorkerArgs: { execArgv: [] }` under
 * Deno (otherwise `ERR_WORKER_INVALID_EXEC_ARGV`); 1.0.3, the `latest` tag,
 * has no call timeouts at all (the looping call never returns).
 *
 * @module
 */

import createExtismPlugin from "npm:@extism/extism@2.0.0-rc13";
import { WasmRuntime } from "../../mod.ts";
import { artifactOf } from "../../src/compile/_artifact.ts";
import { type Figure, interleave, median } from "../_measure.ts";

/** The pinned Extism version (keep in step with the import above). */
export const EXTISM_VERSION = "2.0.0-rc13";

/** How many loop iterations `count` does per call. */
export const LOOP_COUNT = 100;

const COUNT_WAT = `(module
  (func (export "count") (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const ${LOOP_COUNT})))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))`;

const SPIN_WAT = `(module
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  (func (export "count") (result i32) (i32.const 0)))`;

function extismWorkerOptions(): { runInWorker: true; nodeWorkerArgs: { execArgv: string[] } } {
  return { runInWorker: true, nodeWorkerArgs: { execArgv: [] } };
}

/** What one timeout trial shows. */
export interface TimeoutBehaviour {
  /** The configured limit. */
  limitMs: number;
  /** Median time from the call to its rejection, over the trials. */
  medianTimeToErrorMs: number;
  /** Every trial's time to error. */
  timesToErrorMs: number[];
  /** The error's class name and message (first trial). */
  error: string;
  /** Whether the same plugin answered `count` after each timeout. */
  usableAfterwards: boolean;
  /** Median time of that first call after the timeout. */
  medianFirstCallAfterMs: number;
}

/** The figures, the ratios (wasmplug / Extism; below 1 means wasmplug is faster). */
export interface ExtismComparison {
  figures: Figure[];
  ratios: Record<string, number>;
  extismVersion: string;
  timeouts: {
    wasmplugInline: TimeoutBehaviour;
    wasmplugWorker: TimeoutBehaviour;
    extismWorker: TimeoutBehaviour;
    /** Extism in-process: what `timeoutMs` without `runInWorker` does. */
    extismInProcess: string;
  };
}

function mid(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
}

async function timeoutTrials(
  limitMs: number,
  trials: number,
  spin: () => Promise<unknown>,
  count: () => Promise<unknown>,
): Promise<TimeoutBehaviour> {
  const times: number[] = [];
  const after: number[] = [];
  let error = "no error";
  let usable = true;
  for (let i = 0; i < trials; i++) {
    const start = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((resolve) => {
      timer = setTimeout(() => resolve("hung"), limitMs * 20);
    });
    try {
      if ((await Promise.race([spin(), hung])) === "hung") {
        // The call never settled: the plugin is lost (Extism logs "Plugin will hang").
        clearTimeout(timer);
        times.push(performance.now() - start);
        error = `trial ${i + 1}: no answer after ${limitMs * 20} ms`;
        usable = false;
        break;
      }
      error = "returned without error";
    } catch (err) {
      if (i === 0) error = describe(err);
    } finally {
      clearTimeout(timer);
    }
    times.push(performance.now() - start);
    const before = performance.now();
    try {
      await count();
    } catch {
      usable = false;
    }
    after.push(performance.now() - before);
  }
  return {
    limitMs,
    medianTimeToErrorMs: mid(times),
    timesToErrorMs: times,
    error,
    usableAfterwards: usable,
    medianFirstCallAfterMs: mid(after),
  };
}

/** Runs the comparison. */
export async function benchExtism(
  options: { rounds?: number; timeoutMs?: number; timeoutTrials?: number } = {},
): Promise<ExtismComparison> {
  const { rounds = 15, timeoutMs = 1000, timeoutTrials: trials = 5 } = options;
  await using inline = new WasmRuntime({ execution: { isolation: "inline" } });
  await using unmetered = new WasmRuntime({
    execution: { isolation: "inline", fuelMetering: false, epochInterruption: false },
    resourceLimits: { maxCallDepth: Infinity },
  });
  await using worker = new WasmRuntime({ execution: { isolation: "worker" } });
  /** Keeps no idle worker: each plugin it creates starts a thread, as Extism's do. */
  await using fresh = new WasmRuntime(
    { execution: { isolation: "worker" }, workerPool: { maxIdle: 0 } },
  );

  const compiled = await inline.compileWat("count", COUNT_WAT);
  const compiledUnmetered = await unmetered.compileWat("count", COUNT_WAT);
  const compiledWorker = await worker.compileWat("count", COUNT_WAT);
  const compiledFresh = await fresh.compileWat("count", COUNT_WAT);
  // Extism gets the same (uninstrumented) bytes, as a ready WebAssembly.Module.
  const module = await WebAssembly.compile(artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>);

  await using inlinePlugin = await inline.createPlugin(compiled, { name: "count" });
  await using unmeteredPlugin = await unmetered.createPlugin(compiledUnmetered, { name: "count" });
  await using workerPlugin = await worker.createPlugin(compiledWorker, { name: "count" });
  const extismInline = await createExtismPlugin({ wasm: [{ module }] }, { useWasi: false });
  const extismWorker = await createExtismPlugin({ wasm: [{ module }] }, {
    useWasi: false,
    ...extismWorkerOptions(),
  });

  // The floor of a call that times itself (its metrics and deadline need a start and an
  // end): the plain export, awaited through an async function, between two clock reads.
  const rawCount = new WebAssembly.Instance(module, {}).exports.count as () => number;
  // An async function on purpose, as `callI32` is one: the floor includes what that costs.
  // deno-lint-ignore require-await
  const timedRawCount = async (): Promise<number> => {
    const start = performance.now();
    const result = rawCount();
    return result + (performance.now() - start > 1e9 ? 1 : 0);
  };

  let sink = 0;
  try {
    const figures = await interleave(
      {
        clockFloorCall: {
          iterations: 20_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) sink += await timedRawCount();
          },
        },
        wasmplugInlineCall: {
          iterations: 20_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) sink += await inlinePlugin.callI32("count");
          },
        },
        wasmplugInlineCallUnmetered: {
          iterations: 20_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) sink += await unmeteredPlugin.callI32("count");
          },
        },
        extismInProcessCall: {
          iterations: 20_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) if ((await extismInline.call("count")) !== null) sink++;
          },
        },
        wasmplugWorkerCall: {
          iterations: 2_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) sink += await workerPlugin.callI32("count");
          },
        },
        extismWorkerCall: {
          iterations: 2_000,
          run: async (n) => {
            for (let i = 0; i < n; i++) if ((await extismWorker.call("count")) !== null) sink++;
          },
        },
        wasmplugCreateInline: {
          iterations: 200,
          run: async (n) => {
            for (let i = 0; i < n; i++) await (await inline.createPlugin(compiled)).stop();
          },
        },
        extismCreateInProcess: {
          iterations: 200,
          run: async (n) => {
            for (let i = 0; i < n; i++) {
              await (await createExtismPlugin({ wasm: [{ module }] }, { useWasi: false })).close();
            }
          },
        },
        wasmplugCreateWorker: {
          iterations: 5,
          run: async (n) => {
            for (let i = 0; i < n; i++) await (await fresh.createPlugin(compiledFresh)).stop();
          },
        },
        wasmplugCreateWorkerKept: {
          iterations: 5,
          run: async (n) => {
            for (let i = 0; i < n; i++) await (await worker.createPlugin(compiledWorker)).stop();
          },
        },
        extismCreateWorker: {
          iterations: 5,
          run: async (n) => {
            for (let i = 0; i < n; i++) {
              await (await createExtismPlugin({ wasm: [{ module }] }, {
                useWasi: false,
                ...extismWorkerOptions(),
              })).close();
            }
          },
        },
      },
      rounds,
      { settle: true },
    );
    if (sink === 0.5) console.log(sink); // keeps the loops observable

    const timeouts = await measureTimeouts(timeoutMs, trials);
    const ratio = (a: string, b: string): number => median(figures, a) / median(figures, b);
    return {
      figures,
      ratios: {
        inlineCallVsExtism: ratio("wasmplugInlineCall", "extismInProcessCall"),
        inlineCallUnmeteredVsExtism: ratio("wasmplugInlineCallUnmetered", "extismInProcessCall"),
        clockFloorVsExtism: ratio("clockFloorCall", "extismInProcessCall"),
        workerCallVsExtism: ratio("wasmplugWorkerCall", "extismWorkerCall"),
        createInlineVsExtism: ratio("wasmplugCreateInline", "extismCreateInProcess"),
        createWorkerVsExtism: ratio("wasmplugCreateWorker", "extismCreateWorker"),
        createKeptWorkerVsExtism: ratio("wasmplugCreateWorkerKept", "extismCreateWorker"),
        timeoutWorkerVsExtism: timeouts.wasmplugWorker.medianTimeToErrorMs /
          timeouts.extismWorker.medianTimeToErrorMs,
      },
      extismVersion: EXTISM_VERSION,
      timeouts,
    };
  } finally {
    await extismInline.close();
    await extismWorker.close();
  }
}

async function measureTimeouts(
  limitMs: number,
  trials: number,
): Promise<ExtismComparison["timeouts"]> {
  // No fuel budget, so the deadline (not fuel exhaustion) is what stops the loop.
  const limits = { maxExecutionTimeMs: limitMs, maxFuel: null };

  await using inline = new WasmRuntime({
    execution: { isolation: "inline" },
    resourceLimits: limits,
  });
  const spin = await inline.compileWat("spin", SPIN_WAT);
  const spinBytes = artifactOf(spin).bytes as Uint8Array<ArrayBuffer>;
  const spinModule = await WebAssembly.compile(spinBytes);
  await using inlineSpin = await inline.createPlugin(spin);
  const wasmplugInline = await timeoutTrials(
    limitMs,
    trials,
    () => inlineSpin.callI32("spin"),
    () => inlineSpin.callI32("count"),
  );

  await using worker = new WasmRuntime({
    execution: { isolation: "worker" },
    resourceLimits: limits,
  });
  await using workerSpin = await worker.createPlugin(await worker.compile("spin", spinBytes));
  const wasmplugWorker = await timeoutTrials(
    limitMs,
    trials,
    () => workerSpin.callI32("spin"),
    () => workerSpin.callI32("count"),
  );

  const extism = await createExtismPlugin({ wasm: [{ module: spinModule }] }, {
    useWasi: false,
    timeoutMs: limitMs,
    ...extismWorkerOptions(),
  });
  let extismWorker: TimeoutBehaviour;
  try {
    extismWorker = await timeoutTrials(
      limitMs,
      trials,
      () => extism.call("spin"),
      () => extism.call("count"),
    );
  } finally {
    await Promise.race([extism.close(), new Promise((resolve) => setTimeout(resolve, 1000))]);
  }

  let extismInProcess: string;
  try {
    const plugin = await createExtismPlugin({ wasm: [{ module: spinModule }] }, {
      useWasi: false,
      timeoutMs: limitMs,
    });
    await plugin.close();
    extismInProcess = "accepted timeoutMs (not exercised: the call would never return)";
  } catch (err) {
    extismInProcess = `createPlugin rejects: ${describe(err)}`;
  }
  return { wasmplugInline, wasmplugWorker, extismWorker, extismInProcess };
}

if (import.meta.main) {
  const result = await benchExtism();
  const format = (ns: number): string =>
    ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(2)} µs`;
  console.log(`Extism ${result.extismVersion}, count loop of ${LOOP_COUNT}\n`);
  console.log("| figure | median | min | max |\n|---|---:|---:|---:|");
  for (const f of result.figures) {
    console.log(`| ${f.name} | ${format(f.medianNs)} | ${format(f.minNs)} | ${format(f.maxNs)} |`);
  }
  for (const [name, value] of Object.entries(result.ratios)) {
    console.log(`- ${name}: ${value.toFixed(2)}x`);
  }
  console.log(JSON.stringify(result.timeouts, null, 2));
}

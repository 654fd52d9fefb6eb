import assert from "node:assert/strict";
import { Capability, type RuntimeConfig, type WasmPlugin, type WasmRuntime } from "../../mod.ts";
import { withInternalOptions } from "../../src/backend/_internal_options.ts";
import { instrument } from "../../src/instrument/instrument.ts";
import { watToBinary } from "../../src/compile/_wat.ts";
import { bytesOf, delay, DENO, textOf, workerRuntime } from "../_helpers.ts";
import { READ_WORKERS, runFixture } from "./_worker_helpers.ts";

/** The idle timeout of these tests' runtimes. */
const IDLE_MS = 50;

/**
 * `increment` counts in a global no export shows; the start function
 * counts its runs in `$starts`; `grow` grows memory by one page; `busy`
 * loops n times; the data segment puts "seed" at 16.
 */
const COUNTER_WAT = `(module
  (memory (export "memory") 1 4)
  (data (i32.const 16) "seed")
  (global $count (mut i32) (i32.const 0))
  (global $starts (mut i64) (i64.const 0))
  (global $scale (mut f64) (f64.const 0.5))
  (func $start (global.set $starts (i64.add (global.get $starts) (i64.const 1))))
  (start $start)
  (func (export "increment") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
  (func (export "starts") (result i64) (global.get $starts))
  (func (export "scale") (result f64)
    (global.set $scale (f64.mul (global.get $scale) (f64.const 3)))
    (global.get $scale))
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (func (export "busy") (param $n i32)
    (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`;

/** How many workers the runtimes of these tests spawned, parked and took from their pool. */
const workerEvents = { spawned: 0, parked: 0, reused: 0, kept: 0 };

/** A worker runtime that counts its workers in {@linkcode workerEvents}, running `workerUrl` if given. */
function countingRuntime(config: RuntimeConfig, workerUrl?: URL): WasmRuntime {
  return workerRuntime(withInternalOptions(config, {
    onWorkerEvent: (event) => workerEvents[event]++,
    ...(workerUrl === undefined ? {} : { workerUrl }),
  }));
}

/** Waits until some worker was parked since `before` (at most 2 s); returns whether one was. */
async function parkedSince(before: number): Promise<boolean> {
  for (let waited = 0; waited < 2000; waited += 10) {
    if (workerEvents.parked > before) return true;
    await delay(10);
  }
  return false;
}

async function counterPlugin(
  idleTimeoutMs = IDLE_MS,
  workerUrl?: URL,
): Promise<WasmPlugin & AsyncDisposable> {
  const runtime = countingRuntime({ idleTimeoutMs }, workerUrl);
  const plugin = await runtime.createPluginFromWat(COUNTER_WAT);
  return Object.assign(plugin, {
    async [Symbol.asyncDispose]() {
      await runtime.close();
    },
  });
}

Deno.test("An idle worker plugin is parked and carries on from its state", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  await t.step("a counter in a global keeps counting", async () => {
    await using plugin = await counterPlugin();
    assert.equal(await plugin.callI32("increment", []), 1);
    assert.equal(await plugin.callI32("increment", []), 2);
    const parked = workerEvents.parked;
    const spawned = workerEvents.spawned;
    const reused = workerEvents.reused;
    assert.ok(await parkedSince(parked), "the worker was not parked");
    assert.equal(await plugin.callI32("increment", []), 3);
    assert.equal(workerEvents.spawned, spawned + 1, "no new instance served the call");
    // The parked instance's worker was kept idle, and the new instance started in it.
    assert.equal(workerEvents.reused, reused + 1, "the parked worker was not kept");
    assert.equal(await plugin.callI64("starts", []), 1n, "the start function ran again");
  });

  await t.step("floats keep their value", async () => {
    await using plugin = await counterPlugin();
    assert.equal(await plugin.callF64("scale", []), 1.5);
    assert.ok(await parkedSince(workerEvents.parked));
    assert.equal(await plugin.callF64("scale", []), 4.5);
  });

  await t.step("memory keeps its contents and its size", async () => {
    await using plugin = await counterPlugin();
    assert.equal(await plugin.callI32("grow", []), 1);
    await plugin.writeMemory(16, bytesOf("kept"));
    await plugin.writeMemory(65_536 + 100, bytesOf("grown"));
    assert.ok(await parkedSince(workerEvents.parked));
    assert.equal(textOf(await plugin.readMemory(16, 4)), "kept");
    assert.equal(textOf(await plugin.readMemory(65_536 + 100, 5)), "grown");
    // Grown once more from two pages, not from the declared one.
    assert.equal(await plugin.callI32("grow", []), 2);
    assert.equal((await plugin.metrics()).currentMemoryBytes, 3 * 65_536);
  });

  await t.step("it is parked again after each idle spell", async () => {
    await using plugin = await counterPlugin();
    for (let expected = 1; expected <= 3; expected++) {
      const parked = workerEvents.parked;
      assert.equal(await plugin.callI32("increment", []), expected);
      assert.ok(await parkedSince(parked));
    }
  });

  await t.step("restarting the worker is not the call's time", async () => {
    // No kept worker: the call waits for a new one (tens of milliseconds), which the
    // call's duration does not count (it would look like an anomaly to the detector).
    await using runtime = countingRuntime({ idleTimeoutMs: IDLE_MS, workerPool: { maxIdle: 0 } });
    const plugin = await runtime.createPluginFromWat(COUNTER_WAT);
    assert.equal(await plugin.callI32("increment", []), 1);
    assert.ok(await parkedSince(workerEvents.parked));
    const before = (await plugin.metrics()).totalExecutionTimeNs;
    const started = performance.now();
    assert.equal(await plugin.callI32("increment", []), 2);
    const wallMs = performance.now() - started;
    const countedMs = ((await plugin.metrics()).totalExecutionTimeNs - before) / 1e6;
    assert.ok(wallMs - countedMs >= 5, `counted ${countedMs} ms of a ${wallMs} ms call`);
  });

  await t.step("the guest's monotonic and CPU-time clocks go on from where they were", async () => {
    // It started again from zero in each new worker: a restored guest read it going back by
    // the old worker's lifetime, and slept until deadlines it had computed on the old clock.
    await using runtime = countingRuntime({ idleTimeoutMs: IDLE_MS, workerPool: { maxIdle: 0 } });
    const plugin = await runtime.createPluginFromWat(
      `(module
        (import "wasi_snapshot_preview1" "clock_time_get"
          (func $clock (param i32 i64 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "clock") (param $id i32) (result i64)
          (drop (call $clock (local.get $id) (i64.const 1) (i32.const 0)))
          (i64.load (i32.const 0))))`,
      { capabilities: [Capability.Wasi] },
    );
    // The first worker lives a while before it is parked.
    await delay(300);
    // CLOCK_MONOTONIC and CLOCK_PROCESS_CPUTIME_ID (the instance's age).
    const before = [await plugin.callI64("clock", [1]), await plugin.callI64("clock", [2])];
    const parked = workerEvents.parked;
    assert.ok(await parkedSince(parked));
    const after = [await plugin.callI64("clock", [1]), await plugin.callI64("clock", [2])];
    assert.ok(after[0]! > before[0]!, `monotonic: ${after[0]} after ${before[0]}`);
    assert.ok(after[1]! > before[1]!, `CPU time: ${after[1]} after ${before[1]}`);
  });

  await t.step("a call aborted while its worker starts leaves at once", async () => {
    await using runtime = countingRuntime({ idleTimeoutMs: IDLE_MS, workerPool: { maxIdle: 0 } });
    const plugin = await runtime.createPluginFromWat(COUNTER_WAT);
    let count = await plugin.callI32("increment", []);
    // What a start costs on this machine now: leaving "at once" is well under it.
    assert.ok(await parkedSince(workerEvents.parked));
    const restarted = performance.now();
    count = await plugin.callI32("increment", []);
    const startMs = performance.now() - restarted;
    const quickMs = Math.max(5, startMs / 2);
    let aborts = 0;
    // Until an abort lands while the worker starts (a loaded machine may start it first).
    for (let attempt = 0; attempt < 5 && aborts === 0; attempt++) {
      assert.ok(await parkedSince(workerEvents.parked));
      const controller = new AbortController();
      const call = plugin.callI32("increment", [], { signal: controller.signal });
      // After the new Worker() (which holds this thread), while the worker sets up.
      await delay(0);
      const aborted = performance.now();
      controller.abort(new Error("no more"));
      const outcome = await call.then((value) => value, (err: Error) => err);
      if (typeof outcome === "number") {
        count = outcome; // it had run already
        continue;
      }
      assert.match(outcome.message, /no more/);
      const tookMs = performance.now() - aborted;
      assert.ok(tookMs < quickMs, `the abort took ${tookMs} ms (a start: ${startMs} ms)`);
      aborts++;
    }
    assert.equal(aborts, 1, "no abort landed while the worker started");
    // The plugin carries on from its state: the aborted call did not run.
    assert.equal(await plugin.callI32("increment", []), count + 1);
    // Nor does it count the start it left: no call took more than a few milliseconds.
    const slowestMs = (await plugin.metrics()).maxExecutionTimeNs / 1e6;
    assert.ok(slowestMs < quickMs, `a call counted ${slowestMs} ms (a start: ${startMs} ms)`);
  });

  await t.step("a plugin never called is parked too", async () => {
    const parked = workerEvents.parked;
    await using plugin = await counterPlugin();
    assert.ok(await parkedSince(parked));
    assert.equal(await plugin.callI32("increment", []), 1);
    assert.equal(await plugin.callI64("starts", []), 1n);
  });
});

Deno.test("A busy or never-idle worker plugin is not parked", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  await t.step("idleTimeoutMs: Infinity never parks", async () => {
    const parked = workerEvents.parked;
    await using plugin = await counterPlugin(Infinity);
    assert.equal(await plugin.callI32("increment", []), 1);
    await delay(200);
    assert.equal(workerEvents.parked, parked);
  });

  await t.step("calls closer together than the timeout keep the worker", async () => {
    await using plugin = await counterPlugin(300);
    const parked = workerEvents.parked;
    for (let i = 1; i <= 5; i++) {
      assert.equal(await plugin.callI32("increment", []), i);
      await delay(50);
    }
    assert.equal(workerEvents.parked, parked);
  });
});

/** Modules whose state is more than their memories and globals, and why. */
const UNCAPTURABLE: readonly [string, string, RegExp][] = [
  [
    "a table changed at run time",
    `(module (table 2 funcref) (elem declare func $f)
      (global $count (mut i32) (i32.const 0))
      (func $f)
      (func (export "increment") (result i32)
        (table.set (i32.const 1) (ref.func $f))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (global.get $count)))`,
    /table\.set/,
  ],
  [
    "an exported table",
    `(module (table (export "t") 1 funcref)
      (global $count (mut i32) (i32.const 0))
      (func (export "increment") (result i32)
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (global.get $count)))`,
    /exports a table/,
  ],
  [
    "a mutable reference global",
    `(module (global $r (mut externref) (ref.null extern))
      (global $count (mut i32) (i32.const 0))
      (func (export "increment") (result i32)
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (global.get $count)))`,
    /global 0 is a mutable externref/,
  ],
  [
    // Each kept global is an export: near the engine's million the load failed in a worker only
    // (inline it loaded), after seconds, and a park copied them all.
    "more mutable globals than are worth keeping",
    `(module ${"(global (mut i32) (i32.const 0))".repeat(10_001)}
      (global $count (mut i32) (i32.const 0))
      (func (export "increment") (result i32)
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (global.get $count)))`,
    /10002 mutable globals and 0 memories, more than 10000 to keep/,
  ],
  [
    "an imported memory (the runtime's, made anew for each instance)",
    `(module (import "env" "memory" (memory 1))
      (func (export "increment") (result i32)
        (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
        (i32.load (i32.const 0))))`,
    /imports a memory/,
  ],
];

Deno.test("A worker plugin whose state cannot be handed over is never parked", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  for (const [what, wat, reason] of UNCAPTURABLE) {
    await t.step(what, async () => {
      const { state } = instrument(await watToBinary(what, wat), { exportState: true });
      assert.match(state?.incomplete ?? "", reason);
      await using runtime = countingRuntime({ idleTimeoutMs: IDLE_MS });
      const plugin = await runtime.createPluginFromWat(wat);
      const parked = workerEvents.parked;
      const spawned = workerEvents.spawned;
      assert.equal(await plugin.callI32("increment", []), 1);
      await delay(IDLE_MS * 4);
      assert.equal(await plugin.callI32("increment", []), 2);
      assert.equal(workerEvents.parked, parked);
      assert.equal(workerEvents.spawned, spawned);
    });
  }
});

Deno.test("A worker plugin whose float global holds a NaN keeps it, bit for bit", {
  permissions: { read: READ_WORKERS },
}, async () => {
  // A JS number does not keep a NaN's payload: parked and restored, the globals read
  // 7fc00000 and 7ff8000000000000. Such a plugin is kept while the NaN is there.
  const wat = `(module
    (global $f (mut f32) (f32.const 0))
    (global $d (mut f64) (f64.const 0))
    (func (export "set")
      (global.set $f (f32.reinterpret_i32 (i32.const 0x7fa00001)))
      (global.set $d (f64.reinterpret_i64 (i64.const 0x7ff4000000000001))))
    (func (export "clear") (global.set $f (f32.const 1)) (global.set $d (f64.const 2)))
    (func (export "f_bits") (result i32) (i32.reinterpret_f32 (global.get $f)))
    (func (export "d_bits") (result i64) (i64.reinterpret_f64 (global.get $d))))`;
  await using runtime = countingRuntime({ idleTimeoutMs: IDLE_MS });
  const plugin = await runtime.createPluginFromWat(wat);
  await plugin.callVoid("set", []);
  const parked = workerEvents.parked;
  await delay(IDLE_MS * 4);
  assert.equal(await plugin.callI32("f_bits", []), 0x7fa00001);
  assert.equal(await plugin.callI64("d_bits", []), 0x7ff4000000000001n);
  assert.equal(workerEvents.parked, parked);
  // Each try wakes the worker, so they come ever later: not one per idle timeout.
  const kept = workerEvents.kept;
  await delay(IDLE_MS * 20);
  const tries = workerEvents.kept - kept;
  assert.ok(tries >= 1 && tries <= 6, `${tries} tries to park in ${IDLE_MS * 20} ms`);
  // So they do with no idle timeout at all.
  {
    await using eager = countingRuntime({ idleTimeoutMs: 0 });
    const nan = await eager.createPluginFromWat(wat);
    await nan.callVoid("set", []);
    const before = workerEvents.kept;
    await delay(500);
    const eagerTries = workerEvents.kept - before;
    assert.ok(eagerTries <= 8, `${eagerTries} tries to park in 500 ms with no idle timeout`);
  }
  // Only while: without the NaN it is parked again, as any other.
  await plugin.callVoid("clear", []);
  assert.ok(await parkedSince(parked));
  assert.equal(await plugin.callI64("d_bits", []), 0x4000000000000000n);
});

Deno.test("A worker plugin with more than 64 MiB of memory is not parked", {
  permissions: { read: READ_WORKERS },
}, async () => {
  // Parking copies every page out of the worker and into the next: a 1 GiB memory held the
  // host's event loop for 3.1 s. A worker is about 7 MB.
  const wat = `(module
    (memory (export "memory") 1)
    (global $count (mut i32) (i32.const 0))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "increment") (result i32)
      (global.set $count (i32.add (global.get $count) (i32.const 1)))
      (global.get $count)))`;
  await using runtime = countingRuntime({
    idleTimeoutMs: IDLE_MS,
    resourceLimits: { maxMemoryPages: 2048 },
  });
  const plugin = await runtime.createPluginFromWat(wat);
  assert.equal(await plugin.callI32("grow", [1024]), 1);
  const parked = workerEvents.parked;
  await delay(IDLE_MS * 4);
  assert.equal(await plugin.callI32("increment", []), 1);
  assert.equal(workerEvents.parked, parked, "65 MiB: kept");
  // At 64 MiB it is parked as any other.
  await using small = await runtime.createPluginFromWat(wat);
  assert.equal(await small.callI32("grow", [1023]), 1);
  assert.ok(await parkedSince(workerEvents.parked));
  assert.equal(await small.callI32("increment", []), 1);
});

Deno.test("instrument() with exportState exports memories and mutable globals", async () => {
  const bytes = await watToBinary("counter", COUNTER_WAT);
  const { bytes: out, state } = instrument(bytes, { exportState: true });
  assert.deepEqual(state, {
    incomplete: null,
    memories: [{ name: "__wasmplug_memory_0", pageSize: 65_536, memory64: false }],
    globals: ["__wasmplug_global_0", "__wasmplug_global_1", "__wasmplug_global_2"],
  });
  const names = WebAssembly.Module.exports(new WebAssembly.Module(out)).map((e) => e.name);
  assert.ok(names.includes("__wasmplug_global_2"));
  assert.equal(instrument(bytes, { fuel: true }).state, null);
});

Deno.test("new WasmRuntime() rejects a bad idleTimeoutMs", () => {
  for (const value of [-1, NaN]) {
    assert.throws(() => workerRuntime({ idleTimeoutMs: value }), RangeError);
  }
  assert.throws(
    () => workerRuntime({ idleTimeoutMs: "5" as unknown as number }),
    TypeError,
  );
});

Deno.test("A script that never closes its worker plugin exits once the worker is idle", {
  permissions: { run: [DENO] },
}, async () => {
  const idleMs = 200;
  const start = performance.now();
  // Killed after 20 s: without parking, the idle worker keeps the script alive forever.
  const { code, stdout, stderr } = await runFixture("never_closed.ts", [String(idleMs)], 20_000);
  assert.equal(code, 0, textOf(stderr));
  assert.equal(textOf(stdout), "1 2");
  const elapsed = performance.now() - start;
  assert.ok(elapsed < idleMs + 10_000, `the process took ${elapsed.toFixed(0)} ms to exit`);
});

/** How much later than usual `fixtures/slow_worker.ts` starts. */
const SLOW_BOOT_MS = 300;

Deno.test("A call's deadline starts when its respawned worker is ready", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const slowWorker = new URL("./fixtures/slow_worker.ts", import.meta.url);
  await using plugin = await counterPlugin(IDLE_MS, slowWorker);
  assert.equal(await plugin.callI32("increment", []), 1);
  assert.ok(await parkedSince(workerEvents.parked), "the worker was not parked");
  // The respawn alone (300 ms) takes longer than the call may: only the guest's run counts.
  // (A short run, so that it ends in time on a machine whose cores are all busy.)
  const start = performance.now();
  await plugin.callVoid("busy", [100_000], { timeoutMs: 250 });
  assert.ok(performance.now() - start >= SLOW_BOOT_MS, "the worker did not start slowly");
  assert.equal(await plugin.callI32("increment", []), 2);
  assert.equal((await plugin.metrics()).failureCount, 0);
});

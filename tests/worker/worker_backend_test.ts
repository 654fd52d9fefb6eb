import assert from "node:assert/strict";
import {
  Capability,
  type CompiledModule,
  InstantiationError,
  PluginStateError,
  ResourceLimitError,
  type RuntimeConfig,
  TimeoutError,
  type WasmPlugin,
  type WasmRuntime,
  WorkerCrashedError,
} from "../../mod.ts";
import { assertRejectsWith, putString, workerRuntime } from "../_helpers.ts";
import { faultyWorkers, httpFetch, READ_WORKERS } from "./_worker_helpers.ts";
import { toolCallWat } from "../fixtures/wat.ts";
import { withInternalOptions } from "../../src/backend/_internal_options.ts";

/**
 * `spin` counts its calls in `$entered`, then loops forever (`loop br 0`);
 * `wait` counts too, then waits on the host (`env.wait`, a linker function);
 * `sleep` counts, then sleeps in the worker (`env.host_sleep_ms`);
 * `fetch` is `env.host_http_fetch`. `entered` tells whether the instance is
 * the one that ran them (a respawned worker starts again from 0).
 */
const STUCK_WAT = `(module
  (import "env" "wait" (func $wait))
  (import "env" "host_http_fetch" (func $fetch (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (memory (export "memory") 1)
  (global $entered (mut i32) (i32.const 0))
  (func $enter (global.set $entered (i32.add (global.get $entered) (i32.const 1))))
  (func (export "spin") (call $enter) (loop br 0))
  (func (export "wait") (call $enter) (call $wait))
  (func (export "sleep") (param i32) (call $enter) (call $sleep (local.get 0)))
  (func (export "host_http_fetch") (param i32 i32 i32 i32) (result i32)
    (call $enter)
    (call $fetch (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "entered") (result i32) (global.get $entered)))`;

/** A worker runtime whose calls time out after 100 ms, without fuel metering in the way. */
function impatientRuntime(config: RuntimeConfig = {}): WasmRuntime {
  return workerRuntime({ ...config, resourceLimits: { maxExecutionTimeMs: 100, maxFuel: null } });
}

/** Gives the linker function `env.wait` behind `STUCK_WAT`'s `wait`. */
interface Stuck {
  readonly runtime: WasmRuntime;
  readonly compiled: CompiledModule;
  /** A plugin whose `env.wait` is `wait`; `network` also grants the faulty worker's fetches. */
  create(wait: () => unknown, options?: { network?: boolean }): Promise<WasmPlugin>;
}

async function stuckPlugins(runtime: WasmRuntime): Promise<Stuck> {
  const compiled = await runtime.compileWat("stuck", STUCK_WAT);
  return {
    runtime,
    compiled,
    create: (wait, { network = false } = {}) =>
      runtime.createPluginWithLinker(
        compiled,
        network
          ? {
            capabilities: [
              Capability.CallHostFunction,
              Capability.Timer,
              Capability.NetworkAccess,
            ],
            // Never contacted: the faulty worker acts on the path before any request.
            allowedHosts: ["127.0.0.1:1"],
          }
          : { capabilities: [Capability.CallHostFunction, Capability.Timer] },
        runtime.createLinker().funcWrap("env", "wait", wait),
      ),
  };
}

/** Runs `call`, asserts that it fails with `TimeoutError`, and returns how long that took. */
async function timeOut(call: () => Promise<unknown>, timeoutMs: number): Promise<number> {
  const start = performance.now();
  await assertRejectsWith(call, TimeoutError, { kind: "timeout", timeoutMs });
  return performance.now() - start;
}

Deno.test("A worker plugin stuck in `loop br 0` times out and its worker lives on", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  await using runtime = impatientRuntime();
  const { create } = await stuckPlugins(runtime);
  await using plugin = await create(() => {});

  await t.step("TimeoutError at its deadline while the host keeps serving timers", async () => {
    let ticks = 0;
    const interval = setInterval(() => ticks++, 5);
    try {
      const elapsed = await timeOut(() => plugin.callVoid("spin"), 100);
      // About 100 ms quiet; a busy machine delays the answer, not the stop (the next step
      // shows the worker lived on, which a kill after the grace would not).
      assert.ok(elapsed >= 95 && elapsed < 1000, `timed out after ${elapsed} ms`);
      // About 20 ticks of 5 ms fit in 100 ms; a blocked host would see none.
      assert.ok(ticks >= 4, `the host's timer ticked ${ticks} times`);
    } finally {
      clearInterval(interval);
    }
  });

  await t.step(
    "the interrupt flag stopped the guest: the next call runs on the same worker",
    async () => {
      assert.equal(await plugin.callI32("entered"), 1);
    },
  );

  await t.step("an abort signal stops it the same way, with the signal's reason", async () => {
    const reason = new Error("the user gave up");
    const call = plugin.callVoid("spin", [], { signal: AbortSignal.timeout(20) });
    await assert.rejects(call, (err) => err instanceof DOMException && err.name === "TimeoutError");
    const controller = new AbortController();
    const aborted = plugin.callVoid("spin", [], { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(aborted, (err) => err === reason);
    assert.equal(await plugin.callI32("entered"), 3);
  });

  await t.step("a signal aborted as the call starts stops it on the same worker", async () => {
    const controller = new AbortController();
    const call = plugin.callVoid("spin", [], { signal: controller.signal });
    // The flag is up before the worker has even begun the call.
    controller.abort(new Error("at once"));
    const start = performance.now();
    await assert.rejects(call, /at once/);
    const elapsed = performance.now() - start;
    // The same worker: its count survived (whether the guest got as far as
    // counting this call before the stop is a race, and either is right).
    const entered = await plugin.callI32("entered");
    assert.ok(entered === 3 || entered === 4, `entered = ${entered}`);
    // The stop word stopped it, not a kill after the 100 ms grace (the count above survived):
    // some 5 ms quiet, more on a busy machine.
    assert.ok(elapsed < 1000, `stopped after ${elapsed} ms`);
    assert.equal((await plugin.metrics()).failureCount, 4);
  });
});

Deno.test("A worker plugin waiting on a host call that never ends times out", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  await using runtime = impatientRuntime();
  const { create } = await stuckPlugins(runtime);

  await t.step("a linker function whose promise never settles", async () => {
    let waits = 0;
    await using plugin = await create(() => {
      waits++;
      return new Promise(() => {});
    });
    const elapsed = await timeOut(() => plugin.callVoid("wait"), 100);
    assert.ok(elapsed < 5000, `timed out after ${elapsed} ms`);
    assert.equal(waits, 1);
    // The host answered the guest with the timeout: its worker and state live on.
    assert.equal(await plugin.callI32("entered"), 1);
  });

  await t.step("an async tool that never settles", async () => {
    runtime.registerTool("never", () => new Promise(() => {}));
    await using plugin = await runtime.createPluginFromWat(toolCallWat("never"), {
      capabilities: [Capability.CallTool],
    });
    const elapsed = await timeOut(() => plugin.callI32("call"), 100);
    assert.ok(elapsed < 5000, `timed out after ${elapsed} ms`);
    assert.equal(await plugin.callI32("ok"), 7);
  });

  await t.step("an abort signal, with the signal's reason", async () => {
    await using plugin = await create(() => new Promise(() => {}));
    const reason = new Error("cancelled while waiting");
    const controller = new AbortController();
    const call = plugin.callVoid("wait", [], { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(call, (err) => err === reason);
    assert.equal(await plugin.callI32("entered"), 1);
  });

  await t.step("host_sleep_ms, cut short by the timeout or a signal", async () => {
    await using plugin = await create(() => {});
    const elapsed = await timeOut(() => plugin.callVoid("sleep", [60_000]), 100);
    assert.ok(elapsed < 5000, `timed out after ${elapsed} ms`);
    const reason = new Error("woken up");
    await assert.rejects(
      plugin.callVoid("sleep", [60_000], { signal: AbortSignal.timeout(20) }),
      (err) => err instanceof DOMException && err.name === "TimeoutError",
    );
    const controller = new AbortController();
    const call = plugin.callVoid("sleep", [60_000], { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(call, (err) => err === reason);
    // The sleeps were cancelled in the worker: it was not replaced.
    assert.equal(await plugin.callI32("entered"), 3);
  });

  await t.step("host functions that settle late answer nobody", async () => {
    let settle!: (value: unknown) => void;
    await using plugin = await create(() => new Promise((resolve) => settle = resolve));
    await timeOut(() => plugin.callVoid("wait"), 100);
    settle(undefined);
    assert.equal(await plugin.callI32("entered"), 1);
  });
});

Deno.test("A worker that does not stop within the grace period is replaced", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async () => {
  await using runtime = impatientRuntime(faultyWorkers());
  const { create } = await stuckPlugins(runtime);
  await using plugin = await create(() => {}, { network: true });
  await plugin.callVoid("wait");
  // The worker's thread spins in JavaScript: neither the flag nor an answer reaches it.
  const elapsed = await timeOut(() => httpFetch(plugin, "http://127.0.0.1:1/stuck"), 100);
  assert.ok(elapsed < 5000, `timed out after ${elapsed} ms`);
  // A fresh worker from the cached module: the state starts over.
  assert.equal(await plugin.callI32("entered"), 0);
  await plugin.callVoid("wait");
  assert.equal(await plugin.callI32("entered"), 1);
  assert.equal((await plugin.metrics()).failureCount, 1);
});

Deno.test("A worker that does not stop within the grace of an abort is replaced then", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async () => {
  // The deadline is far: the abort's grace, not the deadline, ends the wait for the answer.
  await using runtime = workerRuntime({
    ...faultyWorkers(),
    resourceLimits: { maxExecutionTimeMs: 8_000, maxFuel: null },
  });
  const { create } = await stuckPlugins(runtime);
  await using plugin = await create(() => {}, { network: true });
  const controller = new AbortController();
  const reason = new Error("aborted by the test");
  setTimeout(() => controller.abort(reason), 50);
  const start = performance.now();
  await assert.rejects(
    () => httpFetch(plugin, "http://127.0.0.1:1/stuck", { signal: controller.signal }),
    (err: unknown) => err === reason,
  );
  // 170 ms measured here (the abort, then 100 ms of grace); it took the whole 8 s before.
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 3000, `rejected after ${elapsed.toFixed(0)} ms`);
  assert.equal(await plugin.callI32("entered"), 0);
});

/**
 * A WASI-style reactor: `_initialize` and `init` count their runs, `env.wait`
 * lets a test fail the second `init`; `fetch` reaches the faulty worker.
 */
const REACTOR_WAT = `(module
  (import "env" "wait" (func $wait))
  (import "env" "host_http_fetch" (func $fetch (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $reactor (mut i32) (i32.const 0))
  (global $inits (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $reactor (i32.add (global.get $reactor) (i32.const 1))))
  (func (export "init") (call $wait) (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "host_http_fetch") (param i32 i32 i32 i32) (result i32)
    (call $fetch (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "initialized") (result i32)
    (i32.add (i32.mul (global.get $reactor) (i32.const 10)) (global.get $inits))))`;

Deno.test("A worker replaced after a crash runs the plugin's initializers again", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async (t) => {
  await using runtime = workerRuntime(faultyWorkers());
  const compiled = await runtime.compileWat("reactor", REACTOR_WAT);
  const create = (wait: () => void) =>
    runtime.createPluginWithLinker(compiled, {
      capabilities: [Capability.CallHostFunction, Capability.NetworkAccess],
      allowedHosts: ["127.0.0.1:1"],
    }, runtime.createLinker().funcWrap("env", "wait", wait));
  const crash = (plugin: WasmPlugin) =>
    assertRejectsWith(() => httpFetch(plugin, "http://127.0.0.1:1/crash"), WorkerCrashedError);

  await t.step("an initialized plugin stays initialized, each initializer run once", async () => {
    await using plugin = await create(() => {});
    await plugin.initialize();
    assert.equal(await plugin.callI32("initialized"), 11);
    await crash(plugin);
    // A fresh instance: its globals start over, then `_initialize` and `init` run once each.
    assert.equal(await plugin.callI32("initialized"), 11);
    assert.equal(plugin.state, "ready");
  });

  await t.step("one never initialized stays so", async () => {
    await using plugin = await create(() => {});
    await crash(plugin);
    assert.equal(await plugin.callI32("initialized"), 0);
  });

  await t.step("a memory access that starts it refuses the initializers' calls back", async () => {
    // An `init` whose host function called the plugin deadlocked a restart made for a memory
    // access: the call waited for the access's turn, the access for `init` (2 s, its limit).
    const refused: unknown[] = [];
    // deno-lint-ignore prefer-const
    let plugin: WasmPlugin;
    const wait = async () => {
      await plugin.callI32("initialized").catch((err) => refused.push(err));
    };
    plugin = await runtime.createPluginWithLinker(compiled, {
      capabilities: [Capability.CallHostFunction, Capability.NetworkAccess],
      allowedHosts: ["127.0.0.1:1"],
      resourceLimits: { maxExecutionTimeMs: 2_000 },
    }, runtime.createLinker().funcWrap("env", "wait", wait));
    await using _plugin = plugin;
    await plugin.initialize();
    await crash(plugin);
    const start = performance.now();
    await plugin.readMemory(0, 1);
    assert.ok(performance.now() - start < 1_000, "the restart waited for its own init");
    assert.equal(refused.length, 2);
    for (const err of refused) assert.ok(err instanceof PluginStateError, String(err));
    assert.equal(await plugin.callI32("initialized"), 11);
  });

  await t.step(
    "its initializers cannot stop it and wait; a stop that aborts ends them",
    async () => {
      // A stop() from `init` re-run for a memory access waited for the access, which waited for
      // `init`: until the start's limit (30 s by default); so did a stop({ abort: true }) from
      // outside while `init` waited on its host function.
      let phase = "first";
      let refused: unknown;
      let release = () => {};
      // deno-lint-ignore prefer-const
      let plugin: WasmPlugin;
      const wait = async () => {
        if (phase === "stop") await plugin.stop().catch((err) => refused = err);
        if (phase === "hold") await new Promise<void>((resolve) => release = resolve);
      };
      plugin = await runtime.createPluginWithLinker(compiled, {
        capabilities: [Capability.CallHostFunction, Capability.NetworkAccess],
        allowedHosts: ["127.0.0.1:1"],
      }, runtime.createLinker().funcWrap("env", "wait", wait));
      await using _plugin = plugin;
      await plugin.initialize();
      await crash(plugin);
      phase = "stop";
      const start = performance.now();
      await plugin.readMemory(0, 1);
      assert.ok(refused instanceof PluginStateError, String(refused));
      assert.equal(plugin.state, "ready");
      await crash(plugin);
      phase = "hold";
      // Right as the read starts the worker, before `init` runs: it waited for `init` then.
      const reading = plugin.readMemory(0, 1);
      await plugin.stop({ abort: true });
      await assertRejectsWith(() => reading, InstantiationError);
      release();
      assert.ok(performance.now() - start < 5_000, "a stop waited for the initializer");
      assert.equal(plugin.state, "stopped");
    },
  );

  await t.step("an initializer failing in the fresh instance fails the call", async () => {
    let inits = 0;
    await using plugin = await create(() => {
      if (++inits > 1) throw new Error("no second init");
    });
    await plugin.initialize();
    await crash(plugin);
    const error = await assertRejectsWith(
      () => plugin.callI32("initialized"),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.match(error.message, /Running the initializer "init" again failed: .*no second init/);
  });
});

Deno.test("A worker that crashes fails the call in flight with WorkerCrashedError", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async (t) => {
  await using runtime = workerRuntime(faultyWorkers());
  const { create } = await stuckPlugins(runtime);
  await using plugin = await create(() => {}, { network: true });

  await t.step("the call in flight", async () => {
    const error = await assertRejectsWith(
      () => httpFetch(plugin, "http://127.0.0.1:1/crash"),
      WorkerCrashedError,
      { kind: "worker_crashed" },
    );
    assert.match(error.message, /The plugin's worker crashed: .*crashed on purpose/);
    // The worker reports it itself: the plugin it served, and its stack as the cause.
    assert.match(error.message, /while it served plugin "stuck"/);
    assert.match((error.cause as Error).stack!, /faulty_worker\.ts/);
  });

  await t.step("an unhandled rejection in the worker ends it the same way", async () => {
    const error = await assertRejectsWith(
      () => httpFetch(plugin, "http://127.0.0.1:1/reject"),
      WorkerCrashedError,
      { kind: "worker_crashed" },
    );
    assert.match(error.message, /The plugin's worker crashed: Uncaught .*rejected on purpose/);
    assert.equal(await plugin.callI32("entered"), 0, "the next call did not get a new worker");
  });

  await t.step("the next call runs in a new worker", async () => {
    assert.equal(await plugin.callI32("entered"), 0);
    await plugin.callVoid("wait");
    assert.equal(await plugin.callI32("entered"), 1);
  });

  await t.step("calls posted ahead of the crashing call run in a new worker", async () => {
    const request = JSON.stringify({ url: "http://127.0.0.1:1/crash" });
    const [ptr, len] = await putString(plugin, 0, request);
    const crash = plugin.callI32("host_http_fetch", [ptr, len, 1024, 16_384]);
    const after = [plugin.callI32("entered"), plugin.callI32("entered")];
    await assertRejectsWith(() => crash, WorkerCrashedError, { kind: "worker_crashed" });
    assert.deepEqual(await Promise.all(after), [0, 0]);
  });

  await t.step("memory access after a crash also gets a new worker", async () => {
    await assert.rejects(httpFetch(plugin, "http://127.0.0.1:1/crash"), WorkerCrashedError);
    await plugin.writeMemory(0, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await plugin.readMemory(0, 3), new Uint8Array([1, 2, 3]));
  });
});

/**
 * `count(n)` loops n times between `env.mark(0)` and `env.mark(1)`;
 * `push(x, ms)` sleeps, then appends x to an array in memory and returns its
 * length.
 */
const WORK_WAT = `(module
  (import "env" "mark" (func $mark (param i32)))
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (memory (export "memory") 1)
  (global $length (mut i32) (i32.const 0))
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (call $mark (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $mark (i32.const 1))
    (local.get $i))
  (func (export "push") (param $x i32) (param $sleepMs i32) (result i32)
    (call $sleep (local.get $sleepMs))
    (i32.store (i32.mul (global.get $length) (i32.const 4)) (local.get $x))
    (global.set $length (i32.add (global.get $length) (i32.const 1)))
    (global.get $length)))`;

Deno.test("Worker plugins run in parallel, and each one's calls in order", {
  permissions: { read: READ_WORKERS },
}, async (t) => {
  await using runtime = workerRuntime({ resourceLimits: { maxFuel: null } });
  const compiled = await runtime.compileWat("work", WORK_WAT);
  const marks: string[] = [];
  const create = (name: string): Promise<WasmPlugin> =>
    runtime.createPluginWithLinker(
      compiled,
      { name, capabilities: [Capability.Timer, Capability.CallHostFunction] },
      runtime.createLinker().funcWrap("env", "mark", (end: number) => {
        marks.push(`${name} ${end ? "end" : "start"}`);
      }),
    );
  await using a = await create("a");
  await using b = await create("b");

  // Find a loop count that keeps one worker busy for about a second: long enough that a
  // loaded machine (load average 10 on 2 cores) still starts the other before it ends.
  let n = 1_000_000;
  let single = 0;
  while (single < 100) {
    n *= 2;
    const start = performance.now();
    await a.callI32("count", [n]);
    single = performance.now() - start;
  }
  n = Math.min(2 ** 31 - 1, Math.round(n * 1000 / single));
  marks.length = 0;
  // How much faster than one after the other is a benchmark's question
  // (bench/); here: both run at once, and both finish.
  const counts = await Promise.all([a.callI32("count", [n]), b.callI32("count", [n])]);

  await t.step("two plugins busy ~1 s each run at the same time", () => {
    assert.deepEqual(counts, [n, n]);
    // Each started before the other ended.
    assert.deepEqual(marks.slice(0, 2).sort(), ["a start", "b start"]);
  });

  await t.step("calls to one plugin are queued in order", async () => {
    const values = [5, 6, 7, 8, 9, 10];
    // Sleeping guests would interleave if the calls were not queued.
    const lengths = await Promise.all(values.map((x, i) => a.callI32("push", [x, 6 - i])));
    assert.deepEqual(lengths, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      [...new Int32Array((await a.readMemory(0, 24)).slice().buffer)],
      values,
    );
  });

  await t.step("memory access waits for the call in flight", async () => {
    const call = b.callI32("push", [42, 30]);
    const read = b.readMemory(0, 4);
    const write = b.writeMemory(4, new Uint8Array([1, 0, 0, 0]));
    assert.equal(await call, 1);
    assert.deepEqual(await read, new Uint8Array([42, 0, 0, 0]));
    await write;
    assert.equal(await b.callI32("push", [43, 0]), 2);
    assert.deepEqual(await b.readMemory(0, 8), new Uint8Array([42, 0, 0, 0, 43, 0, 0, 0]));
  });
});

/** `alloc` grows the memory to make room; `sum` adds the input's 32-bit words. */
const BIG_BYTES_WAT = `(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $n i32) (result i32) (local $at i32)
    (local.set $at (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.eq
          (memory.grow (i32.shr_u (i32.add (local.get $n) (i32.const 65535)) (i32.const 16)))
          (i32.const -1))
      (then unreachable))
    (local.get $at))
  (func (export "sum") (param $ptr i32) (param $len i32) (result i32)
    (local $end i32) (local $acc i32)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
        (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $ptr))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
        (br $next)))
    (local.get $acc)))`;

Deno.test("A worker plugin takes 64 MiB through callWithBytes()", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using runtime = workerRuntime({
    resourceLimits: { maxMemoryPages: 2048, maxFuel: null, maxExecutionTimeMs: 20_000 },
  });
  await using plugin = await runtime.createPluginFromWat(BIG_BYTES_WAT);
  const input = new Uint8Array(64 * 1024 * 1024);
  const words = new Uint32Array(input.buffer);
  for (let i = 0; i < words.length; i++) words[i] = i * 2654435761;
  let expected = 0;
  for (const word of words) expected = (expected + word) | 0;
  assert.equal(await plugin.callWithBytes("sum", input), expected);
  assert.ok((await plugin.metrics()).currentMemoryBytes > input.length);
});

Deno.test("A request too large for the worker fails alone: later calls and state are intact", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using runtime = workerRuntime({ resourceLimits: { maxExecutionTimeMs: 5_000 } });
  await using plugin = await runtime.createPluginFromWat(`(module
    (memory (export "memory") 1)
    (global $count (mut i32) (i32.const 0))
    (func (export "alloc") (param i32) (result i32) (i32.const 0))
    (func (export "dealloc") (param i32 i32))
    (func (export "echo") (param i32 i32) (result i64) (i64.const 0))
    (func (export "inc") (result i32)
      (global.set $count (i32.add (global.get $count) (i32.const 1)))
      (global.get $count)))`);
  await plugin.writeMemory(100, new Uint8Array([42]));
  assert.equal(await plugin.callI32("inc"), 1);
  // Past the channel's 1 GiB: refused before anything is sent (the bytes are never touched).
  const huge = new Uint8Array(1100 * 1024 * 1024);
  await assertRejectsWith(() => plugin.writeMemory(0, huge), ResourceLimitError);
  await assertRejectsWith(() => plugin.callBytes("echo", huge), ResourceLimitError);
  // The worker waits on the channel the refused requests would have taken: they did not take it.
  assert.equal(await plugin.callI32("inc"), 2);
  assert.deepEqual(await plugin.readMemory(100, 1), new Uint8Array([42]));
  assert.equal(await plugin.callI32("inc"), 3);
});

Deno.test("Host calls carry more than the channel's initial 64 KiB", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using runtime = workerRuntime();
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (import "env" "host_storage_set" (func $set (param i32 i32 i32 i32) (result i32)))
      (import "env" "host_storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 8)
      (func (export "set") (param i32 i32 i32 i32) (result i32)
        (call $set (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
      (func (export "get") (param i32 i32 i32 i32) (result i32)
        (call $get (local.get 0) (local.get 1) (local.get 2) (local.get 3))))`,
    { capabilities: [Capability.WriteState, Capability.ReadState] },
  );
  const value = new Uint8Array(200_000).map((_, i) => i * 7);
  const [key, keyLen] = await putString(plugin, 0, "big");
  await plugin.writeMemory(16, value);
  assert.equal(await plugin.callI32("set", [key, keyLen, 16, value.length]), 0);
  assert.equal(await plugin.callI32("get", [key, keyLen, 250_000, value.length]), value.length);
  assert.deepEqual(await plugin.readMemory(250_000, value.length), value);
});

Deno.test("A worker that never reports ready fails createPlugin after the boot timeout", {
  permissions: { read: READ_WORKERS },
}, async () => {
  // Read at each spawn: the test puts the real worker back by deleting them.
  const internal: { workerUrl?: URL; workerBootTimeoutMs?: number } = {
    workerUrl: new URL("./fixtures/silent_worker.ts", import.meta.url),
    workerBootTimeoutMs: 200,
  };
  await using runtime = workerRuntime(withInternalOptions({}, internal));
  try {
    const start = performance.now();
    const error = await assertRejectsWith(
      () => runtime.createPluginFromWat('(module (func (export "one") (result i32) i32.const 1))'),
      WorkerCrashedError,
      { kind: "worker_crashed" },
    );
    const elapsed = performance.now() - start;
    assert.match(error.message, /did not start within 200 ms/);
    assert.ok(elapsed >= 190 && elapsed < 5_000, `failed after ${elapsed.toFixed(0)} ms`);
    assert.equal(runtime.pluginCount, 0);
  } finally {
    delete internal.workerUrl;
    delete internal.workerBootTimeoutMs;
  }
  // The runtime is fine: the next plugin gets a real worker.
  await using plugin = await runtime.createPluginFromWat(
    '(module (func (export "one") (result i32) i32.const 1))',
  );
  assert.equal(await plugin.callI32("one"), 1);
});

Deno.test("After a crash, memory accesses keep their order and outlast a stop", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async (t) => {
  await using runtime = workerRuntime(faultyWorkers());
  // The start function calls a host function: the new worker's start has a host call too.
  const compiled = await runtime.compileWat(
    "start_hook",
    `(module
      (import "env" "hook" (func $hook))
      (import "env" "host_http_fetch" (func $fetch (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $start (call $hook))
      (start $start)
      (func (export "host_http_fetch") (param i32 i32 i32 i32) (result i32)
        (call $fetch (local.get 0) (local.get 1) (local.get 2) (local.get 3))))`,
  );
  const plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction, Capability.NetworkAccess],
    allowedHosts: ["127.0.0.1:1"],
  }, runtime.createLinker().funcWrap("env", "hook", () => {}));
  const crash = () =>
    assertRejectsWith(() => httpFetch(plugin, "http://127.0.0.1:1/crash"), WorkerCrashedError);

  await t.step("a read made after a write sees it, in the worker started for them", async () => {
    await crash();
    // The start function's host call once served the read first, ahead of the write.
    const written = plugin.writeMemory(2000, new Uint8Array([5]));
    const read = plugin.readMemory(2000, 1);
    await written;
    assert.deepEqual(await read, new Uint8Array([5]));
  });

  await t.step("a read made before stop() is served, not refused as closed", async () => {
    await crash();
    const read = plugin.readMemory(2000, 1);
    const stopped = plugin.stop();
    // The new worker's instance starts afresh: what the crash lost is lost.
    assert.deepEqual(await read, new Uint8Array([0]));
    await stopped;
  });
});

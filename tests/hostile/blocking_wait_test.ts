/**
 * Hostile atomic waits: a plugin has no second thread, so nothing can notify
 * a `memory.atomic.wait32`/`wait64` on its shared memory. A wait with no
 * timeout still ends the call with its `TimeoutError` at the deadline, in both
 * isolations, leaves no thread behind, and lets the process exit once the
 * runtime is closed; finite waits and waits on a value that differs answer as
 * the instruction does.
 */
import assert from "node:assert/strict";
import { TimeoutError } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";
import { runToExit, settleThreads, threads } from "./_threads.ts";

/**
 * `wait32(ms)` and `wait64(ms)` wait on a value that stays equal, `ms`
 * milliseconds or, when negative, forever; `differ()` waits on a value that
 * differs; `ok()` answers 1.
 */
const WAIT_WAT = `(module
  (memory (export "memory") 1 1 shared)
  (func $timeout (param $ms i32) (result i64)
    (select (i64.const -1) (i64.mul (i64.extend_i32_s (local.get $ms)) (i64.const 1000000))
      (i32.lt_s (local.get $ms) (i32.const 0))))
  (func (export "wait32") (param $ms i32) (result i32)
    (memory.atomic.wait32 (i32.const 0) (i32.const 0) (call $timeout (local.get $ms))))
  (func (export "wait64") (param $ms i32) (result i32)
    (memory.atomic.wait64 (i32.const 8) (i64.const 0) (call $timeout (local.get $ms))))
  (func (export "differ") (result i32)
    (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const -1)))
  (func (export "ok") (result i32) i32.const 1)
  ;; Waits \`ms\` milliseconds again and again: sleeps that cost no fuel.
  (func (export "wait_loop") (param $ms i32) (result i32)
    (loop $again
      (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (call $timeout (local.get $ms))))
      (br $again))
    i32.const 0))`;

const LIMIT_MS = 100;

// Slow: it counts the process's threads, which the parallel default suite shares.
testEachIsolation("Hostile: an atomic wait without timeout ends at the deadline", {
  permissions: { run: ["ls"] },
  slow: true,
}, async (t, { loadPlugin }) => {
  // One plugin first, so threads the process keeps once it ran one are counted.
  await (await loadPlugin(WAIT_WAT))[Symbol.asyncDispose]();
  const before = await threads();

  await t.step("an infinite wait ends in a TimeoutError within its limit", async () => {
    await using loaded = await loadPlugin(WAIT_WAT, {
      resourceLimits: { maxExecutionTimeMs: LIMIT_MS },
    });
    const { plugin } = loaded;
    for (const fn of ["wait32", "wait64", "wait32"]) {
      const start = performance.now();
      await within(() =>
        assertRejectsWith(() => plugin.callI32(fn, [-1]), TimeoutError, {
          kind: "timeout",
          timeoutMs: LIMIT_MS,
        })
      );
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= LIMIT_MS - 10, `ended after ${elapsed.toFixed(0)} ms, before its limit`);
      assert.ok(elapsed < LIMIT_MS + 400, `ended after ${elapsed.toFixed(0)} ms`);
      assert.equal(await plugin.callI32("ok"), 1);
    }
  });

  await t.step("a call's own timeoutMs bounds the wait too", async () => {
    await using loaded = await loadPlugin(WAIT_WAT);
    await within(() =>
      assertRejectsWith(
        () => loaded.plugin.callI32("wait32", [-1], { timeoutMs: 50 }),
        TimeoutError,
        { timeoutMs: 50 },
      )
    );
    assert.equal(await loaded.plugin.callI32("ok"), 1);
  });

  await t.step("finite waits time out and a differing value answers at once", async () => {
    await using loaded = await loadPlugin(WAIT_WAT);
    const { plugin } = loaded;
    const start = performance.now();
    assert.equal(await plugin.callI32("wait32", [30]), 2);
    assert.ok(performance.now() - start >= 29, "the wait lasted its timeout");
    assert.equal(await plugin.callI32("wait64", [0]), 2);
    assert.equal(await plugin.callI32("differ"), 1);
  });

  await t.step("no thread is left behind", async () => {
    const after = await settleThreads(before);
    assert.ok(after <= before, `${after} threads after, ${before} before`);
  });
});

testEachIsolation("Hostile: a loop of short atomic waits ends at the deadline", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  for (const fuelMetering of [true, false]) {
    await using loaded = await loadPlugin(
      WAIT_WAT,
      {
        resourceLimits: {
          maxExecutionTimeMs: LIMIT_MS,
          ...(fuelMetering ? {} : { maxFuel: null }),
        },
      },
      { execution: { fuelMetering } },
    );
    for (const ms of [1, 5]) {
      // Before the fix, seconds to a minute: the waits slept between clock reads.
      await within(() =>
        assertRejectsWith(() => loaded.plugin.callI32("wait_loop", [ms]), TimeoutError)
      );
    }
  }
});

Deno.test("Hostile: a process whose worker plugin waits forever exits after close()", {
  permissions: { run: [Deno.execPath()], read: true },
}, async () => {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  // close() waits for the call in flight, which ends at its deadline; its
  // worker is terminated then, and must not stay blocked in its wait.
  const script = `
    import { WasmRuntime } from ${JSON.stringify(mod)};
    const runtime = new WasmRuntime({ execution: { isolation: "worker" } });
    const plugin = await runtime.createPluginFromWat(${JSON.stringify(WAIT_WAT)}, {
      resourceLimits: { maxExecutionTimeMs: 300 },
    });
    const call = plugin.callI32("wait32", [-1]).then(() => "returned", (err) => err.name);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await runtime.close();
    console.log(await call);
  `;
  assert.equal(await runToExit(script), "TimeoutError");
});

/**
 * Hostile WASI sleeps: a `poll_oneoff` on a clock far past the call's
 * deadline ends the call with its `TimeoutError` at the deadline, in both
 * isolations, leaves no thread behind, and lets the process exit once the
 * runtime is closed.
 */
import assert from "node:assert/strict";
import { Capability, TimeoutError } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";
import { runToExit, settleThreads, threads } from "./_threads.ts";

/**
 * `sleep(ms)` waits on one monotonic clock subscription of `ms`
 * milliseconds; `ok()` answers 1.
 */
export const SLEEP_WAT = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "sleep") (param $ms i32) (result i32)
    (i64.store (i32.const 0) (i64.const 7))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24)
      (i64.mul (i64.extend_i32_u (local.get $ms)) (i64.const 1000000)))
    (i32.store16 (i32.const 40) (i32.const 0))
    (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
  (func (export "ok") (result i32) i32.const 1))`;

const HOUR_MS = 3_600_000;

// Slow: it counts the process's threads, which the parallel default suite shares.
testEachIsolation("Hostile WASI: a poll_oneoff sleep past the deadline ends at the deadline", {
  permissions: { run: ["ls"] },
  slow: true,
}, async (t, { loadPlugin }) => {
  // One plugin first, so threads the process keeps once it ran one are counted.
  await (await loadPlugin(SLEEP_WAT, { capabilities: [Capability.Wasi] }))[Symbol.asyncDispose]();
  const before = await threads();

  await t.step("a one-hour sleep ends in a TimeoutError within its limit", async () => {
    await using loaded = await loadPlugin(SLEEP_WAT, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxExecutionTimeMs: 100 },
    });
    const { plugin } = loaded;
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      await within(() =>
        assertRejectsWith(() => plugin.callI32("sleep", [HOUR_MS]), TimeoutError, {
          kind: "timeout",
          timeoutMs: 100,
        })
      );
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 90, `ended after ${elapsed.toFixed(0)} ms, before its deadline`);
      assert.ok(elapsed < 100 + 400, `ended after ${elapsed.toFixed(0)} ms`);
      assert.equal(await plugin.callI32("ok"), 1);
    }
    assert.equal(await plugin.callI32("sleep", [5]), 0, "a short sleep still works");
  });

  await t.step("a call's own timeoutMs bounds the sleep too", async () => {
    await using loaded = await loadPlugin(SLEEP_WAT, { capabilities: [Capability.Wasi] });
    await within(() =>
      assertRejectsWith(
        () => loaded.plugin.callI32("sleep", [HOUR_MS], { timeoutMs: 50 }),
        TimeoutError,
        { timeoutMs: 50 },
      )
    );
    assert.equal(await loaded.plugin.callI32("ok"), 1);
  });

  await t.step("no thread is left behind", async () => {
    const after = await settleThreads(before);
    assert.ok(after <= before, `${after} threads after, ${before} before`);
  });
});

Deno.test("Hostile WASI: a process whose worker plugin sleeps forever exits after close()", {
  permissions: { run: [Deno.execPath()], read: true },
}, async () => {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  // close() waits for the call in flight, which ends at its deadline; its
  // worker is terminated then, and must not stay blocked in its sleep.
  const script = `
    import { Capability, WasmRuntime } from ${JSON.stringify(mod)};
    const runtime = new WasmRuntime({ execution: { isolation: "worker" } });
    const plugin = await runtime.createPluginFromWat(${JSON.stringify(SLEEP_WAT)}, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxExecutionTimeMs: 300 },
    });
    const call = plugin.callI32("sleep", [${HOUR_MS}]).then(
      () => "returned",
      (err) => err.name,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await runtime.close();
    console.log(await call);
  `;
  assert.equal(await runToExit(script), "TimeoutError");
});

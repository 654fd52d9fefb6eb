/**
 * Hostile start functions: one that never returns and one that traps. The
 * load fails with an InstantiationError, no plugin is left behind, and the
 * runtime still loads and runs a well-behaved plugin.
 */
import assert from "node:assert/strict";
import {
  CallDepthExceededError,
  FuelExhaustedError,
  InstantiationError,
  TimeoutError,
  TrapError,
  WasmError,
} from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";

const OK = `(func (export "ok") (result i32) i32.const 1)`;

testEachIsolation("Hostile: a start function that never returns or traps fails the load", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({
    resourceLimits: { maxFuel: null, maxExecutionTimeMs: 50, maxCallDepth: 40 },
  });

  /** Asserts nothing was left behind and a normal plugin still loads and answers. */
  async function assertUnharmed(): Promise<void> {
    assert.equal(runtime.pluginCount, 0);
    await using plugin = await runtime.createPluginFromWat(`(module ${OK})`);
    assert.equal(await plugin.callI32("ok"), 1);
  }

  await t.step({
    name: "`loop br 0` in start: InstantiationError caused by TimeoutError",
    fn: async () => {
      const start = performance.now();
      const error = await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(
            `(module (func $start (loop $l (br $l))) (start $start) ${OK})`,
          ),
        InstantiationError,
        { kind: "instantiation" },
      );
      assert.ok(error.cause instanceof TimeoutError, `cause: ${error.cause}`);
      assert.ok(performance.now() - start < 2_000);
      await assertUnharmed();
    },
  });

  await t.step(
    "`loop br 0` in start: the load fails in time and leaves nothing behind",
    async () => {
      const start = performance.now();
      const error = await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(
            `(module (func $start (loop $l (br $l))) (start $start) ${OK})`,
          ),
        WasmError,
      );
      // Inline: InstantiationError caused by TimeoutError; worker: a bare TimeoutError (see above).
      const timeout = error instanceof InstantiationError ? error.cause : error;
      assert.ok(timeout instanceof TimeoutError, `${error}, cause: ${error.cause}`);
      assert.ok(performance.now() - start < 2_000);
      await assertUnharmed();
    },
  );

  await t.step("with fuel, the start loop is a FuelExhaustedError cause", async () => {
    const error = await assertRejectsWith(
      () =>
        runtime.createPluginFromWat(
          `(module (func $start (loop $l (br $l))) (start $start) ${OK})`,
          { resourceLimits: { maxFuel: 20_000, maxExecutionTimeMs: 10_000 } },
        ),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.ok(error.cause instanceof FuelExhaustedError, `cause: ${error.cause}`);
    await assertUnharmed();
  });

  await t.step("a start function that traps: InstantiationError caused by a trap", async () => {
    for (const body of ["unreachable", "(drop (i32.div_s (i32.const 1) (i32.const 0)))"]) {
      const error = await assertRejectsWith(
        () => runtime.createPluginFromWat(`(module (func $start ${body}) (start $start) ${OK})`),
        InstantiationError,
        { kind: "instantiation" },
      );
      assert.ok(error.cause instanceof TrapError, `cause: ${error.cause}`);
      await assertUnharmed();
    }
  });

  await t.step("a start function that recurses forever: CallDepthExceededError cause", async () => {
    const error = await assertRejectsWith(
      () =>
        runtime.createPluginFromWat(
          `(module (func $start (call $start)) (start $start) ${OK})`,
        ),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.ok(error.cause instanceof CallDepthExceededError, `cause: ${error.cause}`);
    await assertUnharmed();
  });
});

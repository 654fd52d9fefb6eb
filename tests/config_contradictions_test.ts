/**
 * Settings that contradict each other are refused with an error naming
 * them, never half-applied (issue #15: "No silent settings"). What
 * `maxFuel: null`, `fuelMetering` and `epochInterruption` do is exactly what
 * the README's limits section says.
 */
import assert from "node:assert/strict";
import { Capability, FuelExhaustedError, RESTRICTIVE_LIMITS, TimeoutError } from "../mod.ts";
import { LOOPS_WAT as LOOP_WAT } from "./fixtures/wat.ts";
import { assertRejectsWith, inlineRuntime, isolatedRuntime, ISOLATIONS } from "./_helpers.ts";

const UNMETERED = { fuelMetering: false } as const;

Deno.test("A fuel limit without fuel metering is a RangeError naming both settings", async (t) => {
  await t.step("in the runtime's resourceLimits", () => {
    assert.throws(
      () => inlineRuntime({ execution: UNMETERED, resourceLimits: { maxFuel: 10 } }),
      {
        name: "RangeError",
        message:
          /'maxFuel' = 10 in the runtime config's resourceLimits: execution\.fuelMetering is false/,
      },
    );
  });

  await t.step("with a preset that has a fuel budget", () => {
    assert.throws(
      () => inlineRuntime({ execution: UNMETERED, resourceLimits: RESTRICTIVE_LIMITS }),
      { name: "RangeError", message: /'maxFuel' = 10000000 .*set maxFuel to null/ },
    );
  });

  await t.step("in a plugin's resourceLimits", async () => {
    await using runtime = inlineRuntime({ execution: UNMETERED });
    await assert.rejects(
      runtime.createPluginFromWat(LOOP_WAT, { resourceLimits: { maxFuel: 10 } }),
      { name: "RangeError", message: /in the plugin config's resourceLimits/ },
    );
  });
});

for (const isolation of ISOLATIONS) {
  Deno.test(`${isolation}: without fuel metering, maxFuel is null and nothing is counted`, async () => {
    await using runtime = isolatedRuntime(isolation, { execution: UNMETERED });
    assert.equal(runtime.limits.maxFuel, null);
    await using plugin = await runtime.createPluginFromWat(LOOP_WAT, {
      resourceLimits: { maxFuel: null },
    });
    assert.equal(plugin.limits.maxFuel, null);
    assert.equal(await plugin.callI32("count", [1000]), 1000);
    assert.equal((await plugin.metrics()).fuelConsumed, 0);
    await assert.rejects(plugin.callI32("count", [10], { fuel: 5 }), {
      name: "RangeError",
      message: /'fuel' = 5: the runtime does not meter fuel/,
    });
  });

  Deno.test(`${isolation}: maxFuel null sets no budget but fuel is still counted`, async () => {
    await using runtime = isolatedRuntime(isolation, { resourceLimits: { maxFuel: null } });
    await using plugin = await runtime.createPluginFromWat(LOOP_WAT);
    assert.equal(plugin.limits.maxFuel, null);
    assert.equal(await plugin.callI32("count", [1000]), 1000);
    const counted = (await plugin.metrics()).fuelConsumed;
    assert.ok(counted > 1000, `expected the loop's fuel to be counted, got ${counted}`);
    // A call may still set its own budget under an unlimited plugin limit.
    await assertRejectsWith(
      () => plugin.callI32("count", [1_000_000], { fuel: 500 }),
      FuelExhaustedError,
      { fuelLimit: 500 },
    );
  });
}

Deno.test("inline without epochInterruption: the deadline still ends host waits", async () => {
  await using runtime = inlineRuntime({
    execution: { epochInterruption: false },
    resourceLimits: { maxExecutionTimeMs: 200 },
  });
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (import "env" "host_sleep_ms" (func $sleep (param i32)))
      (func (export "nap") (call $sleep (i32.const 60000))))`,
    { capabilities: [Capability.Timer] },
  );
  const started = performance.now();
  await assertRejectsWith(() => plugin.callVoid("nap", []), TimeoutError, { timeoutMs: 200 });
  assert.ok(performance.now() - started < 30_000, "the sleep was cut short by the deadline");
});

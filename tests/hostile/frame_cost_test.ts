/**
 * Hostile plugins whose cost is in what they declare rather than what they
 * run: functions with tens of thousands of locals, which the engine zeroes on
 * every entry (12 µs a call for 49 000 `v128` locals), and modules whose
 * declared locals the engine takes seconds to validate.
 */
import assert from "node:assert/strict";
import { CompilationError, FuelExhaustedError, TimeoutError, WasmRuntime } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { assemble, leb } from "../instrument/_wasm.ts";

/**
 * `warm` runs a fast loop for about `ms` (the fuel slices and the clock's
 * pacing grow), then `attack` calls `$big`, whose body is empty and whose
 * locals are `count` of `type`, four times an iteration, for ever.
 */
function bigFrameWat(count: number, type: string): string {
  return `(module
  (func $big (local ${Array(count).fill(type).join(" ")}))
  (func (export "attack") (param $warm i32)
    (loop $fast
      (local.set $warm (i32.sub (local.get $warm) (i32.const 1)))
      (br_if $fast (local.get $warm)))
    (loop $slow (call $big) (call $big) (call $big) (call $big) (br $slow))))`;
}

/** How long after its deadline the attack may end: a few hook intervals, loaded machine. */
const LATE_MS = 400;

testEachIsolation(
  "Hostile: calling a function with 49 000 locals in a loop ends at its deadline",
  { permissions: "none" },
  async (t, { loadPlugin }) => {
    // Before: fuel charged nothing for the zeroing, so a slice grown on fast code held the
    // next deadline check for seconds (1.4-3 s for a 100 ms timeout, inline).
    for (const fuelMetering of [true, false]) {
      await t.step(`with fuel metering ${fuelMetering ? "on" : "off"}`, async () => {
        await using loaded = await loadPlugin(bigFrameWat(49_000, "v128"), {
          resourceLimits: { maxExecutionTimeMs: 100, maxFuel: null },
        }, { execution: { fuelMetering } });
        const started = performance.now();
        await assertRejectsWith(() => loaded.plugin.callVoid("attack", [20_000_000]), TimeoutError);
        const tookMs = performance.now() - started;
        assert.ok(tookMs < 100 + LATE_MS, `ended after ${tookMs.toFixed(0)} ms`);
      });
    }
    await t.step("with a fuel budget, the entries' zeroing uses it up", async () => {
      await using loaded = await loadPlugin(bigFrameWat(49_000, "v128"), {
        resourceLimits: { maxExecutionTimeMs: 10_000, maxFuel: 10_000_000 },
      });
      const started = performance.now();
      await assertRejectsWith(() => loaded.plugin.callVoid("attack", [1]), FuelExhaustedError);
      // 10 million units are some 800 calls: about 10 ms of zeroing.
      const tookMs = performance.now() - started;
      assert.ok(tookMs < 1_000, `ended after ${tookMs.toFixed(0)} ms`);
    });
  },
);

testEachIsolation(
  "A function's declared locals beyond 1 KiB cost a unit per 64 bytes on each entry",
  { permissions: "none" },
  async (_t, { loadPlugin }) => {
    const wat = `(module
      (func $free (local ${Array(128).fill("i64").join(" ")}))
      (func $paying (local ${Array(1024).fill("i64").join(" ")}))
      (func (export "call_free") (call $free))
      (func (export "call_paying") (call $paying)))`;
    await using loaded = await loadPlugin(wat, { resourceLimits: { maxFuel: 1_000_000 } });
    const { plugin } = loaded;
    const fuelOf = async (fn: string): Promise<number> => {
      const before = (await plugin.metrics()).fuelConsumed;
      await plugin.callVoid(fn);
      return (await plugin.metrics()).fuelConsumed - before;
    };
    // 128 i64 locals are 1 KiB: free. 1024 are 8 KiB: (8192 - 1024) / 64 = 112 units more.
    assert.equal(await fuelOf("call_paying") - await fuelOf("call_free"), 112);
  },
);

Deno.test("A module declaring millions of locals is refused before the engine reads it", async () => {
  // 100 000 functions of 50 000 locals each, in 8 bytes apiece: the engine's validation held
  // the host's thread for seconds (a 1 MB module: 2.5-10 s).
  const functions = 100_000;
  const body = [6, 1, 0xd0, 0x86, 0x03, 0x7f, 0x01, 0x0b]; // size 6: 50 000 i32, nop, end
  const code = new Uint8Array(leb(functions).length + functions * body.length);
  code.set(leb(functions));
  for (let at = leb(functions).length; at < code.length; at += body.length) code.set(body, at);
  const bytes = assemble(
    [1, [1, 0x60, 0, 0]], // type: () -> ()
    [3, [...leb(functions), ...new Array(functions).fill(0)]],
    [10, code],
  );
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const started = performance.now();
  const error = await assertRejectsWith(() => runtime.compile("locals", bytes), CompilationError);
  assert.match(error.message, /declare more than \d+ locals/);
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 500, `refused after ${tookMs.toFixed(0)} ms`);
});

import assert from "node:assert/strict";
import { instrument, type InstrumentOptions, TrapReason } from "../../src/instrument/instrument.ts";
import { load } from "./_host.ts";
import { callAndInterrupt } from "./_interrupt.ts";
import { wat } from "./_wat.ts";

/** Every bulk instruction, each in a function of four instructions with the length as parameter. */
const BULK = `(module
  (memory $m (export "memory") 1) (memory $m64 i64 1)
  (table $t 100 funcref) (table $t64 i64 100 funcref)
  (data $d "${"x".repeat(200)}")
  (elem $e func ${"$f ".repeat(20)})
  (func $f)
  (func (export "fill") (param $n i32) (memory.fill $m (i32.const 0) (i32.const 7) (local.get $n)))
  (func (export "copy") (param $n i32)
    (memory.copy $m $m (i32.const 0) (i32.const 100) (local.get $n)))
  (func (export "init") (param $n i32) (memory.init $d (i32.const 0) (i32.const 0) (local.get $n)))
  (func (export "fill64") (param $n i64)
    (memory.fill $m64 (i64.const 0) (i32.const 7) (local.get $n)))
  (func (export "copy_mixed") (param $n i32)
    (memory.copy $m $m64 (i32.const 0) (i64.const 0) (local.get $n)))
  (func (export "table_fill") (param $n i32)
    (table.fill $t (i32.const 0) (ref.null func) (local.get $n)))
  (func (export "table_copy") (param $n i32)
    (table.copy $t $t (i32.const 0) (i32.const 50) (local.get $n)))
  (func (export "table_init") (param $n i32)
    (table.init $t $e (i32.const 0) (i32.const 0) (local.get $n)))
  (func (export "table_fill64") (param $n i64)
    (table.fill $t64 (i64.const 0) (ref.null func) (local.get $n))))`;

const FUEL_MODES: [string, InstrumentOptions][] = [
  ["fuel", { fuel: true }],
  ["fuel, depth and a clock deadline", { fuel: true, callDepth: true, deadline: "clock" }],
];

const BUDGET = 1n << 40n;

Deno.test("fuel pass charges bulk instructions for their length", async (t) => {
  for (const [name, options] of FUEL_MODES) {
    await t.step(name, () => {
      const plugin = load(BULK, options);
      const consumed = (fn: string, n: number | bigint): bigint => {
        plugin.call(fn, [n], { fuel: BUDGET });
        assert.equal(plugin.limits.trapReason, TrapReason.None);
        return BUDGET - plugin.limits.fuelRemaining;
      };
      // Four instructions, and one unit per 64 bytes or per element.
      assert.equal(consumed("fill", 0), 4n);
      assert.equal(consumed("fill", 63), 4n);
      assert.equal(consumed("fill", 64), 5n);
      assert.equal(consumed("fill", 65536), 4n + 1024n);
      assert.equal(consumed("copy", 640), 14n);
      assert.equal(consumed("init", 200), 7n);
      assert.equal(consumed("fill64", 6400n), 104n);
      assert.equal(consumed("copy_mixed", 128), 6n);
      assert.equal(consumed("table_fill", 30), 34n);
      assert.equal(consumed("table_copy", 50), 54n);
      assert.equal(consumed("table_init", 20), 24n);
      assert.equal(consumed("table_fill64", 10n), 14n);
    });
  }

  await t.step("an instruction out of bounds pays for its length, then traps as its own", () => {
    const plugin = load(BULK, { fuel: true });
    const trapped = (fn: string, n: number | bigint): bigint => {
      assert.throws(() => plugin.call(fn, [n], { fuel: BUDGET }), WebAssembly.RuntimeError);
      assert.equal(plugin.limits.trapReason, TrapReason.None);
      return BUDGET - plugin.limits.fuelRemaining;
    };
    assert.equal(trapped("fill", 65537), 4n + 1024n);
    assert.equal(trapped("table_fill", 101), 4n + 101n);
    // Huge 64-bit lengths pay at most 2^32 units.
    assert.equal(trapped("fill64", 1n << 63n), 4n + (1n << 32n));
    assert.equal(trapped("table_fill64", -1n), 4n + (1n << 32n));
  });

  await t.step("a budget short of the length stops the call before the instruction runs", () => {
    const plugin = load(BULK, { fuel: true });
    assert.throws(() => plugin.call("fill", [65536], { fuel: 1000n }), WebAssembly.RuntimeError);
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    const memory = plugin.instance.exports.memory as WebAssembly.Memory;
    assert.ok(new Uint8Array(memory.buffer).every((byte) => byte === 0));
    plugin.call("fill", [65536], { fuel: BUDGET });
    assert.ok(new Uint8Array(memory.buffer).every((byte) => byte === 7));
  });
});

/** Fills 16 MiB `$n` times, or 512 KiB (below the size checked at once). */
const FILLS = `(module
  (memory 256)
  (func (export "fills") (param $n i32)
    (loop $l
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 16777216))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "small_fills") (param $n i32)
    (loop $l
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 524288))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`;

const DEADLINE_MS = 200;
/** How far past its deadline a loop of bulk instructions may stop (generous: CI shares cores). */
const MARGIN_MS = 300;

Deno.test("bulk instructions stop at the deadline", async (t) => {
  for (const fuel of [false, true]) {
    const withFuel = fuel ? "with fuel" : "without fuel";

    await t.step(`a loop of 16 MiB fills stops at a clock deadline, ${withFuel}`, () => {
      const plugin = load(FILLS, { fuel, deadline: "clock" });
      const start = performance.now();
      assert.throws(
        () => plugin.call("fills", [100_000], { fuel: 1n << 60n, deadline: start + DEADLINE_MS }),
        WebAssembly.RuntimeError,
      );
      const elapsed = performance.now() - start;
      assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
      assert.ok(elapsed >= DEADLINE_MS, `stopped after ${elapsed.toFixed(0)} ms`);
      assert.ok(elapsed < DEADLINE_MS + MARGIN_MS, `stopped after ${elapsed.toFixed(0)} ms`);
    });

    await t.step(`a loop of 16 MiB fills stops when another thread asks, ${withFuel}`, async () => {
      const result = instrument(wat(FILLS), { fuel, deadline: "clock" });
      const call = await callAndInterrupt(result, "fills", {
        args: [100_000],
        delayMs: DEADLINE_MS,
        fuel: 1n << 60n,
      });
      assert.equal(call.error, "RuntimeError");
      assert.equal(call.reason, TrapReason.Deadline);
      assert.ok(call.afterFlag < MARGIN_MS, `stopped ${call.afterFlag.toFixed(0)} ms after`);
    });
  }

  await t.step("smaller fills count down the clock by their length", () => {
    const plugin = load(FILLS, { deadline: "clock" });
    // As after a tight loop: two million checks between two calls of the hook.
    (plugin.instance.exports.__wasmplug_interval as WebAssembly.Global).value = 1 << 21;
    const start = performance.now();
    assert.throws(
      () => plugin.call("small_fills", [100_000], { deadline: start + DEADLINE_MS }),
      WebAssembly.RuntimeError,
    );
    const elapsed = performance.now() - start;
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
    assert.ok(elapsed < DEADLINE_MS + MARGIN_MS, `stopped after ${elapsed.toFixed(0)} ms`);
  });
});

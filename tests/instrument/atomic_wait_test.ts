import assert from "node:assert/strict";
import { instrument, type InstrumentOptions, TrapReason } from "../../src/instrument/instrument.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { countOps, load } from "./_host.ts";
import { callAndInterrupt } from "./_interrupt.ts";
import { wat } from "./_wat.ts";

/**
 * Waits of both widths, on a 32-bit and a 64-bit shared memory and an
 * unshared one (wabt reads memory names wrong in atomic instructions).
 */
const WAITS = `(module
  (memory $m 1 1 shared)
  (memory $m64 i64 1 1 shared)
  (memory $plain 1)
  (func (export "wait32") (param $at i32) (param $v i32) (param $t i64) (result i32)
    (memory.atomic.wait32 (local.get $at) (local.get $v) (local.get $t)))
  (func (export "wait32_offset") (param $at i32) (param $v i32) (param $t i64) (result i32)
    (memory.atomic.wait32 offset=8 (local.get $at) (local.get $v) (local.get $t)))
  (func (export "wait64") (param $at i32) (param $v i64) (param $t i64) (result i32)
    (memory.atomic.wait64 (local.get $at) (local.get $v) (local.get $t)))
  (func (export "wait64_m64") (param $at i64) (param $v i64) (param $t i64) (result i32)
    (memory.atomic.wait64 1 (local.get $at) (local.get $v) (local.get $t)))
  (func (export "wait_unshared") (param $at i32) (param $v i32) (param $t i64) (result i32)
    (memory.atomic.wait32 2 (local.get $at) (local.get $v) (local.get $t))))`;

const WAIT32 = (0xfe << 24 | 1) >>> 0;
const WAIT64 = (0xfe << 24 | 2) >>> 0;
const MODES: [string, InstrumentOptions][] = [
  ["clock deadline", { deadline: "clock" }],
  ["fuel and a clock deadline", { fuel: true, callDepth: true, deadline: "clock" }],
];

Deno.test("deadline pass replaces atomic waits by calls that wait in slices", async (t) => {
  await t.step("the waits leave the functions for one appended function each", () => {
    const bytes = wat(WAITS);
    const { bytes: rewritten } = instrument(bytes, { deadline: "clock" });
    for (let f = 0; f < 5; f++) {
      assert.equal(countOps(bytes, f, WAIT32) + countOps(bytes, f, WAIT64), 1);
      assert.equal(countOps(rewritten, f, WAIT32) + countOps(rewritten, f, WAIT64), 0);
    }
    let appended = 0;
    for (let f = 5; f < parseModule(rewritten).code.length; f++) {
      appended += countOps(rewritten, f, WAIT32) + countOps(rewritten, f, WAIT64);
    }
    assert.equal(appended, 5);
  });

  await t.step("without a deadline the waits are left alone", () => {
    const { bytes } = instrument(wat(WAITS), { fuel: true, callDepth: true });
    assert.equal(countOps(bytes, 0, WAIT32), 1);
  });

  for (const [name, options] of MODES) {
    await t.step(`${name}: a value that differs answers 1 at once`, () => {
      const plugin = load(WAITS, options);
      const budget = { fuel: 1000n, deadline: performance.now() + 10_000 };
      assert.equal(plugin.call("wait32", [0, 1, -1n], budget), 1);
      assert.equal(plugin.call("wait32_offset", [0, 1, -1n], budget), 1);
      assert.equal(plugin.call("wait64", [8, 1n, -1n], budget), 1);
      assert.equal(plugin.call("wait64_m64", [8n, 1n, -1n], budget), 1);
      if (options.fuel) assert.equal(1000n - plugin.limits.fuelRemaining, 4n);
    });

    await t.step(`${name}: a finite timeout answers 2 once it has passed`, () => {
      const plugin = load(WAITS, options);
      const budget = { fuel: 1000n, deadline: performance.now() + 10_000 };
      assert.equal(plugin.call("wait32", [0, 0, 0n], budget), 2);
      // Two slices and a half.
      for (const [fn, value, at] of [["wait32", 0, 4], ["wait64_m64", 0n, 16n]] as const) {
        const start = performance.now();
        assert.equal(plugin.call(fn, [at, value, 25_000_000n], budget), 2);
        const elapsed = performance.now() - start;
        assert.ok(elapsed >= 24 && elapsed < 1000, `${fn} answered after ${elapsed.toFixed(1)} ms`);
      }
      if (options.fuel) assert.equal(1000n - plugin.limits.fuelRemaining, 4n);
    });
  }

  await t.step("unaligned, out-of-bounds and unshared waits trap as they did", () => {
    const plain = new WebAssembly.Instance(new WebAssembly.Module(wat(WAITS)));
    const plugin = load(WAITS, { fuel: true, deadline: "clock" });
    const cases: [string, unknown[]][] = [
      ["wait32", [2, 0, 0n]],
      ["wait32", [65536, 0, 0n]],
      ["wait32_offset", [65532, 0, 0n]],
      ["wait32_offset", [-4, 0, 0n]],
      ["wait64", [4, 0n, 0n]],
      ["wait64_m64", [65536n, 0n, 0n]],
      ["wait64_m64", [-8n, 0n, 0n]],
      ["wait_unshared", [0, 0, 0n]],
    ];
    for (const [fn, args] of cases) {
      let expected: unknown;
      try {
        (plain.exports[fn] as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        expected = error;
      }
      assert.ok(expected instanceof WebAssembly.RuntimeError, `${fn}(${args}) traps plain`);
      assert.throws(
        () => plugin.call(fn, args, { fuel: 1000n, deadline: performance.now() + 10_000 }),
        (error: unknown) =>
          error instanceof WebAssembly.RuntimeError && error.message === expected.message,
        `${fn}(${args})`,
      );
      assert.equal(plugin.limits.trapReason, TrapReason.None);
    }
  });

  for (const fuel of [false, true]) {
    const withFuel = fuel ? "with fuel" : "without fuel";

    await t.step(`an infinite wait stops at a clock deadline, ${withFuel}`, () => {
      const plugin = load(WAITS, { fuel, deadline: "clock" });
      for (const [fn, args] of [["wait32", [0, 0, -1n]], ["wait64_m64", [0n, 0n, -1n]]] as const) {
        const start = performance.now();
        assert.throws(
          () => plugin.call(fn, [...args], { fuel: 1000n, deadline: start + 100 }),
          WebAssembly.RuntimeError,
        );
        const elapsed = performance.now() - start;
        assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
        assert.ok(elapsed >= 100 && elapsed < 600, `${fn} stopped after ${elapsed.toFixed(1)} ms`);
      }
    });

    await t.step(`an infinite wait stops when another thread asks, ${withFuel}`, async () => {
      const result = instrument(wat(WAITS), { fuel, deadline: "clock" });
      const call = await callAndInterrupt(result, "wait32", {
        args: [0, 0, -1n],
        delayMs: 100,
        fuel: 1000n,
      });
      assert.equal(call.error, "RuntimeError");
      assert.equal(call.reason, TrapReason.Deadline);
      assert.ok(call.afterFlag < 500, `stopped ${call.afterFlag.toFixed(1)} ms after the flag`);
      if (fuel) assert.equal(call.consumed, 4n);
    });
  }
});

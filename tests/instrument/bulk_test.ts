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

/** "ok", or the name of what `run` threw. */
function outcomeOf(run: () => unknown): string {
  try {
    run();
    return "ok";
  } catch (err) {
    return (err as Error).name;
  }
}

/** Fills and copies in two memories, one 64-bit: 5 MiB each, room for steps of 1 MiB. */
const SPLITS = `(module
  (memory $a (export "a") 80) (memory $b (export "b") i64 80)
  (func (export "fill") (param i32 i32 i32) (memory.fill $a (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill64") (param i64 i32 i64)
    (memory.fill $b (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32) (memory.copy $a $a (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy64") (param i64 i64 i64)
    (memory.copy $b $b (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy_ab") (param i32 i64 i32)
    (memory.copy $a $b (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy_ba") (param i64 i32 i32)
    (memory.copy $b $a (local.get 0) (local.get 1) (local.get 2)))
  )`;

Deno.test("with a deadline, fills and copies over 1 MiB go in steps and end as one", () => {
  // Split into steps of 1 MiB with a check between: they must leave every byte as the
  // instruction does, overlapping copies (both ways) and traps out of bounds included.
  const MiB = 1 << 20;
  const plain = new WebAssembly.Instance(new WebAssembly.Module(wat(SPLITS)), {});
  const split = load(SPLITS, { fuel: true, callDepth: true, deadline: "clock" });
  const size = 80 * 65536;
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const lengths = [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 2 * MiB + 5, 3.5 * MiB, size];
  const both = (name: string, args: (number | bigint)[]) => {
    const expected = outcomeOf(() =>
      (plain.exports[name] as (...a: unknown[]) => unknown)(...args)
    );
    const got = outcomeOf(() => split.call(name, args, { fuel: 1n << 50n, deadline: Infinity }));
    assert.equal(got, expected, `${name}(${args.join(", ")})`);
    for (const memory of ["a", "b"]) {
      const want = wordsOf(plain, memory);
      const have = wordsOf(split.instance, memory);
      const differs = want.findIndex((word, i) => word !== have[i]);
      assert.equal(differs, -1, `memory ${memory} after ${name}(${args.join(", ")})`);
    }
  };
  const bytesOf = (instance: WebAssembly.Instance, name: string) =>
    new Uint8Array((instance.exports[name] as WebAssembly.Memory).buffer);
  const wordsOf = (instance: WebAssembly.Instance, name: string) =>
    new Int32Array((instance.exports[name] as WebAssembly.Memory).buffer);
  // Bytes that differ from their neighbours', so that a step in the wrong order shows.
  for (const name of ["a", "b"]) {
    for (const instance of [plain, split.instance]) {
      bytesOf(instance, name).forEach((_, i, bytes) => bytes[i] = (i * 7) ^ (i >>> 9));
    }
  }
  const overlapping: [number, number, number][] = [
    [100, 0, 2.5 * MiB],
    [0, 100, 2.5 * MiB],
    [MiB + 3, 0, 3 * MiB],
  ];
  for (const [d, s, n] of overlapping) {
    both("copy", [d, s, n]);
    both("copy", [s, d, n]);
    both("copy64", [BigInt(d), BigInt(s), BigInt(n)]);
  }
  const at = (n: number) => random(size - Math.min(n, size) + 1);
  for (let round = 0; round < 60; round++) {
    const n = lengths[random(lengths.length)]!;
    const wide = BigInt(n);
    switch (round % 6) {
      case 0:
        both("fill", [at(n), random(256), n]);
        break;
      case 1:
        both("fill64", [BigInt(at(n)), random(256), wide]);
        break;
      case 2: {
        // Overlapping both ways: source a little above or below the destination.
        const d = at(n);
        both("copy", [d, Math.max(0, Math.min(size - n, d + random(2 * MiB) - MiB)), n]);
        break;
      }
      case 3: {
        const d = at(n);
        const s = Math.max(0, Math.min(size - n, d + random(2 * MiB) - MiB));
        both("copy64", [BigInt(d), BigInt(s), wide]);
        break;
      }
      case 4:
        both("copy_ab", [at(n), BigInt(at(n)), n]);
        break;
      case 5:
        both("copy_ba", [BigInt(at(n)), at(n), n]);
        break;
    }
  }
  // Out of bounds by one byte, long enough to be split: a trap, and nothing written.
  both("fill", [size - 2 * MiB + 1, 9, 2 * MiB]);
  both("copy", [0, size - 2 * MiB + 1, 2 * MiB]);
  both("copy64", [BigInt(size - 2 * MiB + 1), 0n, BigInt(2 * MiB)]);
  both("fill64", [1n << 62n, 9, BigInt(2 * MiB)]);
  both("copy_ab", [0, -1n, 2 * MiB]);
});

Deno.test("with a deadline, one fill of 256 MiB stops at the deadline", () => {
  // Checked only before it, the fill ran whole: 1 GiB held a 50 ms call for 0.4-6 s.
  const plugin = load(
    `(module (memory 4096)
      (func (export "fill") (memory.fill (i32.const 0) (i32.const 1) (i32.const 268435456))))`,
    { fuel: true, deadline: "clock" },
  );
  const start = performance.now();
  assert.throws(
    () => plugin.call("fill", [], { fuel: 1n << 60n, deadline: start + 20 }),
    WebAssembly.RuntimeError,
  );
  assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 20 + MARGIN_MS, `stopped after ${elapsed.toFixed(0)} ms`);
});

/** Fills and copies in three tables, one 64-bit: 80 000 elements each, room for steps. */
const TABLE_SPLITS = `(module
  (table $t (export "t") 80000 externref) (table $u i64 80000 externref) (table $f 80000 funcref)
  (elem declare func $x)
  (func $x)
  (func (export "fill") (param i32 externref i32)
    (table.fill $t (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill64") (param i64 externref i64)
    (table.fill $u (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill_funcs") (param i32 i32) (table.fill $f (local.get 0) (ref.func $x) (local.get 1)))
  (func (export "copy") (param i32 i32 i32) (table.copy $t $t (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy64") (param i64 i64 i64)
    (table.copy $u $u (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy_tu") (param i32 i64 i32)
    (table.copy $t $u (local.get 0) (local.get 1) (local.get 2)))
  (func (export "get64") (param i64) (result externref) (table.get $u (local.get 0)))
  (func (export "funcs") (result i32) (local $i i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.eqz (ref.is_null (table.get $f (local.get $i))))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 80000))))
    (local.get $n)))`;

Deno.test("with a deadline, table fills and copies over 16 384 elements go in steps too", () => {
  const plain = new WebAssembly.Instance(new WebAssembly.Module(wat(TABLE_SPLITS)), {});
  const split = load(TABLE_SPLITS, { fuel: true, callDepth: true, deadline: "clock" });
  const size = 80_000;
  const STEP = 16_384;
  const run = (instance: WebAssembly.Instance, name: string, args: unknown[]) =>
    (instance.exports[name] as (...a: unknown[]) => unknown)(...args);
  const contents = (instance: WebAssembly.Instance) => {
    const t = instance.exports.t as WebAssembly.Table;
    const get64 = instance.exports.get64 as (at: bigint) => unknown;
    const values: unknown[] = [];
    for (let i = 0; i < size; i++) values.push(t.get(i), get64(BigInt(i)));
    values.push(run(instance, "funcs", []));
    return values;
  };
  const both = (name: string, args: unknown[]) => {
    const expected = outcomeOf(() => run(plain, name, args));
    const got = outcomeOf(() => split.call(name, args, { fuel: 1n << 50n, deadline: Infinity }));
    assert.equal(got, expected, `${name}(${args.join(", ")})`);
    const want = contents(plain);
    const have = contents(split.instance);
    const differs = want.findIndex((value, i) => !Object.is(value, have[i]));
    assert.equal(differs, -1, `contents after ${name}(${args.join(", ")})`);
  };
  // Distinct values, so that a step in the wrong order shows.
  for (let i = 0; i < size; i += 1000) {
    both("fill", [i, i, 1000]);
    both("fill64", [BigInt(i), -i, 1000n]);
  }
  for (const [d, s, n] of [[100, 0, 2.5 * STEP], [0, 100, 2.5 * STEP], [STEP + 3, 0, 3 * STEP]]) {
    both("copy", [d, s, n]);
    both("copy64", [BigInt(d!), BigInt(s!), BigInt(n!)]);
  }
  both("copy_tu", [5, 7n, 4 * STEP + 1]);
  both("fill", [3, "x", size - 3]);
  both("fill_funcs", [10, 3 * STEP]);
  // Out of bounds by one element, long enough to be split: a trap, and nothing written.
  both("fill", [size - 2 * STEP + 1, "y", 2 * STEP]);
  both("copy", [0, size - 2 * STEP + 1, 2 * STEP]);
  both("fill64", [1n << 40n, "z", BigInt(2 * STEP)]);
});

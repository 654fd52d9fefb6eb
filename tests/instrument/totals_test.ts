import assert from "node:assert/strict";
import { enforceTotals, MEMORY_BYTES_EXPORT } from "../../src/instrument/_totals.ts";
import { clampLimits } from "../../src/instrument/_limits.ts";
import { EngineLimitError, instrument } from "../../src/instrument/instrument.ts";
import { InstanceLimits } from "../../src/metering/_instance_limits.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { assemble, voidTypes, wat } from "./_wasm.ts";

type Grow = (delta: number | bigint) => number | bigint;
type TableGrow = (delta: number) => number;

const PAGE = 65536;

/** Three memories (one 64-bit) and three tables (one 64-bit), each growable by an export. */
const STORAGE = `(module
  (memory $a 1)
  (memory $b 0)
  (memory $c i64 0)
  (table $t 1 funcref)
  (table $u 0 externref)
  (table $v i64 0 funcref)
  (func (export "growA") (param i32) (result i32) (memory.grow $a (local.get 0)))
  (func (export "growB") (param i32) (result i32) (memory.grow $b (local.get 0)))
  (func (export "growC") (param i64) (result i64) (memory.grow $c (local.get 0)))
  (func (export "growT") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0)))
  (func (export "growU") (param i32) (result i32) (table.grow $u (ref.null extern) (local.get 0)))
  (func (export "growV") (param i32) (result i32)
    (i32.wrap_i64 (table.grow $v (ref.null func) (i64.extend_i32_u (local.get 0)))))
  (func (export "sizes") (result i32)
    (i32.add (memory.size $a) (memory.size $b))))`;

async function instantiate(bytes: Uint8Array): Promise<WebAssembly.Exports> {
  const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>);
  return instance.exports;
}

Deno.test("enforceTotals() bounds the sum over all memories and all tables", async (t) => {
  const limits = { maxMemoryPages: 4, maxTableElements: 10 };
  const clamped = clampLimits(wat(STORAGE), limits).bytes;
  const { bytes, memoryBytesExport } = enforceTotals(clamped, limits);
  assert.equal(memoryBytesExport, MEMORY_BYTES_EXPORT);
  assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>));
  const exports = await instantiate(bytes);
  const total = exports[MEMORY_BYTES_EXPORT] as () => bigint;
  const growA = exports.growA as Grow;
  const growB = exports.growB as Grow;
  const growC = exports.growC as Grow;

  await t.step("memory.grow on any memory stops at the total", () => {
    assert.equal(total(), BigInt(PAGE));
    assert.equal(growB(2), 0);
    assert.equal(growC(2n), -1n, "1 + 2 + 2 pages exceed 4");
    assert.equal(growC(1n), 0n);
    assert.equal(growA(1), -1);
    assert.equal(growB(1), -1);
    assert.equal(growA(0), 1);
    assert.equal(total(), BigInt(4 * PAGE));
  });

  await t.step("huge deltas are refused without wrapping", () => {
    assert.equal(growA(-1), -1);
    assert.equal(growC(-1n), -1n);
    assert.equal(growC(1n << 62n), -1n);
  });

  await t.step("table.grow on any table stops at the total", () => {
    const growT = exports.growT as TableGrow;
    const growU = exports.growU as TableGrow;
    const growV = exports.growV as TableGrow;
    assert.equal(growU(5), 0);
    assert.equal(growV(5), -1, "1 + 5 + 5 elements exceed 10");
    assert.equal(growV(4), 0);
    assert.equal(growT(1), -1);
    assert.equal(growU(-1), -1);
    assert.equal(growT(0), 1);
  });
});

Deno.test("enforceTotals() leaves modules with one memory and one table alone", () => {
  const source = wat(`(module (memory 1) (table 1 funcref)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
  const result = enforceTotals(source, { maxMemoryPages: 1, maxTableElements: 1 });
  assert.equal(result.bytes, source);
  assert.equal(result.memoryBytesExport, null);
});

Deno.test("enforceTotals() keeps every index and only appends", async (t) => {
  const source = wat(`(module
    (import "env" "f" (func $f (result i32)))
    (import "env" "g" (global $g i32))
    (memory $a 1) (memory $b 1)
    (global $h (mut i32) (i32.const 7))
    (func $grow (export "grow") (param i32) (result i32)
      (drop (call $f))
      (memory.grow $b (local.get 0)))
    (func (export "h") (result i32) (global.get $h))
    (func (export "self") (result i32) (call $grow (i32.const 0))))`);
  const { bytes } = enforceTotals(source, { maxMemoryPages: 3, maxTableElements: 0 });
  const before = parseModule(source);
  const after = parseModule(bytes);

  await t.step("existing exports keep their indices", () => {
    assert.deepEqual(
      after.exports.slice(0, before.exports.length),
      before.exports.map((e) => ({
        ...e,
        offset: after.exports.find((a) => a.name === e.name)!.offset,
      })),
    );
    assert.equal(after.globals.length, before.globals.length + 1);
  });

  await t.step("the rewritten module runs", async () => {
    const { instance } = await WebAssembly.instantiate(bytes, {
      env: { f: () => 0, g: new WebAssembly.Global({ value: "i32" }, 1) },
    });
    const exports = instance.exports as Record<string, (...args: number[]) => number>;
    assert.equal(exports.h!(), 7);
    assert.equal(exports.self!(), 1);
    assert.equal(exports.grow!(1), 1);
    assert.equal(exports.grow!(1), -1);
  });
});

Deno.test("enforceTotals() works after instrumentation, ignoring the instrumenter's memory", async () => {
  const limits = { maxMemoryPages: 2, maxTableElements: 0 };
  const source = wat(`(module (memory $a 1) (memory $b 0)
    (func (export "grow") (param i32) (result i32)
      (loop $l (br_if $l (i32.eqz (i32.const 1))))
      (memory.grow $b (local.get 0))))`);
  const instrumented = instrument(source, { fuel: true, deadline: "clock" });
  const { bytes, memoryBytesExport } = enforceTotals(instrumented.bytes, limits, { memories: 2 });
  assert.equal(memoryBytesExport, MEMORY_BYTES_EXPORT);
  const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>);
  const instanceLimits = new InstanceLimits(instance, instrumented);
  instanceLimits.prepare({ fuel: 1000, maxCallDepth: 100, deadline: Infinity, now: 0 });
  const grow = instance.exports.grow as Grow;
  assert.equal(grow(2), -1);
  assert.equal(grow(1), 0);
  assert.equal((instance.exports[MEMORY_BYTES_EXPORT] as () => bigint)(), BigInt(2 * PAGE));
  const used = 1000n - instanceLimits.fuelRemaining;
  const plain = instrument(source, { fuel: true, deadline: "clock" });
  const plainInstance = (await WebAssembly.instantiate(plain.bytes)).instance;
  const plainLimits = new InstanceLimits(plainInstance, plain);
  plainLimits.prepare({ fuel: 1000, maxCallDepth: 100, deadline: Infinity, now: 0 });
  (plainInstance.exports.grow as Grow)(2);
  (plainInstance.exports.grow as Grow)(1);
  assert.equal(used, 1000n - plainLimits.fuelRemaining, "a growth costs the same fuel");
});

Deno.test("enforceTotals() adds the sections a module lacks", async () => {
  // Two memories and no function at all: the export needs a type, function and code section.
  const bytes = assemble([5, [2, 0x00, 1, 0x00, 2]]);
  const result = enforceTotals(bytes, { maxMemoryPages: 8, maxTableElements: 0 });
  const exports = await instantiate(result.bytes);
  assert.equal((exports[MEMORY_BYTES_EXPORT] as () => bigint)(), BigInt(3 * PAGE));
});

Deno.test("enforceTotals() refuses a module that already exports its function", () => {
  const source = wat(`(module (memory 1) (memory 1)
    (func (export "${MEMORY_BYTES_EXPORT}")))`);
  assert.throws(
    () => enforceTotals(source, { maxMemoryPages: 8, maxTableElements: 0 }),
    TypeError,
  );
});

Deno.test("enforceTotals() refuses to take a module past the engine's limits", () => {
  // A million types and two memories: the export it adds needs a type of its own.
  const bytes = assemble([1, voidTypes(1_000_000)], [5, [2, 0x00, 1, 0x00, 2]]);
  assert.throws(
    () => enforceTotals(bytes, { maxMemoryPages: 8, maxTableElements: 0 }),
    (error: unknown) => {
      assert.ok(error instanceof EngineLimitError);
      assert.match(
        error.message,
        /Cannot limit the module's totals: it has 1000000 types and needs 1 more/,
      );
      return true;
    },
  );
});

import assert from "node:assert/strict";
import { BinaryFormatError, ByteWriter } from "../../src/instrument/_bytes.ts";
import { clampLimits } from "../../src/instrument/_limits.ts";
import {
  type Limits,
  listMemories,
  listTables,
  parseModule,
  SectionId,
} from "../../src/instrument/_module.ts";
import { assemble, wat } from "./_wasm.ts";

type GrowFn = (delta: number) => number;

async function instantiate(
  bytes: Uint8Array<ArrayBuffer>,
  imports: WebAssembly.Imports = {},
): Promise<WebAssembly.Exports> {
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  return instance.exports;
}

function memoryLimits(bytes: Uint8Array): [number | bigint, number | bigint | null][] {
  return listMemories(parseModule(bytes)).map(({ limits }) => [limits.min, limits.max]);
}

function tableLimits(bytes: Uint8Array): [number | bigint, number | bigint | null][] {
  return listTables(parseModule(bytes)).map(({ limits }) => [limits.min, limits.max]);
}

const UNLIMITED = { maxMemoryPages: Infinity, maxTableElements: Infinity };

const GROWABLE = `(module
  (memory (export "memory") 1)
  (table (export "table") 1 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "growTable") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))`;

Deno.test("clampLimits() makes growth fail past the limit", async (t) => {
  const { bytes, changed, violations } = clampLimits(wat(GROWABLE), {
    maxMemoryPages: 4,
    maxTableElements: 3,
  });
  assert.ok(changed);
  assert.deepEqual(violations, []);
  const exports = await instantiate(bytes);

  await t.step("memory.grow returns -1 past the limit", () => {
    const grow = exports.grow as GrowFn;
    assert.equal(grow(3), 1);
    assert.equal(grow(1), -1);
    assert.equal((exports.memory as WebAssembly.Memory).buffer.byteLength, 4 * 65536);
  });
  await t.step("Memory.grow() from the host throws past the limit", () => {
    assert.throws(() => (exports.memory as WebAssembly.Memory).grow(1), RangeError);
  });
  await t.step("table.grow returns -1 past the limit", () => {
    const growTable = exports.growTable as GrowFn;
    assert.equal(growTable(2), 1);
    assert.equal(growTable(1), -1);
    assert.equal((exports.table as WebAssembly.Table).length, 3);
  });
  await t.step("the unclamped module grows freely", async () => {
    const original = await instantiate(wat(GROWABLE));
    assert.equal((original.grow as GrowFn)(10), 1);
    assert.equal((original.growTable as GrowFn)(10), 1);
  });
});

Deno.test("clampLimits() keeps the smaller of the declared maximum and the limit", async (t) => {
  await t.step("a declared maximum above the limit is lowered", () => {
    const result = clampLimits(wat("(module (memory 1 100) (table 1 50 funcref))"), {
      maxMemoryPages: 8,
      maxTableElements: 20,
    });
    assert.ok(result.changed);
    assert.deepEqual(memoryLimits(result.bytes), [[1, 8]]);
    assert.deepEqual(tableLimits(result.bytes), [[1, 20]]);
  });
  await t.step("a declared maximum within the limit is kept, byte for byte", () => {
    const bytes = wat("(module (memory 1 2) (table 0 5 funcref))");
    const result = clampLimits(bytes, { maxMemoryPages: 8, maxTableElements: 20 });
    assert.equal(result.changed, false);
    assert.equal(result.bytes, bytes);
  });
  await t.step("a maximum equal to the limit is kept", () => {
    const bytes = wat("(module (memory 1 8))");
    assert.equal(clampLimits(bytes, { maxMemoryPages: 8, maxTableElements: 0 }).changed, false);
  });
  await t.step("Infinity leaves that kind alone", () => {
    const bytes = wat("(module (memory 1) (table 1 funcref))");
    assert.equal(clampLimits(bytes, UNLIMITED).changed, false);
    const tablesOnly = clampLimits(bytes, { maxMemoryPages: Infinity, maxTableElements: 7 });
    assert.deepEqual(memoryLimits(tablesOnly.bytes), [[1, null]]);
    assert.deepEqual(tableLimits(tablesOnly.bytes), [[1, 7]]);
  });
  await t.step("limits beyond the spec maximums are capped at them", () => {
    const bytes = wat("(module (memory 1) (table 1 funcref))");
    const result = clampLimits(bytes, { maxMemoryPages: 1e6, maxTableElements: 2 ** 40 });
    assert.deepEqual(memoryLimits(result.bytes), [[1, 65536]]);
    assert.deepEqual(tableLimits(result.bytes), [[1, 2 ** 32 - 1]]);
    assert.ok(WebAssembly.validate(result.bytes));
  });
});

Deno.test("clampLimits() reports minimums above the limit without rewriting them", async (t) => {
  await t.step("defined and imported memories and tables", () => {
    const bytes = wat(`(module
      (import "env" "small" (memory 1))
      (import "env" "big" (memory 5))
      (import "env" "table" (table 10 funcref))
      (memory 6 6)
      (table 2 funcref))`);
    const result = clampLimits(bytes, { maxMemoryPages: 4, maxTableElements: 3 });
    assert.deepEqual(result.violations, [
      { kind: "memory", index: 1, imported: true, declaredMinimum: 5, limit: 4 },
      { kind: "memory", index: 2, imported: false, declaredMinimum: 6, limit: 4 },
      { kind: "table", index: 0, imported: true, declaredMinimum: 10, limit: 3 },
    ]);
    assert.deepEqual(memoryLimits(result.bytes), [[1, 4], [5, null], [6, 6]]);
    assert.deepEqual(tableLimits(result.bytes), [[10, null], [2, 3]]);
    assert.ok(WebAssembly.validate(result.bytes));
  });
  await t.step("a zero limit reports every non-empty memory", () => {
    const result = clampLimits(wat("(module (memory 0) (memory 1))"), {
      maxMemoryPages: 0,
      maxTableElements: 0,
    });
    assert.deepEqual(memoryLimits(result.bytes), [[0, 0], [1, null]]);
    assert.deepEqual(result.violations.map((violation) => violation.index), [1]);
  });
  await t.step("memory64 minimums are reported as bigints", () => {
    const result = clampLimits(wat("(module (memory i64 9))"), {
      maxMemoryPages: 8,
      maxTableElements: 0,
    });
    assert.deepEqual(result.violations, [
      { kind: "memory", index: 0, imported: false, declaredMinimum: 9n, limit: 8 },
    ]);
  });
});

Deno.test("clampLimits() rewrites imports so linking enforces the limit", async (t) => {
  const bytes = wat(`(module
    (import "env" "memory" (memory 1))
    (import "env" "table" (table 1 funcref)))`);
  const clamped = clampLimits(bytes, { maxMemoryPages: 2, maxTableElements: 4 }).bytes;
  const table = (maximum?: number): WebAssembly.Table =>
    new WebAssembly.Table(
      maximum === undefined ? { element: "anyfunc", initial: 1 } : {
        element: "anyfunc",
        initial: 1,
        maximum,
      },
    );

  await t.step("a host memory with a larger maximum is rejected", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 10 });
    await assert.rejects(
      instantiate(clamped, { env: { memory, table: table(4) } }),
      WebAssembly.LinkError,
    );
  });
  await t.step("a host memory without maximum is rejected", async () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    await assert.rejects(
      instantiate(clamped, { env: { memory, table: table(4) } }),
      WebAssembly.LinkError,
    );
  });
  await t.step("a host table with a larger maximum is rejected", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
    await assert.rejects(
      instantiate(clamped, { env: { memory, table: table(5) } }),
      WebAssembly.LinkError,
    );
    await assert.rejects(
      instantiate(clamped, { env: { memory, table: table() } }),
      WebAssembly.LinkError,
    );
  });
  await t.step("host memory and table within the limit link", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
    await instantiate(clamped, { env: { memory, table: table(3) } });
  });
  await t.step("the unclamped module accepts the larger host memory", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 10 });
    await instantiate(bytes, { env: { memory, table: table() } });
  });
});

Deno.test("clampLimits() handles memory64, multi-memory and shared memories", async (t) => {
  await t.step("memory64", async () => {
    const source = `(module (memory (export "memory") i64 1)
      (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0))))`;
    const bytes = wat(source);
    assert.ok(WebAssembly.validate(bytes), "V8 supports memory64");
    const result = clampLimits(bytes, { maxMemoryPages: 3, maxTableElements: 0 });
    assert.deepEqual(memoryLimits(result.bytes), [[1n, 3n]]);
    const grow = (await instantiate(result.bytes)).grow as (delta: bigint) => bigint;
    assert.equal(grow(2n), 1n);
    assert.equal(grow(1n), -1n);
  });
  await t.step("table64", () => {
    const result = clampLimits(wat("(module (table i64 1 100 funcref))"), {
      maxMemoryPages: 0,
      maxTableElements: 10,
    });
    assert.deepEqual(tableLimits(result.bytes), [[1n, 10n]]);
    assert.ok(WebAssembly.validate(result.bytes));
  });
  await t.step("multi-memory clamps each memory", async () => {
    const source = `(module
      (memory $a (export "a") 1)
      (memory $b (export "b") 2 3)
      (memory $c (export "c") 1 100)
      (func (export "growB") (param i32) (result i32) (memory.grow $b (local.get 0)))
      (func (export "growC") (param i32) (result i32) (memory.grow $c (local.get 0))))`;
    const result = clampLimits(wat(source), { maxMemoryPages: 4, maxTableElements: 0 });
    assert.deepEqual(memoryLimits(result.bytes), [[1, 4], [2, 3], [1, 4]]);
    const exports = await instantiate(result.bytes);
    assert.equal((exports.growB as GrowFn)(1), 2);
    assert.equal((exports.growB as GrowFn)(1), -1);
    assert.equal((exports.growC as GrowFn)(3), 1);
    assert.equal((exports.growC as GrowFn)(1), -1);
  });
  await t.step("shared memory", async () => {
    const source = `(module (memory (export "memory") 1 100 shared)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`;
    const result = clampLimits(wat(source), { maxMemoryPages: 2, maxTableElements: 0 });
    const limits = parseModule(result.bytes).memories[0]!;
    assert.deepEqual([limits.shared, limits.min, limits.max], [true, 1, 2]);
    const exports = await instantiate(result.bytes);
    const memory = exports.memory as WebAssembly.Memory;
    assert.ok(memory.buffer instanceof SharedArrayBuffer);
    assert.equal((exports.grow as GrowFn)(1), 1);
    assert.equal((exports.grow as GrowFn)(1), -1);
    assert.throws(() => memory.grow(1), RangeError);
  });
});

Deno.test("clampLimits() describes the module it returns as parseModule() would", async (t) => {
  const source = `(module
    (import "env" "memory" (memory 1))
    (import "env" "table" (table 1 funcref))
    (import "env" "f" (func $f))
    (table 2 funcref)
    (table i64 1 funcref)
    (memory i64 1)
    (memory 2 200)
    (global $g (mut i32) (i32.const 0))
    (func (export "grow") (param i32) (result i32) (memory.grow 1 (local.get 0)))
    (func $h (call $f))
    (elem (table 1) (i32.const 0) func $h)
    (data (memory 2) (i32.const 0) "abc"))`;
  const custom = new ByteWriter().name("after").bytes(new Uint8Array([1, 2, 3])).finish();
  const bytes = new ByteWriter().bytes(wat(source)).u8(0).u32(custom.length).bytes(custom).finish();
  const info = parseModule(bytes);
  for (
    const [name, limits] of [
      ["clamping every memory and table", { maxMemoryPages: 4, maxTableElements: 5 }],
      ["clamping past the 127 LEB boundary", { maxMemoryPages: 300, maxTableElements: 100_000 }],
      ["changing nothing", UNLIMITED],
    ] as const
  ) {
    await t.step(name, () => {
      const result = clampLimits(bytes, limits, { info });
      assert.deepEqual(result.info, parseModule(result.bytes));
      if (!result.changed) assert.equal(result.info, info);
      // Types carry no offset: the description shares them.
      assert.equal(result.info.types, info.types);
    });
  }
});

Deno.test("clampLimits() leaves invalid declarations for validation to reject", async (t) => {
  await t.step("a shared memory without maximum", () => {
    const bytes = assemble([SectionId.Memory, [0x01, 0x02, 0x01]]);
    assert.equal(WebAssembly.validate(bytes), false);
    const result = clampLimits(bytes, { maxMemoryPages: 4, maxTableElements: 0 });
    assert.equal(result.changed, false);
  });
  await t.step("a 32-bit memory maximum beyond 65536 pages", () => {
    const memory = new ByteWriter().u32(1).u8(0x01).u32(0).u32(65537).finish();
    const bytes = assemble([SectionId.Memory, memory]);
    assert.equal(WebAssembly.validate(bytes), false);
    assert.equal(clampLimits(bytes, { maxMemoryPages: 4, maxTableElements: 0 }).changed, false);
  });
});

Deno.test("clampLimits() preserves every other byte of the module", async (t) => {
  const before = new ByteWriter().name("before").bytes(new Uint8Array([1, 2, 3])).finish();
  const after = new ByteWriter().name("after").finish();
  const paddedMemory = [
    0x81,
    0x80,
    0x00, // count 1, non-minimal
    0x00,
    0x82,
    0x80,
    0x80,
    0x80,
    0x00, // min 2, five bytes, no max
  ];
  const paddedTableImport = [
    0x01,
    0x03,
    0x65,
    0x6e,
    0x76,
    0x01,
    0x74, // "env" "t"
    0x01,
    0x70,
    0x01,
    0x80,
    0x00,
    0xff,
    0x80,
    0x00, // table funcref, min 0, max 127, non-minimal
  ];
  const bytes = assemble(
    [SectionId.Custom, before],
    [SectionId.Type, [0x01, 0x60, 0x00, 0x00]],
    [SectionId.Import, paddedTableImport],
    [SectionId.Function, [0x01, 0x00]],
    [SectionId.Memory, paddedMemory],
    [SectionId.Export, [0x01, 0x01, 0x6d, 0x02, 0x00]],
    [SectionId.Code, [0x01, 0x04, 0x00, 0x01, 0x01, 0x0b]],
    [SectionId.Data, [0x01, 0x00, 0x41, 0x00, 0x0b, 0x02, 0x68, 0x69]],
    [SectionId.Custom, after],
  );
  assert.ok(WebAssembly.validate(bytes));
  const result = clampLimits(bytes, { maxMemoryPages: 3, maxTableElements: 100 });
  const original = parseModule(bytes);
  const rewritten = parseModule(result.bytes);

  await t.step("the limits are clamped and the module still validates", () => {
    assert.ok(WebAssembly.validate(result.bytes));
    assert.deepEqual(memoryLimits(result.bytes), [[2, 3]]);
    assert.deepEqual(tableLimits(result.bytes), [[0, 100]]);
  });
  await t.step("untouched sections are identical", () => {
    assert.equal(rewritten.sections.length, original.sections.length);
    for (const [i, section] of original.sections.entries()) {
      const copy = rewritten.sections[i]!;
      assert.equal(copy.id, section.id);
      if (section.id === SectionId.Import || section.id === SectionId.Memory) continue;
      assert.deepEqual(
        result.bytes.subarray(copy.start, copy.end),
        bytes.subarray(section.start, section.end),
        `section ${section.id}`,
      );
    }
  });
  await t.step("rewritten sections only differ in their limits and size", () => {
    const memorySection = rewritten.sections.find((section) => section.id === SectionId.Memory)!;
    const limits: Limits = rewritten.memories[0]!;
    assert.deepEqual(
      [...result.bytes.subarray(memorySection.payloadStart, limits.start)],
      [0x81, 0x80, 0x00],
      "the non-minimal count is kept",
    );
    assert.deepEqual([...result.bytes.subarray(limits.start, limits.end)], [0x01, 0x02, 0x03]);
  });
});

Deno.test("clampLimits() handles custom page sizes in their own units", () => {
  // V8 does not implement custom page sizes yet, so only the encoding is checked.
  const bytes = assemble([SectionId.Memory, [0x01, 0x08, 0x10, 0x00]]);
  const result = clampLimits(bytes, { maxMemoryPages: 2, maxTableElements: 0 });
  const memory = parseModule(result.bytes).memories[0]!;
  assert.deepEqual([memory.flags, memory.min, memory.max, memory.pageSizeLog2], [
    0x09,
    16,
    2 * 65536,
    0,
  ]);
});

Deno.test("clampLimits() rejects bad arguments and malformed modules", async (t) => {
  await t.step("limits that are not non-negative integers", () => {
    const bytes = wat("(module)");
    for (const bad of [-1, 1.5, NaN, -Infinity]) {
      assert.throws(
        () => clampLimits(bytes, { maxMemoryPages: bad, maxTableElements: 1 }),
        (error: unknown) =>
          error instanceof RangeError && error.message.includes(`'maxMemoryPages'`) &&
          error.message.includes(`current value is ${bad}`),
      );
    }
    assert.throws(
      () => clampLimits(bytes, { maxMemoryPages: 1, maxTableElements: -2 }),
      /'maxTableElements' must be a non-negative integer or Infinity: current value is -2/,
    );
  });
  await t.step("malformed modules", () => {
    assert.throws(() => clampLimits(new Uint8Array([1, 2, 3]), UNLIMITED), BinaryFormatError);
  });
});

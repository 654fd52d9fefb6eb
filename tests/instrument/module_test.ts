import assert from "node:assert/strict";
import { BinaryFormatError, ByteWriter } from "../../src/instrument/_bytes.ts";
import {
  describeExports,
  describeImports,
  functionTypeIndices,
  listMemories,
  listTables,
  type ModuleInfo,
  parseModule,
  SectionId,
} from "../../src/instrument/_module.ts";
import { assemble, HEADER, leb, voidTypes, wat } from "./_wasm.ts";

/** Asserts that parsing fails with a BinaryFormatError whose message and offset match. */
function assertMalformed(bytes: Uint8Array, message: RegExp, offset: number): void {
  assert.throws(() => parseModule(bytes), (error: unknown) => {
    assert.ok(error instanceof BinaryFormatError, `expected BinaryFormatError, got ${error}`);
    assert.match(error.message, message);
    assert.equal(error.offset, offset);
    return true;
  });
}

/** Asserts that the sections tile the module from the header to the end. */
function assertSectionsTile(info: ModuleInfo, bytes: Uint8Array): void {
  let expected = HEADER.length;
  for (const section of info.sections) {
    assert.equal(section.start, expected);
    assert.equal(bytes[section.start], section.id);
    expected = section.end;
  }
  assert.equal(expected, bytes.length);
}

const FUNC_VOID = [0x60, 0x00, 0x00];
const EMPTY_BODY = [0x02, 0x00, 0x0b];

const RICH_WAT = `(module
  (type $binary (func (param i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32)))
  (import "env" "table" (table 2 10 funcref))
  (import "env" "memory" (memory 1 4))
  (import "env" "base" (global $base i32))
  (import "env" "oops" (tag $oops (param i64)))
  (func $add (export "add") (type $binary) (i32.add (local.get 0) (local.get 1)))
  (func $wide (export "wide") (param i64 f64 v128) (result f32 externref)
    (f32.const 0) (ref.null extern))
  (func $main (call $log (i32.const 1)) (data.drop 1))
  (table $own (export "own") 3 funcref)
  (memory $heap (export "heap") (export "heap2") 2 16)
  (global $g (mut i32) (i32.add (global.get $base) (i32.const 1)))
  (global $vec v128 (v128.const i32x4 1 2 3 4))
  (global $fn funcref (ref.func $add))
  (tag $mine (export "mine") (param i32))
  (export "log" (func $log))
  (export "memory" (memory 0))
  (export "g" (global $g))
  (start $main)
  (elem (table 1) (i32.const 0) func $add)
  (data (i32.const 0) "hi")
  (data "passive")
)`;

Deno.test("parseModule() decodes every declaration of a module", async (t) => {
  const bytes = wat(RICH_WAT);
  const info = parseModule(bytes);
  assert.ok(WebAssembly.validate(bytes));

  await t.step("records sections that tile the module", () => {
    assertSectionsTile(info, bytes);
    assert.deepEqual(
      info.sections.map((section) => section.id),
      [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11],
    );
    for (const section of info.sections) assert.ok(section.payloadStart > section.start);
  });
  await t.step("decodes types, imports and function type indices", () => {
    assert.deepEqual(info.types[0], { kind: "func", params: ["i32", "i32"], results: ["i32"] });
    assert.deepEqual(info.imports.map((entry) => `${entry.kind} ${entry.module}.${entry.name}`), [
      "function env.log",
      "table env.table",
      "memory env.memory",
      "global env.base",
      "tag env.oops",
    ]);
    assert.equal(info.functions.length, 3);
    assert.equal(info.functions[0], 0);
    assert.equal(functionTypeIndices(info).length, 4);
  });
  await t.step("decodes tables, memories, globals and tags", () => {
    assert.equal(info.tables.length, 1);
    assert.equal(info.tables[0]!.type.refType, "funcref");
    assert.equal(info.tables[0]!.init, null);
    assert.deepEqual(
      info.memories.map(({ min, max, shared, address }) => ({ min, max, shared, address })),
      [{ min: 2, max: 16, shared: false, address: "i32" }],
    );
    assert.deepEqual(info.globals.map((global) => global.type), [
      { valueType: "i32", mutable: true },
      { valueType: "v128", mutable: false },
      { valueType: "funcref", mutable: false },
    ]);
    const lastInit = info.globals[2]!.init;
    assert.equal(bytes[lastInit.start], 0xd2, "ref.func");
    assert.equal(bytes[lastInit.end - 1], 0x0b, "end");
    assert.equal(info.tags.length, 1);
  });
  await t.step("decodes exports, start, data count and code bodies", () => {
    assert.deepEqual(info.exports.map((entry) => [entry.name, entry.kind, entry.index]), [
      ["add", "function", 1],
      ["wide", "function", 2],
      ["own", "table", 1],
      ["heap", "memory", 1],
      ["heap2", "memory", 1],
      ["mine", "tag", 1],
      ["log", "function", 0],
      ["memory", "memory", 0],
      ["g", "global", 1],
    ]);
    assert.equal(info.start, 3);
    assert.equal(info.dataCount, 2);
    assert.equal(info.code.length, 3);
    for (const body of info.code) {
      assert.ok(body.start < body.bodyStart && body.bodyStart < body.end);
      assert.equal(bytes[body.end - 1], 0x0b, "every body ends with end");
    }
    const codeSection = info.sections.find((section) => section.id === SectionId.Code)!;
    assert.equal(info.code.at(-1)!.end, codeSection.end);
  });
});

Deno.test("describeImports() and describeExports() resolve function signatures", async (t) => {
  const info = parseModule(wat(RICH_WAT));

  await t.step("imports carry their module name and function signatures", () => {
    assert.deepEqual(describeImports(info), [
      { module: "env", name: "log", kind: "function", params: ["i32"], results: [] },
      { module: "env", name: "table", kind: "table" },
      { module: "env", name: "memory", kind: "memory" },
      { module: "env", name: "base", kind: "global" },
      { module: "env", name: "oops", kind: "tag" },
    ]);
  });
  await t.step("exports index imported functions before defined ones", () => {
    const exports = describeExports(info);
    assert.deepEqual(exports[0], {
      name: "add",
      kind: "function",
      params: ["i32", "i32"],
      results: ["i32"],
    });
    assert.deepEqual(exports[1], {
      name: "wide",
      kind: "function",
      params: ["i64", "f64", "v128"],
      results: ["f32", "externref"],
    });
    assert.deepEqual(exports[6], { name: "log", kind: "function", params: ["i32"], results: [] });
    assert.deepEqual(exports[3], { name: "heap", kind: "memory" });
    assert.ok(!("module" in exports[3]!));
  });
});

Deno.test("listMemories() and listTables() put imports first", () => {
  const info = parseModule(wat(RICH_WAT));
  const memories = listMemories(info);
  assert.deepEqual(
    memories.map(({ index, import: source, exportNames }) => ({
      index,
      source,
      exportNames,
    })),
    [
      { index: 0, source: { module: "env", name: "memory" }, exportNames: ["memory"] },
      { index: 1, source: null, exportNames: ["heap", "heap2"] },
    ],
  );
  assert.deepEqual(memories.map((memory) => [memory.limits.min, memory.limits.max]), [[1, 4], [
    2,
    16,
  ]]);
  const tables = listTables(info);
  assert.deepEqual(
    tables.map((
      table,
    ) => [table.index, table.import?.name ?? null, table.exportNames, table.refType]),
    [[0, "table", [], "funcref"], [1, null, ["own"], "funcref"]],
  );
  assert.deepEqual(tables.map((table) => [table.limits.min, table.limits.max]), [[2, 10], [
    3,
    null,
  ]]);
});

Deno.test("parseModule() decodes value types as the text format writes them", () => {
  const params = [
    [0x7f], // i32
    [0x7e], // i64
    [0x7d], // f32
    [0x7c], // f64
    [0x7b], // v128
    [0x70], // funcref
    [0x6f], // externref
    [0x6e], // anyref
    [0x69], // exnref
    [0x63, 0x00], // (ref null 0)
    [0x64, 0x00], // (ref 0)
    [0x64, 0x70], // (ref func)
    [0x63, 0x6f], // (ref null extern) = externref
    [0x64, 0x71], // (ref none)
  ];
  const type = [0x60, params.length, ...params.flat(), 0x01, 0x63, 0x6d];
  const bytes = assemble([SectionId.Type, [0x01, ...type]]);
  assert.ok(WebAssembly.validate(bytes));
  assert.deepEqual(parseModule(bytes).types, [{
    kind: "func",
    params: [
      "i32",
      "i64",
      "f32",
      "f64",
      "v128",
      "funcref",
      "externref",
      "anyref",
      "exnref",
      "(ref null 0)",
      "(ref 0)",
      "(ref func)",
      "externref",
      "(ref none)",
    ],
    results: ["eqref"],
  }]);
});

Deno.test("parseModule() records GC struct, array, sub and rec types", () => {
  const recGroup = [
    0x4e, // rec
    0x02,
    0x5f, // struct
    0x02,
    0x7f, // i32
    0x01, // mutable
    0x77, // i16, packed
    0x00,
    0x5e, // array
    0x78, // i8
    0x01,
  ];
  const subFinal = [0x4f, 0x00, 0x60, 0x01, 0x64, 0x00, 0x00];
  const sub = [0x50, 0x00, 0x5e, 0x78, 0x01];
  const bytes = assemble([SectionId.Type, [0x03, ...recGroup, ...subFinal, ...sub]]);
  assert.ok(WebAssembly.validate(bytes));
  assert.deepEqual(parseModule(bytes).types, [
    { kind: "struct" },
    { kind: "array" },
    { kind: "func", params: ["(ref 0)"], results: [] },
    { kind: "array" },
  ]);
});

Deno.test("parseModule() decodes limits flags", async (t) => {
  await t.step("memory64 limits are bigints", () => {
    const info = parseModule(wat("(module (memory i64 1 70000))"));
    assert.deepEqual(
      { ...info.memories[0], start: 0, end: 0 },
      {
        flags: 0x05,
        min: 1n,
        max: 70000n,
        shared: false,
        address: "i64",
        pageSizeLog2: null,
        start: 0,
        end: 0,
      },
    );
  });
  await t.step("shared memories", () => {
    const info = parseModule(wat("(module (memory 1 2 shared))"));
    assert.equal(info.memories[0]!.shared, true);
    assert.equal(info.memories[0]!.flags, 0x03);
  });
  await t.step("table64 limits", () => {
    const info = parseModule(wat("(module (table i64 1 funcref))"));
    assert.equal(info.tables[0]!.type.limits.address, "i64");
    assert.equal(info.tables[0]!.type.limits.min, 1n);
  });
  await t.step("custom page sizes record the page size", () => {
    const info = parseModule(assemble([SectionId.Memory, [0x01, 0x09, 0x02, 0x03, 0x00]]));
    const memory = info.memories[0]!;
    assert.deepEqual([memory.min, memory.max, memory.pageSizeLog2], [2, 3, 0]);
    assert.deepEqual([memory.start, memory.end], [11, 15]);
  });
  await t.step("non-minimal encodings are accepted", () => {
    const info = parseModule(
      assemble([SectionId.Memory, [0x81, 0x00, 0x01, 0x82, 0x80, 0x00, 0x83, 0x00]]),
    );
    assert.deepEqual([info.memories[0]!.min, info.memories[0]!.max], [2, 3]);
  });
  await t.step("unknown flags are malformed", () => {
    assertMalformed(
      assemble([SectionId.Memory, [0x01, 0x10, 0x00]]),
      /memory limits flags 0x10/,
      11,
    );
    assertMalformed(
      assemble([SectionId.Table, [0x01, 0x70, 0x02, 0x00, 0x01]]),
      /table limits flags 0x02/,
      12,
    );
  });
});

Deno.test("parseModule() decodes a table with an initializer expression", () => {
  const table = [0x40, 0x00, 0x64, 0x70, 0x00, 0x01, 0xd2, 0x00, 0x0b];
  const elemDeclare = [0x01, 0x03, 0x00, 0x01, 0x00];
  const bytes = assemble(
    [SectionId.Type, [0x01, ...FUNC_VOID]],
    [SectionId.Function, [0x01, 0x00]],
    [SectionId.Table, [0x01, ...table]],
    [SectionId.Element, elemDeclare],
    [SectionId.Code, [0x01, ...EMPTY_BODY]],
  );
  assert.ok(WebAssembly.validate(bytes));
  const info = parseModule(bytes);
  const entry = info.tables[0]!;
  assert.equal(entry.type.refType, "(ref func)");
  assert.deepEqual([entry.type.limits.min, entry.type.limits.max], [1, null]);
  assert.ok(entry.init !== null);
  assert.deepEqual([...bytes.subarray(entry.init.start, entry.init.end)], [0xd2, 0x00, 0x0b]);
});

Deno.test("parseModule() skips extended constant expressions", () => {
  const source = `(module
    (global $a i32 (i32.const 0x0b0b0b0b))
    (global i64 (i64.mul (i64.const -1) (i64.sub (i64.const 11) (i64.const 0x0b))))
    (global f32 (f32.const 0x1.6p-123))
    (global f64 (f64.const -0x1.0b0bp+11))
    (global i32 (i32.sub (i32.mul (global.get $a) (i32.const 11)) (i32.const 11)))
    (global externref (ref.null extern))
    (global (export "last") i32 (i32.const 7)))`;
  const bytes = wat(source);
  const info = parseModule(bytes);
  assert.equal(info.globals.length, 7);
  assert.equal(info.exports[0]!.index, 6);
  assertSectionsTile(info, bytes);
});

Deno.test("parseModule() records custom sections by name", () => {
  const payload = new ByteWriter().name("my.section").bytes(new Uint8Array([1, 2, 3])).finish();
  const bytes = assemble(
    [SectionId.Custom, payload],
    [SectionId.Type, [0x01, ...FUNC_VOID]],
    [SectionId.Custom, new ByteWriter().name("").finish()],
  );
  const info = parseModule(bytes);
  assert.equal(info.sections.length, 3);
  assert.deepEqual(info.customSections.map((section) => section.name), ["my.section", ""]);
  const custom = info.customSections[0]!;
  assert.deepEqual([...bytes.subarray(custom.contentStart, custom.end)], [1, 2, 3]);
  assert.equal(info.customSections[1]!.contentStart, info.customSections[1]!.end);
});

Deno.test("parseModule() rejects malformed binaries with the failing offset", async (t) => {
  await t.step("empty input", () => {
    assertMalformed(new Uint8Array(), /Expected magic \\0asm at byte offset 0/, 0);
  });
  await t.step("bad magic", () => {
    assertMalformed(new Uint8Array([0x00, 0x61, 0x73, 0x6e, 1, 0, 0, 0]), /Expected magic/, 0);
  });
  await t.step("wrong version", () => {
    const bytes = new Uint8Array([...HEADER.slice(0, 4), 0x0d, 0x00, 0x01, 0x00]);
    assertMalformed(bytes, /Expected version 01 00 00 00, found 0d 00 01 00/, 4);
  });
  await t.step("truncated header", () => {
    assertMalformed(new Uint8Array(HEADER.slice(0, 6)), /found 01 00 at/, 4);
  });
  await t.step("unknown section id", () => {
    assertMalformed(assemble([14, []]), /Unknown section id 14/, 8);
  });
  await t.step("section larger than the input", () => {
    const bytes = new Uint8Array([...HEADER, 0x01, 0x0a, 0x01, 0x60, 0x00, 0x00]);
    assertMalformed(bytes, /Section 1 declares 10 bytes but 4 remain/, 9);
  });
  await t.step("section with trailing bytes", () => {
    const bytes = assemble([1, [0x01, ...FUNC_VOID]], [3, [0x01, 0x00, 0x00]]);
    assertMalformed(bytes, /Section 3 declares 3 bytes but its contents take 2/, 18);
  });
  await t.step("section contents running past the section", () => {
    const bytes = assemble([1, [0x01, ...FUNC_VOID]], [3, [0x02, 0x00]], [10, [0x00]]);
    assertMalformed(bytes, /Unexpected end of input/, 18);
  });
  await t.step("truncated section size", () => {
    assertMalformed(new Uint8Array([...HEADER, 0x01, 0x80]), /Unexpected end of input/, 10);
  });
  await t.step("duplicate and misordered sections", () => {
    const type = [0x01, ...FUNC_VOID];
    assertMalformed(assemble([1, type], [1, type]), /Duplicate section id 1/, 14);
    assertMalformed(assemble([3, [0x00]], [1, type]), /Expected section 1 before section 3/, 11);
  });
  await t.step("unknown value type and type form", () => {
    assertMalformed(assemble([1, [0x01, 0x60, 0x01, 0x10, 0x00]]), /Unknown value type 0x10/, 13);
    assertMalformed(assemble([1, [0x01, 0x61]]), /Unknown type form 0x61/, 11);
  });
  await t.step("non-constant instruction in a global initializer", () => {
    const bytes = assemble([SectionId.Global, [0x01, 0x7f, 0x00, 0x41, 0x00, 0x1a, 0x0b]]);
    assertMalformed(bytes, /Unexpected opcode 0x1a in constant expression/, 15);
  });
  await t.step("function and code counts that differ", () => {
    const bytes = assemble([1, [0x01, ...FUNC_VOID]], [3, [0x01, 0x00]]);
    assertMalformed(bytes, /declares 1 functions but the code section has 0 bodies/, bytes.length);
  });
  await t.step("function type index out of range", () => {
    const bytes = assemble(
      [SectionId.Type, [0x01, ...FUNC_VOID]],
      [SectionId.Function, [0x01, 0x01]],
      [SectionId.Code, [0x01, ...EMPTY_BODY]],
    );
    assertMalformed(bytes, /Expected type 1 to be a function type, but only 1 types exist/, 17);
  });
  await t.step("export of a missing function", () => {
    const bytes = assemble([SectionId.Export, [0x01, 0x01, 0x66, 0x00, 0x00]]);
    assertMalformed(bytes, /Export "f" refers to function 0 but only 0 exist/, 14);
  });
  await t.step("unknown import and export kinds", () => {
    const importBytes = assemble([SectionId.Import, [0x01, 0x01, 0x6d, 0x01, 0x6e, 0x05, 0x00]]);
    assertMalformed(importBytes, /Unknown import kind 0x05/, 15);
    const exportBytes = assemble([SectionId.Export, [0x01, 0x01, 0x66, 0x07, 0x00]]);
    assertMalformed(exportBytes, /Unknown export kind 0x07/, 13);
  });
});

Deno.test("parseModule() refuses a count past the engine's limit before reading on", async (t) => {
  const counts: [string, number, number, number][] = [
    ["types", SectionId.Type, 1_000_000, 10],
    ["imports", SectionId.Import, 1_000_000, 10],
    ["functions", SectionId.Function, 1_000_000, 10],
    ["tables", SectionId.Table, 100_000, 10],
    ["memories", SectionId.Memory, 100_000, 10],
    ["globals", SectionId.Global, 1_000_000, 10],
    ["exports", SectionId.Export, 1_000_000, 10],
    ["element segments", SectionId.Element, 10_000_000, 10],
    ["functions", SectionId.Code, 1_000_000, 10],
    ["data segments", SectionId.Data, 100_000, 10],
    ["tags", SectionId.Tag, 1_000_000, 10],
  ];
  for (const [what, id, limit, offset] of counts) {
    await t.step(`section ${id}: ${limit + 1} ${what}`, () => {
      // Only the count: entries would take megabytes, and the count alone must be refused.
      const expected = new RegExp(
        `Expected at most ${limit} ${what}, the engine's limit, found ${limit + 1}`,
      );
      assertMalformed(assemble([id, leb(limit + 1)]), expected, offset);
      assert.ok(WebAssembly.validate(assemble([id, leb(limit + 1)])) === false);
    });
  }
  await t.step("a count at the limit reads on", () => {
    assertMalformed(assemble([SectionId.Type, leb(1_000_000)]), /Unexpected end of input/, 13);
  });
  await t.step("a rec group, and the types of all groups together", () => {
    const group = assemble([SectionId.Type, [0x01, 0x4e, ...leb(1_000_001)]]);
    assertMalformed(group, /Expected at most 1000000 types/, 12);
    // The millionth entry becomes a group of two: one type too many in all.
    const payload = voidTypes(1_000_000);
    const group2 = [0x4e, 0x02, ...FUNC_VOID, ...FUNC_VOID];
    const withGroup = new Uint8Array(payload.length - FUNC_VOID.length + group2.length);
    withGroup.set(payload.subarray(0, payload.length - FUNC_VOID.length));
    withGroup.set(group2, payload.length - FUNC_VOID.length);
    const bytes = assemble([SectionId.Type, withGroup]);
    const expected = /Expected at most 1000000 types, the engine's limit, found 1000001/;
    assertMalformed(bytes, expected, bytes.length - group2.length);
  });
  await t.step("parameters, results and struct fields", () => {
    const params = assemble([SectionId.Type, [0x01, 0x60, ...leb(1001)]]);
    assertMalformed(params, /Expected at most 1000 parameters, the engine's limit, found 1001/, 12);
    const results = assemble([SectionId.Type, [0x01, 0x60, 0x00, ...leb(1001)]]);
    assertMalformed(results, /Expected at most 1000 results, the engine's limit, found 1001/, 13);
    const fields = assemble([SectionId.Type, [0x01, 0x5f, ...leb(10_001)]]);
    assertMalformed(fields, /Expected at most 10000 struct fields/, 12);
  });
  await t.step("a function body", () => {
    const bytes = assemble(
      [SectionId.Type, [0x01, ...FUNC_VOID]],
      [SectionId.Function, [0x01, 0x00]],
      [SectionId.Code, [0x01, ...leb(7_654_322)]],
    );
    assertMalformed(bytes, /Expected at most 7654321 bytes of code, the engine's limit/, 21);
  });
});

Deno.test("parseModule() shares one frozen entry among function types encoded alike", () => {
  const i32ToVoid = [0x60, 0x01, 0x7f, 0x00];
  const refToVoid = [0x60, 0x01, 0x63, 0x00, 0x00]; // (param (ref null 0))
  const payload = [0x05, ...FUNC_VOID, ...i32ToVoid, ...FUNC_VOID, ...refToVoid, ...i32ToVoid];
  const { types } = parseModule(assemble([SectionId.Type, payload]));
  assert.deepEqual(types, [
    { kind: "func", params: [], results: [] },
    { kind: "func", params: ["i32"], results: [] },
    { kind: "func", params: [], results: [] },
    { kind: "func", params: ["(ref null 0)"], results: [] },
    { kind: "func", params: ["i32"], results: [] },
  ]);
  assert.equal(types[0], types[2]);
  assert.equal(types[1], types[4]);
  assert.ok(types.every((type) => Object.isFrozen(type)));
  assert.ok(types.every((type) => type.kind !== "func" || Object.isFrozen(type.params)));
  const million = parseModule(assemble([SectionId.Type, voidTypes(999_999)])).types;
  assert.equal(million.length, 999_999);
  assert.equal(new Set(million).size, 1);
});

Deno.test("parseModule() fails only with BinaryFormatError on damaged input", async (t) => {
  const bytes = wat(RICH_WAT);

  await t.step("every truncation", () => {
    for (let length = 0; length < bytes.length; length++) {
      const truncated = bytes.subarray(0, length);
      try {
        parseModule(truncated);
        assert.ok(length === HEADER.length || truncatedAtSectionEnd(bytes, length), `${length}`);
      } catch (error) {
        assert.ok(error instanceof BinaryFormatError, `length ${length}: ${error}`);
        assert.ok(error.offset >= 0 && error.offset <= length, `offset ${error.offset}`);
      }
    }
  });
  await t.step("pseudo-random byte flips and garbage", () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const damaged = bytes.slice();
      for (let flips = 0; flips < 3; flips++) {
        damaged[Math.floor(random() * damaged.length)] = Math.floor(random() * 256);
      }
      assertParsesOrFailsCleanly(damaged);
      const garbage = Uint8Array.from(
        { length: 8 + Math.floor(random() * 40) },
        () => random() * 256,
      );
      garbage.set(HEADER);
      assertParsesOrFailsCleanly(garbage);
    }
  });
});

function truncatedAtSectionEnd(bytes: Uint8Array, length: number): boolean {
  return parseModule(bytes).sections.some((section) => section.end === length);
}

function assertParsesOrFailsCleanly(bytes: Uint8Array): void {
  try {
    parseModule(bytes);
  } catch (error) {
    assert.ok(error instanceof BinaryFormatError, `${error}`);
    assert.ok(error.offset >= 0 && error.offset <= bytes.length);
  }
}

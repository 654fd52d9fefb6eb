import assert from "node:assert/strict";
import {
  EngineLimitError,
  InstanceLimits,
  instrument,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { parseModule, SectionId } from "../../src/instrument/_module.ts";
import { wat } from "./_wat.ts";
import { variantOf } from "./_host.ts";
import { assemble, HEADER, leb, ONE_VOID_FUNCTION, voidTypes } from "./_wasm.ts";

const ALL = { fuel: { initial: 1n << 40n }, callDepth: true, deadline: "clock" } as const;

Deno.test("instrument() validates its arguments", async (t) => {
  const bytes = wat(`(module (func (export "f")))`);

  await t.step("reserved export names are refused", () => {
    const reserved = wat(`(module (func (export "__wasmplug_fuel")))`);
    assert.throws(() => instrument(reserved, ALL), TypeError);
  });

  await t.step("options out of range are refused", () => {
    assert.throws(() => instrument(bytes, { callDepth: { max: -1 } }), RangeError);
    assert.throws(() => instrument(bytes, { fuel: { initial: -1n } }), RangeError);
    assert.throws(
      () => instrument(bytes, { deadline: "epoch" as unknown as "clock" }),
      RangeError,
    );
  });

  await t.step("invalid modules are refused with V8's CompileError", () => {
    // Valid structure, but local 0 does not exist (an appended local would make it valid).
    const invalid = new Uint8Array([
      ...HEADER,
      ...ONE_VOID_FUNCTION,
      0x0a,
      0x07,
      0x01,
      0x05,
      0x00,
      0x20,
      0x00,
      0x1a,
      0x0b,
    ]); // deno-fmt-ignore
    assert.throws(() => instrument(invalid, ALL), WebAssembly.CompileError);
  });

  await t.step("without passes the module comes back unchanged", () => {
    const result = instrument(bytes);
    assert.deepEqual(result.bytes, bytes);
    assert.equal(result.trapGlobal, null);
  });
});

Deno.test("instrument() refuses to take a module past the engine's limits", async (t) => {
  await t.step("a type more than a million", () => {
    const bytes = assemble([SectionId.Type, voidTypes(1_000_000)]);
    // The clock deadline's hook needs a type of its own.
    assert.throws(() => instrument(bytes, { deadline: "clock" }), (error: unknown) => {
      assert.ok(error instanceof EngineLimitError);
      assert.equal(error.limit, "types");
      assert.match(
        error.message,
        /Cannot instrument the module: it has 1000000 types and needs 1 more, above the engine's limit of 1000000/,
      );
      return true;
    });
    // Fuel and depth add no type to a module without code.
    assert.ok(WebAssembly.validate(instrument(bytes, { fuel: true, callDepth: true }).bytes));
  });
  await t.step("locals past 50 000 in a function", () => {
    const body = (locals: number): number[] => {
      const inner = [0x01, ...leb(locals), 0x7f, 0x0b];
      return [0x01, ...leb(inner.length), ...inner];
    };
    const module = (locals: number): Uint8Array =>
      assemble(
        [SectionId.Type, [0x01, 0x60, 0x01, 0x7f, 0x00]],
        [SectionId.Function, [0x01, 0x00]],
        [
          SectionId.Code,
          body(locals),
        ],
      );
    // One parameter and 49 997 locals leave room for the fuel and depth locals.
    assert.ok(WebAssembly.validate(instrument(module(49_997), ALL).bytes));
    assert.throws(
      () => instrument(module(49_998), ALL),
      /function 0 has 49999 locals and needs 2 more, above the engine's limit of 50000/,
    );
    // A module already past the limit is the engine's to refuse.
    assert.throws(() => instrument(module(50_000), ALL), WebAssembly.CompileError);
  });
  await t.step("a body the passes grow past 7 654 321 bytes", () => {
    // 300 000 nested `(if (i32.const 1) …)`: 1.5 MB the engine takes; each block gets its checks.
    const depth = 300_000;
    const inner = new Uint8Array(1 + 4 * depth + depth + 1);
    for (let i = 0; i < depth; i++) inner.set([0x41, 0x01, 0x04, 0x40], 1 + 4 * i);
    inner.fill(0x0b, 1 + 4 * depth);
    const bytes = assemble(
      [SectionId.Type, [0x01, 0x60, 0x00, 0x00]],
      [SectionId.Function, [0x01, 0x00]],
      [SectionId.Code, [0x01, ...leb(inner.length), ...inner]],
    );
    assert.ok(WebAssembly.validate(bytes));
    assert.throws(() => instrument(bytes, ALL), (error: unknown) => {
      assert.ok(error instanceof EngineLimitError);
      assert.equal(error.limit, "functionSize");
      assert.match(
        error.message,
        /^Cannot instrument the module: function 0 .*has 1500002 bytes of code and needs \d+ more, above the engine's limit of 7654321$/,
      );
      return true;
    });
  });
});

Deno.test("instrument() reads the module from its description when given one", () => {
  const bytes = wat(`(module (memory 1) (func (export "f") (result i32)
    (loop (br_if 0 (i32.const 0))) (memory.grow (i32.const 1))))`);
  const described = instrument(bytes, { ...ALL, info: parseModule(bytes) });
  assert.deepEqual(described, instrument(bytes, ALL));
});

Deno.test("instrument() keeps every index and non-code section intact", () => {
  const source = `(module
    (import "env" "mem" (memory 1))
    (import "env" "g" (global $ig i32))
    (import "env" "f" (func $imp (result i32)))
    (table $t 2 funcref)
    (global $g (mut i32) (i32.const 5))
    (elem (table $t) (i32.const 0) func $a $b)
    (func $a (export "a") (result i32) (i32.add (global.get $g) (call $imp)))
    (func $b (export "b") (param $x i32) (result i32)
      (i32.store (i32.const 4) (local.get $x))
      (i32.add (i32.load (i32.const 4)) (call_indirect $t (result i32) (i32.const 0))))
    (func (export "ref") (result funcref) (ref.func $b))
    (start $s) (func $s (global.set $g (i32.const 7))))`;
  const bytes = wat(source, { debugNames: true });
  const result = instrument(bytes, ALL);
  const before = parseModule(bytes);
  const after = parseModule(result.bytes);
  assert.deepEqual(
    after.exports.slice(0, before.exports.length),
    before.exports.map((e) => ({
      ...e,
      offset: after.exports[before.exports.indexOf(e)]!.offset,
    })),
  );
  // The name section and the instrumenter's own branch hints aside (see below).
  const custom = (info: typeof before, from: Uint8Array): Uint8Array[] =>
    info.customSections.filter((s) => s.name !== "metadata.code.branch_hint" && s.name !== "name")
      .map((s) => from.subarray(s.start, s.end));
  assert.deepEqual(custom(after, result.bytes), custom(before, bytes));
  // Every function keeps its name, and the variant of a split function takes it too.
  const named = functionNames(result.bytes);
  const original = functionNames(bytes);
  assert.ok(original.size > 0);
  for (const [f, name] of original) {
    assert.equal(named.get(f), name);
    if (f === 0) continue; // the imported function
    const variant = variantOf(result.bytes, f - 1);
    if (variant !== null) assert.equal(named.get(variant), name);
  }
  assert.ok(named.size > original.size, "some function has a variant");
  const memory = new WebAssembly.Memory({ initial: 1 });
  const imports = { env: { mem: memory, g: 1, f: () => 10 } };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes), imports);
  const limits = new InstanceLimits(instance, result);
  limits.prepare({ fuel: 1000n, maxCallDepth: 10 });
  limits.runStart();
  const exports = instance.exports as Record<string, (x?: number) => unknown>;
  assert.equal(exports.a!(), 17);
  assert.equal(exports.b!(3), 20);
  assert.equal(typeof exports.ref!(), "function");
  assert.equal(new Int32Array(memory.buffer)[1], 3, "memory 0 is still the imported one");
  assert.equal(limits.trapReason, TrapReason.None);
});

Deno.test("instrument() drops code metadata, whose offsets no longer hold", () => {
  const bytes = wat(`(module (func (export "f") (param i32) (result i32)
    local.get 0 if (result i32) i32.const 1 else i32.const 2 end))`);
  const info = parseModule(bytes);
  const code = info.sections.find((s) => s.id === 10)!;
  const section = (name: string, payload: number[]): number[] => {
    const encoded = [...new TextEncoder().encode(name)];
    const content = [encoded.length, ...encoded, ...payload];
    return [0, content.length, ...content];
  };
  // A hint that the `if` (2 bytes into the body) is unlikely, and an unrelated section.
  const hinted = new Uint8Array([
    ...bytes.subarray(0, code.start),
    ...section("metadata.code.branch_hint", [1, 0, 1, 3, 1, 0]),
    ...section("kept", [1, 2, 3]),
    ...bytes.subarray(code.start),
  ]);
  assert.ok(WebAssembly.validate(hinted));
  const names = (from: Uint8Array): string[] => parseModule(from).customSections.map((s) => s.name);
  assert.deepEqual(names(hinted), ["metadata.code.branch_hint", "kept"]);
  // The rewritten code gets hints of its own, before the code section: its
  // slow paths (here the fuel charge's) are unlikely.
  const rewritten = instrument(hinted, { fuel: true }).bytes;
  assert.deepEqual(names(rewritten), ["kept", "metadata.code.branch_hint"]);
  const hints = branchHints(rewritten);
  assert.ok(hints.length > 0);
  assert.notDeepEqual(hints, [[0, [3]]], "the input's hint is gone");
  assert.deepEqual(names(instrument(hinted).bytes), ["metadata.code.branch_hint", "kept"]);
});

Deno.test("instrument() hints that the passes' slow paths are unlikely", () => {
  const bytes = wat(`(module
    (func $fib (export "fib") (param i32) (result i32)
      local.get 0 i32.const 2 i32.lt_u
      if (result i32) local.get 0
      else
        (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
          (call $fib (i32.sub (local.get 0) (i32.const 2))))
      end)
    (func (export "spin") (param $n i32)
      (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`);
  for (
    const options of [
      ALL,
      { fuel: true },
      { callDepth: true },
      { deadline: "clock" },
      { deadline: "clock", callDepth: true },
    ] as const
  ) {
    const result = instrument(bytes, options).bytes;
    const info = parseModule(result);
    const hints = branchHints(result);
    const name = Object.keys(options).join("+");
    assert.ok(hints.length > 0, name);
    let previous = -1;
    for (const [f, offsets] of hints) {
      assert.ok(f > previous, "functions in increasing order");
      previous = f;
      const body = info.code[f]!; // no imported functions
      for (const offset of offsets) {
        // Each hint names an `if [] -> []` whose then arm is the slow path.
        assert.equal(result[body.bodyStart + offset], 0x04, `${name}: function ${f}`);
        assert.equal(result[body.bodyStart + offset + 1], 0x40);
      }
    }
    assert.ok(WebAssembly.validate(result));
  }
});

/** The function names of a module's name section, by function index. */
function functionNames(bytes: Uint8Array): Map<number, string> {
  const section = parseModule(bytes).customSections.find((s) => s.name === "name")!;
  let at = section.contentStart;
  const u32 = (): number => {
    let value = 0;
    for (let shift = 0;; shift += 7) {
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const names = new Map<number, string>();
  while (at < section.end) {
    const id = bytes[at++]!;
    const size = u32();
    const end = at + size;
    if (id === 1) {
      for (let count = u32(); count > 0; count--) {
        const f = u32();
        const length = u32();
        names.set(f, new TextDecoder().decode(bytes.subarray(at, at + length)));
        at += length;
      }
    }
    at = end;
  }
  return names;
}

/** The function index and offsets of every hint of a module's branch hint section. */
function branchHints(bytes: Uint8Array): [number, number[]][] {
  const section = parseModule(bytes).customSections.find((s) =>
    s.name === "metadata.code.branch_hint"
  );
  if (section === undefined) return [];
  let at = section.contentStart;
  const u32 = (): number => {
    let value = 0;
    for (let shift = 0;; shift += 7) {
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const functions: [number, number[]][] = [];
  for (let count = u32(); count > 0; count--) {
    const f = u32();
    const offsets: number[] = [];
    for (let hints = u32(); hints > 0; hints--) {
      offsets.push(u32());
      assert.equal(u32(), 1, "a hint's size is 1");
      assert.equal(bytes[at++], 0, "unlikely");
    }
    functions.push([f, offsets]);
  }
  assert.equal(at, section.end);
  return functions;
}

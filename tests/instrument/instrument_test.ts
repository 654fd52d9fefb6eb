import assert from "node:assert/strict";
import { InstanceLimits, instrument, TrapReason } from "../../src/instrument/instrument.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { wat } from "./_wat.ts";
import { HEADER, ONE_VOID_FUNCTION } from "./_wasm.ts";

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
  for (const deadline of ["clock", "shared-flag"] as const) {
    const result = instrument(bytes, { ...ALL, deadline });
    const before = parseModule(bytes);
    const after = parseModule(result.bytes);
    assert.deepEqual(
      after.exports.slice(0, before.exports.length),
      before.exports.map((e) => ({
        ...e,
        offset: after.exports[before.exports.indexOf(e)]!.offset,
      })),
    );
    const custom = (info: typeof before, from: Uint8Array): Uint8Array[] =>
      info.customSections.map((s) => from.subarray(s.start, s.end));
    assert.deepEqual(custom(after, result.bytes), custom(before, bytes));
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
  }
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
  assert.deepEqual(names(instrument(hinted, { fuel: true }).bytes), ["kept"]);
  assert.deepEqual(names(instrument(hinted).bytes), ["metadata.code.branch_hint", "kept"]);
});

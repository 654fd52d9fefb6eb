import assert from "node:assert/strict";
import { BinaryFormatError } from "../../src/instrument/_bytes.ts";
import { instrument, type InstrumentOptions } from "../../src/instrument/instrument.ts";
import { wat } from "./_wat.ts";

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [
  `(module
    (type $t (func (param i32) (result i32)))
    (import "env" "f" (func $imp (param i32) (result i32)))
    (memory 1) (table 2 funcref) (global $g (mut i32) (i32.const 0))
    (tag $e (param i32))
    (func $a (export "a") (type $t)
      (block $b (result i32)
        (loop $l
          local.get 0 i32.const 1 i32.sub local.tee 0
          br_if $l)
        (try_table (catch $e $b) (throw $e (i32.const 3)))
        local.get 0 call $imp))
    (func $tail (param i32) (result i32) local.get 0 return_call $a)
    (func (export "simd") (param v128) (result v128)
      local.get 0 local.get 0 i32x4.add v128.const i64x2 1 2 i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31)
    (func (export "mem") (param i32) (result i64)
      local.get 0 i64.load offset=8 local.get 0 i32.load8_u i64.extend_i32_u i64.add
      i32.const 0 i32.const 0 i32.const 4 memory.copy)
    (elem (i32.const 0) $a $tail)
    (start $s) (func $s)
    (data (i32.const 0) "hello"))`,
  `(module
    (func $f (export "f") (param i64) (result i64)
      local.get 0 i64.eqz if (result i64) i64.const 1
      else local.get 0 local.get 0 i64.const 1 i64.sub call $f i64.mul end)
    (func (export "g") (param f32 f64) (result f64)
      local.get 0 f64.promote_f32 local.get 1 f64.add
      (br_table 0 0 (i32.const 0))))`,
];

function corpus(): Uint8Array[] {
  const modules: Uint8Array[] = SEEDS.map((source) => wat(source));
  const spec = new URL("../../../shared/spec-testsuite/", import.meta.url);
  for (const name of ["br_table", "simd_lane", "try_table", "memory64", "call_ref", "atomic"]) {
    try {
      modules.push(Deno.readFileSync(new URL(`${name}/${name}.0.wasm`, spec)));
    } catch {
      // The corpus is optional.
    }
  }
  return modules;
}

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = Array.from(bytes);
  const at = 8 + Math.floor(next() * Math.max(1, out.length - 8));
  const roll = next();
  if (roll < 0.4) out[at] = Math.floor(next() * 256);
  else if (roll < 0.8) out[at] = out[at]! ^ (1 << Math.floor(next() * 8));
  else if (roll < 0.9) out.splice(at, 0, Math.floor(next() * 256));
  else if (roll < 0.98) out.splice(at, 1 + Math.floor(next() * 4));
  else out.length = at;
  return new Uint8Array(out);
}

const OPTIONS: InstrumentOptions[] = [
  { fuel: true, callDepth: true, deadline: "clock" },
  { fuel: true, callDepth: true, deadline: "shared-flag", validate: false },
];

Deno.test("instrument() on mutated modules: valid output or a format/compile error", () => {
  const next = random(0x5eed);
  const modules = corpus();
  const tally = { rewritten: 0, malformed: 0, invalid: 0 };
  for (let i = 0; i < 3000; i++) {
    const input = mutate(modules[i % modules.length]!, next);
    const options = OPTIONS[i % OPTIONS.length]!;
    const inputValid = WebAssembly.validate(input as Uint8Array<ArrayBuffer>);
    let output: Uint8Array<ArrayBuffer>;
    try {
      output = instrument(input, options).bytes;
    } catch (error) {
      if (error instanceof BinaryFormatError) {
        assert.ok(!inputValid, `rejected a valid module (case ${i}): ${error.message}`);
        tally.malformed++;
        continue;
      }
      if (error instanceof WebAssembly.CompileError) {
        assert.ok(!inputValid, `case ${i}`);
        tally.invalid++;
        continue;
      }
      throw new Error(`Case ${i} threw something else`, { cause: error });
    }
    // Without validation an invalid input may come out valid (an appended
    // local or global can satisfy a dangling index); a valid one must stay valid.
    if (options.validate === false) assert.ok(!inputValid || WebAssembly.validate(output));
    else assert.ok(inputValid && WebAssembly.validate(output), `case ${i}`);
    tally.rewritten++;
  }
  // The mutations must exercise every outcome.
  assert.ok(
    tally.rewritten > 100 && tally.malformed > 100 && tally.invalid > 50,
    JSON.stringify(tally),
  );
});

/**
 * Fuzzing of the instrumenter, shared by the CI property test
 * (`fuzz_test.ts`) and the long run of `deno task fuzz`
 * (`tests/fuzz/fuzz.ts`, which also fuzzes the public API). Every case is
 * reproducible from the seed and its index.
 *
 * {@linkcode fuzzInstrumenter} feeds `instrument()` mutated binaries (of
 * hand-written seeds, spec testsuite modules and generated programs) and
 * generated programs as they are: it must return a module V8 validates, or
 * reject an invalid input with a `BinaryFormatError` or V8's `CompileError`,
 * and a generated program must compute the same instrumented as plain.
 *
 * @module
 */

import { BinaryFormatError } from "../../src/instrument/_bytes.ts";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
} from "../../src/instrument/instrument.ts";
import { mutateBytes } from "../fuzz/_mutate.ts";
import type { FuzzSettings } from "../fuzz/_settings.ts";
import { random, randomProgram } from "./_random_program.ts";
import { wat } from "./_wat.ts";

/** What happened to the cases of {@linkcode fuzzInstrumenter}. */
export interface InstrumenterTally {
  /** Inputs instrumented into a valid module. */
  rewritten: number;
  /** Inputs rejected as malformed (`BinaryFormatError`). */
  malformed: number;
  /** Inputs rejected as invalid (`WebAssembly.CompileError`). */
  invalid: number;
  /** Generated programs run plain and instrumented with the same results. */
  compared: number;
}

/** Hand-written seeds covering most sections and instruction families. */
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
  `(module
    (type $pt (struct (field i32)))
    (func (export "gc") (param anyref) (result i32)
      (block $no (result anyref)
        (br_on_cast_fail $no anyref (ref $pt) (local.get 0))
        (struct.get $pt 0)
        return)
      drop i32.const -1)
    (func (export "legacy") (result i32)
      (try (result i32) (do (i32.const 1)) (catch_all (i32.const 2)))))`,
];

/** Names of spec testsuite modules added to the corpus when the suite is present. */
const SPEC_SEEDS = ["br_table", "simd_lane", "try_table", "memory64", "call_ref", "atomic"];

/**
 * The instrumenter's corpus: the hand-written seeds, the spec testsuite's
 * modules when the suite is present, and four generated programs.
 */
export function instrumenterCorpus(next: () => number): Uint8Array[] {
  const modules: Uint8Array[] = [];
  for (const source of SEEDS) {
    try {
      modules.push(wat(source));
    } catch {
      // A seed wabt cannot express is skipped.
    }
  }
  const spec = new URL("../../../shared/spec-testsuite/", import.meta.url);
  for (const name of SPEC_SEEDS) {
    try {
      modules.push(Deno.readFileSync(new URL(`${name}/${name}.0.wasm`, spec)));
    } catch {
      // The spec testsuite is optional.
    }
  }
  for (let i = 0; i < 4; i++) modules.push(wat(randomProgram(next, 3).plain));
  return modules;
}

const OPTIONS: InstrumentOptions[] = [
  { fuel: true, callDepth: true, deadline: "clock" },
  { fuel: true, callDepth: true, deadline: "clock", validate: false },
  { fuel: true },
  { callDepth: true, deadline: "clock" },
  { deadline: "clock", validate: false },
];

/**
 * Runs `settings.cases` instrumenter cases.
 *
 * @throws {Error} Naming the case when a property fails.
 */
export function fuzzInstrumenter(
  settings: FuzzSettings,
  onProgress?: (done: number, tally: InstrumenterTally) => void,
): InstrumenterTally {
  const next = random(settings.seed);
  const modules = instrumenterCorpus(next);
  const tally: InstrumenterTally = { rewritten: 0, malformed: 0, invalid: 0, compared: 0 };
  for (let i = 0; i < settings.cases; i++) {
    const options = OPTIONS[i % OPTIONS.length]!;
    const where = `case ${i} (seed ${settings.seed})`;
    if (i % 8 === 7) {
      compareGenerated(next, options, where);
      tally.compared++;
    } else {
      const base = modules[Math.floor(next() * modules.length)]!;
      instrumentOne(mutateBytes(base, next), options, where, tally);
    }
    if (onProgress !== undefined && (i + 1) % 1000 === 0) onProgress(i + 1, tally);
  }
  return tally;
}

function instrumentOne(
  input: Uint8Array,
  options: InstrumentOptions,
  where: string,
  tally: InstrumenterTally,
): void {
  const inputValid = WebAssembly.validate(input as Uint8Array<ArrayBuffer>);
  let output: Uint8Array<ArrayBuffer>;
  try {
    output = instrument(input, options).bytes;
  } catch (error) {
    if (error instanceof BinaryFormatError || error instanceof WebAssembly.CompileError) {
      if (inputValid) {
        throw new Error(`${where}: rejected a valid module: ${error.message}`, { cause: error });
      }
      if (error instanceof BinaryFormatError) tally.malformed++;
      else tally.invalid++;
      return;
    }
    throw new Error(`${where}: threw something else`, { cause: error });
  }
  // Without validation an invalid input may come out valid (an appended
  // local or global can satisfy a dangling index); a valid one must stay valid.
  const outputValid = WebAssembly.validate(output);
  if (inputValid && !outputValid) {
    throw new Error(`${where}: instrumenting a valid module made it invalid`);
  }
  if (!inputValid && options.validate !== false) {
    throw new Error(`${where}: accepted an invalid module`);
  }
  tally.rewritten++;
}

/** A generated program must compute the same results plain and instrumented. */
function compareGenerated(next: () => number, options: InstrumentOptions, where: string): void {
  const program = randomProgram(next, 3);
  const plainBytes = wat(program.plain);
  const plain = new WebAssembly.Instance(new WebAssembly.Module(plainBytes));
  const result = instrument(plainBytes, options);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  const limits = new InstanceLimits(instance, result);
  for (const arg of [0, 1, 7]) {
    const expected = (plain.exports.f0 as (a: number, b: number) => number)(arg, 2);
    limits.prepare({ fuel: 1n << 50n, maxCallDepth: 10_000 });
    const actual = (instance.exports.f0 as (a: number, b: number) => number)(arg, 2);
    if (actual !== expected) {
      throw new Error(`${where}: f0(${arg}) is ${actual} instrumented, ${expected} plain`);
    }
  }
}

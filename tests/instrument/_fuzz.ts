/**
 * Fuzzing of the instrumenter and of the runtime that uses it, shared by the
 * CI property test (`fuzz_test.ts`) and the long run of `deno task fuzz`
 * (`fuzz.ts`). Every case is reproducible from the seed and its index.
 *
 * - {@linkcode fuzzInstrumenter} feeds `instrument()` mutated binaries (of
 *   hand-written seeds, spec testsuite modules and generated programs) and
 *   generated programs as they are: it must return a module V8 validates, or
 *   reject an invalid input with a `BinaryFormatError` or V8's `CompileError`,
 *   and a generated program must compute the same instrumented as plain.
 * - {@linkcode fuzzRuntime} feeds mutated WebAssembly text and mutated
 *   binaries to the public API in inline isolation: compiling, instantiating
 *   and calling every exported function must each end in a result or a
 *   `WasmError`.
 *
 * @module
 */

import { BinaryFormatError } from "../../src/instrument/_bytes.ts";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
} from "../../src/instrument/instrument.ts";
import { WasmError, WasmRuntime } from "../../mod.ts";
import { random, randomProgram } from "./_random_program.ts";
import { wat } from "./_wat.ts";

/** How many cases, from which seed. */
export interface FuzzSettings {
  /** Number of cases. */
  readonly cases: number;
  /** Seed of the case generator. */
  readonly seed: number;
}

/**
 * Reads `WASMPLUG_FUZZ_CASES` and `WASMPLUG_FUZZ_SEED` when the environment
 * may be read, else uses the defaults.
 */
export function fuzzSettings(defaults: FuzzSettings): FuzzSettings {
  const read = (name: string): number | undefined => {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    const text = Deno.env.get(name);
    if (text === undefined || text === "") return undefined;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${name} must be a non-negative integer: current value is ${text}`);
    }
    return value;
  };
  return {
    cases: read("WASMPLUG_FUZZ_CASES") ?? defaults.cases,
    seed: read("WASMPLUG_FUZZ_SEED") ?? defaults.seed,
  };
}

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

function corpus(next: () => number): Uint8Array[] {
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

/** Applies one to three random byte-level mutations. */
export function mutateBytes(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = Array.from(bytes);
  const rounds = 1 + Math.floor(next() * 3);
  for (let r = 0; r < rounds && out.length > 8; r++) {
    const at = 8 + Math.floor(next() * (out.length - 8));
    const roll = next();
    if (roll < 0.3) out[at] = Math.floor(next() * 256);
    else if (roll < 0.6) out[at] = out[at]! ^ (1 << Math.floor(next() * 8));
    else if (roll < 0.7) out.splice(at, 0, Math.floor(next() * 256));
    else if (roll < 0.78) out.splice(at, 1 + Math.floor(next() * 4));
    else if (roll < 0.84) out.splice(at, 0, 0x80, 0x80, 0x80, 0x80, 0x80); // oversized LEB128
    else if (roll < 0.9) out[at] = out[at]! | 0x80; // a LEB128 that runs on
    else if (roll < 0.95) out.splice(at, 0, ...out.slice(at, at + 1 + Math.floor(next() * 16)));
    else out.length = at;
  }
  return new Uint8Array(out);
}

const OPTIONS: InstrumentOptions[] = [
  { fuel: true, callDepth: true, deadline: "clock" },
  { fuel: true, callDepth: true, deadline: "shared-flag", validate: false },
  { fuel: true },
  { callDepth: true, deadline: "clock" },
  { deadline: "shared-flag", validate: false },
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
  const modules = corpus(next);
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

/** What happened to the cases of {@linkcode fuzzRuntime}. */
export interface RuntimeTally {
  /** Sources or binaries that did not compile (`CompilationError`s and the like). */
  rejected: number;
  /** Modules that compiled but could not become a plugin. */
  notInstantiated: number;
  /** Calls that returned. */
  returned: number;
  /** Calls that failed with a `WasmError`, by its `kind`. */
  failed: Record<string, number>;
}

/** WAT seeds for the runtime: plugin-shaped modules with every kind of limit to hit. */
const WAT_SEEDS = [
  `(module
    (memory (export "memory") 1 4)
    (func $fac (export "fac") (param i64) (result i64)
      local.get 0 i64.eqz if (result i64) i64.const 1
      else local.get 0 local.get 0 i64.const 1 i64.sub call $fac i64.mul end)
    (func (export "sum") (param $n i32) (result i32) (local $acc i32)
      (loop $l
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
      local.get $acc)
    (func (export "spin") (loop br 0))
    (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
    (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store)
    (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))`,
  `(module
    (type $t (func (param i32) (result i32)))
    (table 4 funcref) (elem (i32.const 0) $a $b)
    (global $g (mut i32) (i32.const 0))
    (func $a (param i32) (result i32) local.get 0 i32.const 1 i32.add)
    (func $b (param i32) (result i32) local.get 0 i32.const 0 call_indirect (type $t))
    (func (export "indirect") (param i32) (result i32)
      local.get 0 local.get 0 i32.const 1 i32.and call_indirect (type $t))
    (func (export "count") (result i32)
      global.get $g i32.const 1 i32.add global.set $g global.get $g)
    (func $r (export "recurse") (param i32) (result i32) local.get 0 call $r))`,
];

/** Instructions that keep the text well-formed where an instruction stood. */
const INSTRUCTIONS = [
  "unreachable",
  "nop",
  "drop",
  "br 0",
  "br 1",
  "br_if 0",
  "return",
  "call 0",
  "call 1",
  "i32.const 0",
  "i32.const -1",
  "i64.const 9223372036854775807",
  "local.get 0",
  "local.tee 0",
  "memory.grow",
  "memory.size",
  "i32.load offset=65532",
  "i32.add",
  "i32.div_u",
  "i64.mul",
  "select",
  "global.get 0",
];

/** Anything at all, for mutations that break the syntax. */
const JUNK = [
  "(",
  ")",
  "end",
  "block",
  "loop",
  "if",
  "else",
  "0",
  "4294967296",
  "$fac",
  "(param i32)",
];

const NUMBERS = ["0", "1", "-1", "2", "65536", "2147483647", "4294967295", "100000"];

/** Applies one or two token-level mutations to WebAssembly text, mostly keeping it well-formed. */
export function mutateText(text: string, next: () => number): string {
  const tokens = text.split(/(\s+|[()])/).filter((t) => t.trim() !== "");
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const instructions: number[] = [];
  const numbers: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (
      /^[a-z]+[0-9]*\.[a-z_0-9]+$|^(nop|drop|select|return|unreachable|br|br_if|call)$/.test(
        tokens[i]!,
      )
    ) {
      instructions.push(i);
    } else if (/^-?[0-9]+$/.test(tokens[i]!)) {
      numbers.push(i);
    }
  }
  const rounds = 1 + Math.floor(next() * 2);
  for (let r = 0; r < rounds; r++) {
    const roll = next();
    if (roll < 0.35 && instructions.length > 0) {
      tokens[pick(instructions)] = pick(INSTRUCTIONS);
    } else if (roll < 0.6 && instructions.length > 0) {
      const at = pick(instructions);
      tokens[at] = `${pick(INSTRUCTIONS)} ${tokens[at]}`;
    } else if (roll < 0.8 && numbers.length > 0) {
      tokens[pick(numbers)] = pick(NUMBERS);
    } else if (roll < 0.9) {
      tokens.splice(Math.floor(next() * tokens.length), 1);
    } else if (roll < 0.97) {
      tokens.splice(Math.floor(next() * tokens.length), 0, pick(JUNK));
    } else {
      tokens.length = Math.max(1, Math.floor(next() * tokens.length));
    }
  }
  return tokens.join(" ").replaceAll("( ", "(").replaceAll(" )", ")");
}

/** Arguments for a function type: zeros, or a few interesting values. */
function argumentsFor(params: readonly string[], next: () => number): unknown[] {
  return params.map((type) => {
    const pick = [0, 1, 7, -1, 100_000][Math.floor(next() * 5)]!;
    if (type === "i64") return BigInt(pick);
    if (type === "i32" || type === "f32" || type === "f64") return pick;
    return null;
  });
}

/**
 * Runs `settings.cases` cases through `new WasmRuntime({ execution: { isolation: "inline" } })`.
 *
 * @throws {Error} Naming the case when an outcome is neither a result nor a `WasmError`.
 */
export async function fuzzRuntime(
  settings: FuzzSettings,
  onProgress?: (done: number, tally: RuntimeTally) => void,
): Promise<RuntimeTally> {
  const next = random(settings.seed ^ 0x5a5a5a5a);
  const binaries = corpus(next);
  const tally: RuntimeTally = { rejected: 0, notInstantiated: 0, returned: 0, failed: {} };
  await using runtime = new WasmRuntime({
    execution: { isolation: "inline" },
    resourceLimits: {
      maxExecutionTimeMs: 200,
      maxFuel: 2_000_000,
      maxCallDepth: 200,
      maxMemoryPages: 8,
      maxInstances: 4,
    },
    cache: false,
  });
  const expectWasmError = (error: unknown, what: string): void => {
    if (!(error instanceof WasmError)) {
      throw new Error(`${what} threw something other than a WasmError`, { cause: error });
    }
  };
  for (let i = 0; i < settings.cases; i++) {
    if (onProgress !== undefined && i > 0 && i % 500 === 0) onProgress(i, tally);
    const where = `case ${i} (seed ${settings.seed})`;
    let compiled;
    try {
      if (i % 4 === 3) {
        const base = binaries[Math.floor(next() * binaries.length)]!;
        compiled = await runtime.compile(`fuzz${i}`, mutateBytes(base, next));
      } else if (i % 4 === 0) {
        // A generated program, which runs more often than not.
        const text = randomProgram(next, 3).plain;
        compiled = await runtime.compileWat(
          `fuzz${i}`,
          next() < 0.5 ? text : mutateText(text, next),
        );
      } else {
        const base = WAT_SEEDS[Math.floor(next() * WAT_SEEDS.length)]!;
        compiled = await runtime.compileWat(`fuzz${i}`, mutateText(base, next));
      }
    } catch (error) {
      expectWasmError(error, `${where}: compiling`);
      tally.rejected++;
      continue;
    }
    let plugin;
    try {
      plugin = await runtime.createPlugin(compiled, { name: `fuzz${i}` });
    } catch (error) {
      expectWasmError(error, `${where}: creating the plugin`);
      tally.notInstantiated++;
      continue;
    }
    try {
      for (const item of compiled.exports) {
        if (item.kind !== "function") continue;
        try {
          await plugin.call(item.name, argumentsFor(item.params ?? [], next));
          tally.returned++;
        } catch (error) {
          expectWasmError(error, `${where}: calling "${item.name}"`);
          const kind = (error as WasmError).kind;
          tally.failed[kind] = (tally.failed[kind] ?? 0) + 1;
        }
      }
    } finally {
      await plugin.stop();
    }
  }
  return tally;
}

/**
 * Spec-testsuite values (wast2json encoding) and how to pass them to, and
 * compare them with, what a wasm function returns.
 *
 * Floats and `v128` cannot cross the JS boundary bit-exactly, so calls whose
 * signature has them go through a small wrapper module that loads arguments
 * from and stores results to its memory (see {@linkcode callExact}).
 *
 * @module
 */

/** One value of a command's `args` or `expected`. */
export interface SpecValue {
  type: string;
  value?: string | string[];
  lane_type?: string;
}

const VALUE_TYPE_CODES: Readonly<Record<string, number>> = {
  i32: 0x7f,
  i64: 0x7e,
  f32: 0x7d,
  f64: 0x7c,
  v128: 0x7b,
  funcref: 0x70,
  externref: 0x6f,
};

const NUMERIC = new Set(["i32", "i64", "f32", "f64", "v128"]);
const EXACT_ONLY = new Set(["f32", "f64", "v128"]);

/** Host values standing for `ref.extern N`, one per N per file. */
export class HostRefs {
  #refs = new Map<string, object>();

  /** The host value of `ref.extern n`. */
  get(n: string): object {
    let ref = this.#refs.get(n);
    if (ref === undefined) {
      ref = { externref: n };
      this.#refs.set(n, ref);
    }
    return ref;
  }
}

/** Whether a call with these types needs the exact (memory-based) path. */
export function needsExactCall(types: readonly string[]): boolean {
  return types.some((type) => EXACT_ONLY.has(type));
}

/** Whether the wrapper can express these types. */
export function wrappable(types: readonly string[]): boolean {
  return types.every((type) => VALUE_TYPE_CODES[type] !== undefined);
}

/** Converts an argument for a direct JS call (i32, i64, references). */
export function toJs(arg: SpecValue, refs: HostRefs): unknown {
  const value = arg.value as string;
  switch (arg.type) {
    case "i32":
      return Number(value) | 0;
    case "i64":
      return BigInt.asIntN(64, BigInt(value));
    case "externref":
      return value === "null" ? null : refs.get(value);
    default:
      if (value === "null") return null;
      throw new TypeError(`Cannot pass a ${arg.type} argument directly`);
  }
}

/** Compares a result of a direct JS call with an expected value. */
export function matchesJs(actual: unknown, expected: SpecValue, refs: HostRefs): boolean {
  const value = expected.value as string;
  switch (expected.type) {
    case "i32":
      return typeof actual === "number" && String(actual >>> 0) === value;
    case "i64":
      return typeof actual === "bigint" && String(BigInt.asUintN(64, actual)) === value;
    case "f32":
    case "f64":
      return typeof actual === "number" && matchesFloatNumber(actual, expected.type, value);
    case "externref":
      return value === "null" ? actual === null : actual === refs.get(value);
    default:
      return value === "null" ? actual === null : actual !== null && actual !== undefined;
  }
}

function matchesFloatNumber(actual: number, type: string, value: string): boolean {
  const view = new DataView(new ArrayBuffer(8));
  if (type === "f32") {
    view.setFloat32(0, actual, true);
    return matchesBits(BigInt(view.getUint32(0, true)), 32, value);
  }
  view.setFloat64(0, actual, true);
  return matchesBits(view.getBigUint64(0, true), 64, value);
}

function matchesBits(bits: bigint, width: 32 | 64, value: string): boolean {
  const abs = width === 32 ? 0x7fffffffn : 0x7fffffffffffffffn;
  const canonical = width === 32 ? 0x7fc00000n : 0x7ff8000000000000n;
  if (value === "nan:canonical") return (bits & abs) === canonical;
  if (value === "nan:arithmetic") return (bits & canonical) === canonical;
  return bits === BigInt(value);
}

const LANES: Readonly<Record<string, [count: number, width: number]>> = {
  i8: [16, 1],
  i16: [8, 2],
  i32: [4, 4],
  f32: [4, 4],
  i64: [2, 8],
  f64: [2, 8],
};

function writeValue(view: DataView, at: number, arg: SpecValue): void {
  const value = arg.value!;
  switch (arg.type) {
    case "i32":
    case "f32":
      return view.setUint32(at, Number(value), true);
    case "i64":
    case "f64":
      return view.setBigUint64(at, BigInt(value as string), true);
    case "v128": {
      const [count, width] = LANES[arg.lane_type!]!;
      for (let i = 0; i < count; i++) {
        const lane = (value as string[])[i]!;
        const offset = at + i * width;
        if (width === 1) view.setUint8(offset, Number(lane));
        else if (width === 2) view.setUint16(offset, Number(lane), true);
        else if (width === 4) view.setUint32(offset, Number(lane), true);
        else view.setBigUint64(offset, BigInt(lane), true);
      }
    }
  }
}

function matchesMemory(view: DataView, at: number, expected: SpecValue): boolean {
  const value = expected.value!;
  switch (expected.type) {
    case "i32":
      return String(view.getUint32(at, true)) === value;
    case "i64":
      return String(view.getBigUint64(at, true)) === value;
    case "f32":
      return matchesBits(BigInt(view.getUint32(at, true)), 32, value as string);
    case "f64":
      return matchesBits(view.getBigUint64(at, true), 64, value as string);
    case "v128": {
      const [count, width] = LANES[expected.lane_type!]!;
      for (let i = 0; i < count; i++) {
        const lane = (value as string[])[i]!;
        const offset = at + i * width;
        let bits: bigint;
        if (width === 1) bits = BigInt(view.getUint8(offset));
        else if (width === 2) bits = BigInt(view.getUint16(offset, true));
        else if (width === 4) bits = BigInt(view.getUint32(offset, true));
        else bits = view.getBigUint64(offset, true);
        const type = expected.lane_type!;
        if (type === "f32" || type === "f64") {
          if (!matchesBits(bits, type === "f32" ? 32 : 64, lane)) return false;
        } else if (bits !== BigInt(lane)) {
          return false;
        }
      }
      return true;
    }
    default:
      return false;
  }
}

const RESULTS_AT = 2048;
const LOAD: Readonly<Record<string, number[]>> = {
  i32: [0x28, 2],
  i64: [0x29, 3],
  f32: [0x2a, 2],
  f64: [0x2b, 3],
  v128: [0xfd, 0x00, 4],
};
const STORE: Readonly<Record<string, number[]>> = {
  i32: [0x36, 2],
  i64: [0x37, 3],
  f32: [0x38, 2],
  f64: [0x39, 3],
  v128: [0xfd, 0x0b, 4],
};

function section(id: number, content: number[]): number[] {
  return [id, ...leb(content.length), ...content];
}

function funcType(params: readonly string[], results: readonly string[]): number[] {
  const codes = (types: readonly string[]): number[] => [
    ...leb(types.length),
    ...types.map((type) => VALUE_TYPE_CODES[type]!),
  ];
  return [0x60, ...codes(params), ...codes(results)];
}

/** Builds `(module (import "t" "f" <sig>) (memory 1) (func (export "call") ...))`. */
import { HEADER, leb, sleb } from "../instrument/_wasm.ts";
function wrapperBytes(
  params: readonly string[],
  results: readonly string[],
): Uint8Array<ArrayBuffer> {
  const refParams = params.filter((type) => !NUMERIC.has(type));
  const refResults = results.filter((type) => !NUMERIC.has(type));
  const body: number[] = [...leb(results.length)];
  for (const type of results) body.push(1, VALUE_TYPE_CODES[type]!);
  let refIndex = 0;
  params.forEach((type, i) => {
    if (NUMERIC.has(type)) body.push(0x41, ...sleb(16 * i), ...LOAD[type]!, 0);
    else body.push(0x20, ...leb(refIndex++));
  });
  body.push(0x10, 0);
  for (let i = results.length - 1; i >= 0; i--) body.push(0x21, ...leb(refParams.length + i));
  results.forEach((type, i) => {
    if (!NUMERIC.has(type)) return;
    body.push(0x41, ...sleb(RESULTS_AT + 16 * i), 0x20, ...leb(refParams.length + i));
    body.push(...STORE[type]!, 0);
  });
  results.forEach((type, i) => {
    if (!NUMERIC.has(type)) body.push(0x20, ...leb(refParams.length + i));
  });
  body.push(0x0b);
  const name = (s: string): number[] => [s.length, ...[...s].map((c) => c.charCodeAt(0))];
  return new Uint8Array([
    ...HEADER,
    ...section(1, [2, ...funcType(params, results), ...funcType(refParams, refResults)]),
    ...section(2, [1, ...name("t"), ...name("f"), 0x00, 0x00]),
    ...section(3, [1, 1]),
    ...section(5, [1, 0x00, 0x01]),
    ...section(7, [2, ...name("call"), 0x00, 0x01, ...name("mem"), 0x02, 0x00]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

const wrapperModules = new Map<string, WebAssembly.Module>();
const wrappers = new WeakMap<object, Map<string, WebAssembly.Instance>>();

/** A result of {@linkcode callExact}: a number held in the wrapper's memory, or a reference. */
export type ExactResult =
  | { readonly view: DataView; readonly at: number }
  | { readonly ref: unknown };

/**
 * Calls `target` with bit-exact arguments through a wrapper module, which
 * leaves numeric results in its memory.
 */
export function callExact(
  target: CallableFunction,
  args: readonly SpecValue[],
  resultTypes: readonly string[],
  refs: HostRefs,
): ExactResult[] {
  const params = args.map((arg) => arg.type);
  const key = `${params.join(",")}->${resultTypes.join(",")}`;
  let perTarget = wrappers.get(target);
  if (perTarget === undefined) {
    perTarget = new Map();
    wrappers.set(target, perTarget);
  }
  let instance = perTarget.get(key);
  if (instance === undefined) {
    let module = wrapperModules.get(key);
    if (module === undefined) {
      module = new WebAssembly.Module(wrapperBytes(params, resultTypes));
      wrapperModules.set(key, module);
    }
    instance = new WebAssembly.Instance(module, { t: { f: target } });
    perTarget.set(key, instance);
  }
  const memory = instance.exports.mem as WebAssembly.Memory;
  const view = new DataView(memory.buffer);
  const refArgs: unknown[] = [];
  args.forEach((arg, i) => {
    if (NUMERIC.has(arg.type)) writeValue(view, 16 * i, arg);
    else refArgs.push(toJs(arg, refs));
  });
  const returned = (instance.exports.call as (...a: unknown[]) => unknown)(...refArgs);
  const refCount = resultTypes.filter((type) => !NUMERIC.has(type)).length;
  const refValues = refCount === 0 ? [] : refCount === 1 ? [returned] : returned as unknown[];
  let r = 0;
  return resultTypes.map((type, i) =>
    NUMERIC.has(type) ? { view, at: RESULTS_AT + 16 * i } : { ref: refValues[r++] }
  );
}

/** Compares a result of {@linkcode callExact} with an expected value. */
export function matchesExact(actual: ExactResult, expected: SpecValue, refs: HostRefs): boolean {
  if ("ref" in actual) return matchesJs(actual.ref, expected, refs);
  return matchesMemory(actual.view, actual.at, expected);
}

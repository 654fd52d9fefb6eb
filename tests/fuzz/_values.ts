/**
 * Hostile JavaScript values for the API fuzzer: call arguments of the wrong
 * arity and types, call options with bad budgets and signals, byte inputs,
 * JSON-ish values that do not serialize, and memory offsets. Configs and
 * linkers are in `_configs.ts`.
 *
 * Each generator says whether what it drew is a JS-level invalid argument
 * (`jsInvalid`, see `_property.ts`): outside the parameter's TypeScript type
 * or range, where a `TypeError`/`RangeError` is the documented answer.
 *
 * @module
 */

import { below, type Next, pick } from "./_mutate.ts";

/** A drawn value and whether it is a JS-level invalid argument. */
export interface Drawn<T> {
  readonly value: T;
  readonly jsInvalid: boolean;
}

/** A value that fits its parameter. */
export function valid<T>(value: T): Drawn<T> {
  return { value, jsInvalid: false };
}

/** A JS-level invalid value: a `TypeError`/`RangeError` is a documented answer. */
export function invalid<T>(value: unknown): Drawn<T> {
  return { value: value as T, jsInvalid: true };
}

function cyclic(): unknown {
  const value: Record<string, unknown> = { name: "cyclic" };
  value.self = value;
  return value;
}

/** Numbers at the edges of the wasm integer types, and a few ordinary ones. */
const EDGE_INTEGERS = [
  0,
  1,
  -1,
  7,
  255,
  1024,
  65_535,
  65_536,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32 - 1,
];

/** Makers of values of every JS type, most of them wrong for any wasm parameter. */
const ANY_VALUES: readonly (() => unknown)[] = [
  () => "",
  () => "12",
  () => ({}),
  () => ({ valueOf: () => 5 }),
  () => undefined,
  () => null,
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => -0,
  () => 1.5,
  () => 2 ** 32,
  () => 2 ** 53,
  () => -(2 ** 31) - 1,
  () => 5n,
  () => 2n ** 64n,
  () => -(2n ** 63n) - 1n,
  () => 2n ** 1000n,
  () => true,
  () => Symbol("fuzz"),
  () => () => 1,
  () => [1, 2],
  cyclic,
  () => new Date(0),
  () => new Uint8Array([1, 2, 3]),
  // Larger than any message buffer between the host and a worker.
  () => new Array(100_000).fill(1),
];

/** A value of any JS type, most often wrong for any wasm parameter, or an edge integer. */
export function anyValue(next: Next): unknown {
  return next() < 0.05 ? pick(EDGE_INTEGERS, next) : pick(ANY_VALUES, next)();
}

/** A value of wasm type `type` as the API documents it, edges included. */
export function wellTyped(type: string, next: Next): unknown {
  switch (type) {
    case "i32":
      return pick(EDGE_INTEGERS, next);
    case "i64":
      return next() < 0.3
        ? pick(EDGE_INTEGERS, next)
        : pick([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 10n], next);
    case "f32":
    case "f64":
      return pick([0, -0, 1.5, -2, NaN, Infinity, -Infinity, 1e300, 3.4e38, 2 ** -149], next);
    case "externref":
      return anyValue(next);
    default:
      return null;
  }
}

/**
 * Arguments for a function of `params`: well-typed ones, one wrong value,
 * the wrong count, all wrong, or not an array at all. The wasm signature
 * decides these: they are never `jsInvalid` (a `TypeMismatchError` is due).
 */
export function callArguments(params: readonly string[], next: Next): unknown {
  const typed = (): unknown[] => params.map((type) => wellTyped(type, next));
  const roll = next();
  if (roll < 0.55) return typed();
  if (roll < 0.7) {
    const args = typed();
    if (args.length > 0) args[below(args.length, next)] = anyValue(next);
    return args;
  }
  if (roll < 0.8) {
    const args = typed();
    if (next() < 0.5 && args.length > 0) args.pop();
    else args.push(wellTyped(pick(["i32", "i64", "f64"], next), next));
    return args;
  }
  if (roll < 0.9) return params.map(() => anyValue(next));
  return pick<unknown>([
    undefined,
    null,
    "12",
    5,
    { length: params.length, 0: 1, 1: 2 },
    new Uint32Array(params.length),
    new Set([1, 2]),
  ], next);
}

/** Call options, their `jsInvalid`, the signal they carry, and a cleanup. */
export interface DrawnOptions extends Drawn<unknown> {
  readonly signal?: AbortSignal;
  /** Clears the timer of a signal that aborts later. */
  readonly dispose: () => void;
}

/**
 * Options for a call: mostly none, else tight or edge budgets, an aborted
 * signal or one that aborts during the call, or bad values.
 */
export function callOptions(next: Next): DrawnOptions {
  const none = (): void => {};
  const roll = next();
  if (roll < 0.6) return { ...valid(undefined), dispose: none };
  if (roll < 0.7) {
    return {
      ...valid(pick([{}, { timeoutMs: 1 }, { timeoutMs: 25 }, { timeoutMs: Infinity }], next)),
      dispose: none,
    };
  }
  if (roll < 0.78) {
    return { ...valid({ fuel: pick([1, 10, 1000, 2 ** 53 - 1], next) }), dispose: none };
  }
  if (roll < 0.86) {
    const controller = new AbortController();
    const reason = pick<unknown>([undefined, "stop", 42, new Error("fuzz abort"), null], next);
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (next() < 0.5) controller.abort(reason);
    else timer = setTimeout(() => controller.abort(reason), below(4, next));
    return {
      ...valid({ signal: controller.signal }),
      signal: controller.signal,
      dispose: () => clearTimeout(timer),
    };
  }
  return {
    ...invalid(pick<unknown>([
      null,
      { timeoutMs: 0 },
      { timeoutMs: -1 },
      { timeoutMs: NaN },
      { timeoutMs: "5" },
      { fuel: 0 },
      { fuel: 1.5 },
      { fuel: NaN },
      { fuel: 2 ** 53 },
      { fuel: 5n },
      { signal: {} },
      { signal: "abort" },
      { signal: null },
    ], next)),
    dispose: none,
  };
}

/** Bytes for the bytes ABI: empty, small, a page or more; sometimes not a `Uint8Array`. */
export function byteInput(next: Next): Drawn<Uint8Array> {
  const roll = next();
  if (roll < 0.9) {
    const length = pick([0, 1, 3, 16, 100, 1024, 4096, 65_536, 70_000], next);
    const bytes = new Uint8Array(length);
    for (let i = 0; i < Math.min(length, 64); i++) bytes[i] = below(256, next);
    if (roll < 0.05) {
      // A view into a larger buffer, and a view of shared memory: both are Uint8Arrays.
      const shared = new Uint8Array(new SharedArrayBuffer(length + 8));
      shared.set(bytes, 8);
      return valid(shared.subarray(8));
    }
    return valid(bytes);
  }
  return invalid(pick<unknown>([
    "text",
    [1, 2, 3],
    new ArrayBuffer(4),
    new Uint16Array(2),
    new DataView(new ArrayBuffer(2)),
    null,
    undefined,
  ], next));
}

/** A random JSON value, nested up to `depth`. */
function json(next: Next, depth: number): unknown {
  const roll = next();
  if (depth <= 0 || roll < 0.5) {
    return pick<unknown>(
      [0, -1.5, 1e308, "", "text", "\u00e9\u{1f600}", "\ud800", true, false, null],
      next,
    );
  }
  if (roll < 0.75) return Array.from({ length: below(4, next) }, () => json(next, depth - 1));
  const object: Record<string, unknown> = {};
  for (let i = below(4, next); i > 0; i--) {
    object[pick(["a", "b", "", "__proto__"], next)] = json(next, depth - 1);
  }
  return object;
}

/**
 * A value for `callJson`: JSON, or something JSON cannot carry (cyclic
 * objects, bigints, functions, symbols, `undefined`, a throwing `toJSON` or
 * getter, nesting deep enough to overflow the stack). Any value fits its
 * `unknown` parameter, so these are never `jsInvalid`: a `TypeMismatchError`
 * is documented.
 */
export function jsonValue(next: Next): unknown {
  return next() < 0.6 ? json(next, 3) : pick(UNSERIALIZABLE, next)();
}

/** Makers of values `JSON.stringify` refuses, throws on, or turns into nothing. */
const UNSERIALIZABLE: readonly (() => unknown)[] = [
  cyclic,
  () => ({ big: 1n }),
  () => () => 1,
  () => Symbol("json"),
  () => undefined,
  () => ({ toJSON: () => undefined }),
  () => ({
    toJSON() {
      throw new Error("toJSON throws");
    },
  }),
  () => ({
    get field() {
      throw new Error("getter throws");
    },
  }),
  () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    return deep;
  },
];

/**
 * An offset or length for `readMemory`/`writeMemory`: in range, at the end
 * of `memoryBytes`, or out of range as a number (negative, NaN, 2^32,
 * fractional: a `MemoryOutOfBoundsError` is documented), or not a number
 * (`jsInvalid`).
 */
export function memoryIndex(memoryBytes: number, next: Next): Drawn<number> {
  const roll = next();
  if (roll < 0.9) {
    return valid(pick([
      0,
      8,
      memoryBytes - 8,
      memoryBytes,
      memoryBytes + 1,
      65_536,
      2 ** 32,
      2 ** 32 - 1,
      -1,
      -0,
      NaN,
      Infinity,
      1.5,
      2 ** 53,
      Number.MAX_VALUE,
    ], next));
  }
  return invalid(pick<unknown>(["0", null, undefined, {}, Symbol("offset"), 0n, [0]], next));
}

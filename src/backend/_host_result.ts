/**
 * Checks what an application's linker function returns against the wasm
 * type of its import, so that a value wasm would convert without a word
 * (`"abc"` or `undefined` read as 0 for an i32, `3.7` as 3) fails the call
 * instead, as a `HostFunctionError` caused by a `TypeError`.
 *
 * @module
 */

import { describeValue } from "../common/mod.ts";
import type { HostCallable } from "../host/mod.ts";
import type { FuncType } from "../instrument/mod.ts";

const I32_MIN = -(2 ** 31);
const I32_END = 2 ** 32;
const I64_MIN = -(2n ** 63n);
const I64_END = 2n ** 64n;

/**
 * Why `value` cannot be a wasm value of `type`, or `null` when it can.
 * i32 takes an integer in [-2^31, 2^32) (signed or unsigned) or a boolean,
 * i64 a bigint in [-2^63, 2^64), f32/f64 any number; an `externref` that
 * `crosses` to a worker what its channel carries as itself (see
 * {@linkcode crossesAsItself}); a `funcref` null or (inline) a function;
 * other reference and vector types are left to the engine (and the
 * channel).
 */
function mismatch(type: string, value: unknown, crosses: boolean): string | null {
  switch (type) {
    case "externref":
      return !crosses || crossesAsItself(value)
        ? null
        : "a number, a bigint of 64 bits, a well-formed string, null or undefined: what crosses to the plugin's worker";
    case "i32":
      if (typeof value === "boolean") return null;
      return typeof value === "number" && Number.isInteger(value) && value >= I32_MIN &&
          value < I32_END
        ? null
        : "an integer in [-2^31, 2^32)";
    case "i64":
      return typeof value === "bigint" && value >= I64_MIN && value < I64_END
        ? null
        : "a bigint in [-2^63, 2^64)";
    case "f32":
    case "f64":
      return typeof value === "number" ? null : "a number";
    case "funcref":
      // Inline the engine takes a function the module exported (and refuses others itself).
      if (crosses) return crossingReference(type, value);
      return value === null || typeof value === "function"
        ? null
        : "null or a function a module exported";
    default:
      return crosses ? crossingReference(type, value) : null;
  }
}

/**
 * For a worker: why `value` cannot cross as a result of the reference type
 * `type` (an external one carries what the channel carries, as `externref`;
 * of any other, only null), or `null` when it can or `type` is no reference
 * (the engine's then, as inline, where every reference is).
 */
function crossingReference(type: string, value: unknown): string | null {
  if (!type.endsWith("ref") && !type.startsWith("(ref")) return null;
  if (type.includes("extern")) {
    return crossesAsItself(value)
      ? null
      : "a number, a bigint of 64 bits, a well-formed string or null: what crosses to the plugin's worker";
  }
  const nullable = type.endsWith("ref") || type.startsWith("(ref null");
  if (value === null && nullable) return null;
  return nullable
    ? "null: a reference cannot cross to the plugin's worker"
    : "a reference, which cannot cross to the plugin's worker (this import can return nothing there)";
}

/**
 * Whether a worker's channel carries `value` as itself: a number, a bigint
 * of 64 bits (signed or unsigned), a well-formed string (the channel speaks
 * UTF-8: a lone surrogate would become U+FFFD), `null` or `undefined`.
 */
export function crossesAsItself(value: unknown): boolean {
  switch (typeof value) {
    case "number":
    case "undefined":
      return true;
    case "string":
      return value.isWellFormed();
    case "bigint":
      return value >= I64_MIN && value < I64_END;
    default:
      return value === null;
  }
}

/** The arrays of results {@linkcode checkResult} made for a multi-value import. */
const manyResults = new WeakSet<readonly unknown[]>();

/**
 * Whether `value` is the results of a multi-value linker function, as its
 * check returned them (a single `externref` result may be an array too).
 */
export function isManyResults(value: unknown): boolean {
  return Array.isArray(value) && manyResults.has(value);
}

function checkResult(results: readonly string[], value: unknown, crosses: boolean): unknown {
  // Nothing to return: whatever it gave is dropped here, not converted or sent anywhere.
  if (results.length === 0) return undefined;
  if (results.length === 1) {
    const expected = mismatch(results[0]!, value, crosses);
    if (expected !== null) {
      throw new TypeError(
        `It returned ${describeValue(value)} for its ${results[0]} result, which needs ${expected}`,
      );
    }
    return value;
  }
  if (!Array.isArray(value) || value.length !== results.length) {
    throw new TypeError(
      `It returned ${
        Array.isArray(value) ? `an array of ${value.length}` : describeValue(value)
      } for its ${results.length} results (${
        results.join(", ")
      }), which need an array of ${results.length} values`,
    );
  }
  // A copy, each value read once: what was checked is what the guest gets.
  const values = Array.from(value);
  results.forEach((type, i) => {
    const expected = mismatch(type, values[i], crosses);
    if (expected !== null) {
      throw new TypeError(
        `It returned ${
          describeValue(values[i])
        } for result ${i} (${type}), which needs ${expected}`,
      );
    }
  });
  manyResults.add(values);
  return values;
}

/** True for a promise or any other object with a `then` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Wraps a linker function so that its result (or the value its promise
 * resolves to) is checked against `type`, and against what crosses to a
 * worker when the plugin's guest runs in one (`crosses`); a mismatch is a
 * `TypeError`, which the caller's host-function guard turns into a
 * `HostFunctionError`.
 */
export function checkedLinkerFunction(
  fn: HostCallable,
  type: FuncType,
  crosses: boolean,
): HostCallable {
  const { results } = type;
  return (...args) => {
    const value = fn(...args);
    if (isThenable(value)) {
      return Promise.resolve(value).then((v) => checkResult(results, v, crosses));
    }
    return checkResult(results, value, crosses);
  };
}

/**
 * Checks JS arguments against a wasm function signature before a call, and
 * results after it.
 *
 * @module
 */

import { TypeMismatchError } from "../errors.ts";
import { describeValue } from "../common/mod.ts";

/** A function's parameter and result types, as strings like `"i32"`. */
export interface Signature {
  readonly params: readonly string[];
  readonly results: readonly string[];
}

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;

/**
 * Validates and converts `args` for a call of `name`; returns the values to
 * pass to the export (i64 numbers become bigints), in a new array.
 *
 * @throws {TypeMismatchError} Naming the first argument that does not fit.
 */
export function checkArguments(
  name: string,
  signature: Signature,
  args: readonly unknown[],
): unknown[] {
  if (!Array.isArray(args)) {
    throw new TypeMismatchError(
      `Cannot call "${name}": expected an array of arguments, received ${describeValue(args)}`,
    );
  }
  const { params } = signature;
  if (args.length !== params.length) {
    throw new TypeMismatchError(
      `Cannot call "${name}": expected ${params.length} argument${
        params.length === 1 ? "" : "s"
      }, received ${args.length}`,
    );
  }
  // A copy, each value read once: what was checked is what runs, whatever the caller's array
  // does later (a getter, or a change while the call waits for its turn).
  const converted: unknown[] = new Array(params.length);
  for (let i = 0; i < params.length; i++) {
    const type = params[i]!;
    const value = args[i];
    const result = convertArgument(type, value);
    if (result === INVALID) {
      throw new TypeMismatchError(
        `Cannot call "${name}": parameter ${i} expects ${expectation(type)}, received ${
          describeValue(value)
        }`,
      );
    }
    converted[i] = result;
  }
  return converted;
}

const INVALID = Symbol("invalid");

function convertArgument(type: string, value: unknown): unknown {
  switch (type) {
    case "i32":
      return typeof value === "number" && Number.isInteger(value) && value >= -0x8000_0000 &&
          value <= 0xffff_ffff
        ? value
        : INVALID;
    case "i64":
      if (typeof value === "bigint") return value >= I64_MIN && value <= U64_MAX ? value : INVALID;
      return typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : INVALID;
    case "f32":
    case "f64":
      return typeof value === "number" ? value : INVALID;
    case "v128":
      return INVALID;
    case "funcref":
      return value === null || typeof value === "function" ? value : INVALID;
    default:
      return value;
  }
}

function expectation(type: string): string {
  switch (type) {
    case "i32":
      return "an i32 (an integer from -2^31 to 2^32-1)";
    case "i64":
      return "an i64 (a bigint, or a safe integer)";
    case "f32":
    case "f64":
      return `an ${type} (a number)`;
    case "v128":
      return "a v128, which cannot be passed from JavaScript";
    default:
      return `a ${type}`;
  }
}

/**
 * Instantiates instrumented test modules and drives their limits.
 *
 * @module
 */

import {
  type CallBudget,
  InstanceLimits,
  instrument,
  type InstrumentOptions,
  type InstrumentResult,
} from "../../src/instrument/instrument.ts";
import { wat } from "./_wat.ts";
import { decodeBody } from "../../src/instrument/_code.ts";
import { type FuncType, parseModule } from "../../src/instrument/_module.ts";

/** An instance of an instrumented module with its limits. */
export interface Instrumented {
  readonly result: InstrumentResult;
  readonly instance: WebAssembly.Instance;
  readonly limits: InstanceLimits;
  /** Calls export `name` after resetting the limits to `budget`. */
  call(name: string, args?: unknown[], budget?: CallBudget): unknown;
}

/** Instruments `source` (WAT) with `options` and instantiates it. */
export function load(
  source: string,
  options: InstrumentOptions,
  imports: WebAssembly.Imports = {},
): Instrumented {
  const result = instrument(wat(source), options);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes), imports);
  const limits = new InstanceLimits(instance, result);
  return {
    result,
    instance,
    limits,
    call(name, args = [], budget = {}): unknown {
      limits.prepare(budget);
      return (instance.exports[name] as (...a: unknown[]) => unknown)(...args);
    },
  };
}

/**
 * Counts the instructions with opcode `op` (a byte, or `prefix << 24 | sub`)
 * in the code of defined function `index` of `bytes`: its body, and its
 * variant's body when the internal calling convention split it into a
 * wrapper and a variant (see `src/instrument/_internal_calls.ts`).
 */
export function countOps(bytes: Uint8Array, index: number, op: number): number {
  const info = parseModule(bytes);
  const imported = info.imports.filter((entry) => entry.kind === "function").length;
  const count = (f: number): number => {
    const code = info.code[f]!;
    return decodeBody(bytes, code.bodyStart, code.end).instructions.filter((i) => i.op === op)
      .length;
  };
  const variant = variantOf(bytes, index);
  return count(index) + (variant === null ? 0 : count(variant - imported));
}

/**
 * The index of the variant that the body of defined function `index` wraps
 * (it ends with `call variant`, `drop` or `global.set` of the fuel, `end`, and the variant returns one
 * more value, the fuel), or `null` when it is not a wrapper.
 */
export function variantOf(bytes: Uint8Array, index: number): number | null {
  const info = parseModule(bytes);
  const code = info.code[index]!;
  const { instructions } = decodeBody(bytes, code.bodyStart, code.end);
  // The call of the variant, then a drop of the fuel or its store in the global.
  const [call, last] = instructions.slice(-3);
  if (call?.op !== 0x10 || (last?.op !== 0x1a && last?.op !== 0x24)) return null;
  let callee = 0;
  for (let at = call.start + 1, shift = 0; at < call.end; at++, shift += 7) {
    callee += (bytes[at]! & 0x7f) * 2 ** shift;
  }
  const imported = info.imports.filter((entry) => entry.kind === "function").length;
  const type = (f: number): FuncType => info.types[info.functions[f - imported]!] as FuncType;
  // Variants are appended after every function of the original module.
  if (callee - imported <= index || callee - imported >= info.code.length) return null;
  const own = type(imported + index);
  const wrapped = type(callee);
  const isVariant = wrapped.results.length === own.results.length + 1 &&
    wrapped.results.at(-1) === "i64" && wrapped.params.slice(0, own.params.length).join() ===
      own.params.join();
  return isVariant ? callee : null;
}

/**
 * WAT of a small non-recursive function (`$helper`) and an exported loop that
 * calls it (`loop_helper(n)` returns `n`), for tests of what calls to small
 * functions cost.
 */
export const LOOP_HELPER = `(func $helper (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func (export "loop_helper") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (call $helper (local.get $acc)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    local.get $acc)`;

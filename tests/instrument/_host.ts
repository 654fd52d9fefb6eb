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
import { parseModule } from "../../src/instrument/_module.ts";

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
 * in the body of defined function `index` of `bytes`.
 */
export function countOps(bytes: Uint8Array, index: number, op: number): number {
  const code = parseModule(bytes).code[index]!;
  return decodeBody(bytes, code.bodyStart, code.end).instructions.filter((i) => i.op === op)
    .length;
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

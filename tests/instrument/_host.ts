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

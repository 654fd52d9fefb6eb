/**
 * The smallest plugin the call-overhead benchmarks call: `add(a, b)`, in an
 * inline runtime with no fuel, no deadline checks and no depth counter, so
 * what is measured is the call path itself.
 *
 * @module
 */

import { type RuntimeConfig, WasmRuntime } from "../mod.ts";

/** `add(a: i32, b: i32) -> i32`. */
export const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';

/** An inline runtime that instruments nothing. */
export function bareInlineRuntime(): WasmRuntime {
  const config: RuntimeConfig = {
    execution: { isolation: "inline", fuelMetering: false, epochInterruption: false },
    resourceLimits: { maxCallDepth: Infinity },
  };
  return new WasmRuntime(config);
}

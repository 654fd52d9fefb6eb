/**
 * Entry module of `src/metering/`: other folders reach its internal (`_`)
 * files only through it.
 *
 * The host side of instrumented code, apart from the instrumenter so that a
 * plugin's worker loads only this: `InstanceLimits` arms each call's fuel,
 * depth and deadline and reads back what it used and which limit stopped
 * it; the contract (export names, trap reasons, the metadata the
 * instrumenter returns) is shared with `src/instrument/`.
 *
 * @module
 */

export {
  FUEL_LEFT_EXPORT,
  MEMORY_BYTES_EXPORT,
  PREPARE_EXPORT,
  STACK_BASE_EXPORT,
  STACK_POINTER_EXPORT,
  TrapReason,
} from "./_contract.ts";
export { createDeadlineHook, InstanceLimits } from "./_instance_limits.ts";
export type { CallBudget, InstanceLimitsOptions } from "./_instance_limits.ts";
export type {
  DeadlinePacing,
  InstrumentMetadata,
  MemoryStateExport,
  StateExports,
} from "./_metadata.ts";

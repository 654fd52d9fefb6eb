/**
 * Entry module of `src/instrument/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * The instrumenter: reads a WebAssembly binary, rewrites every function so
 * fuel, call depth, deadlines and memory growth are enforced by the guest
 * code itself, and checks the engine's totals before compiling.
 *
 * @module
 */

export { BinaryFormatError } from "./_bytes.ts";
export { UnboundedThrowError } from "./_deadline.ts";
export { EngineLimitError } from "./_engine_limits.ts";
export { clampLimits } from "./_limits.ts";
export type { ClampResult } from "./_limits.ts";
export {
  describeExports,
  describeImports,
  indexSpaceSizes,
  listMemories,
  listTables,
  parseModule,
} from "./_module.ts";
export type {
  CustomSection,
  FuncType,
  ImportEntry,
  Limits,
  ModuleInfo,
  TableType,
  TypeEntry,
} from "./_module.ts";
export { enforceTotals } from "./_totals.ts";
export type { TotalsOptions } from "./_totals.ts";
export { instrument, instrumentSteps, RESERVED_EXPORT_PREFIX } from "./instrument.ts";
export type { DeadlineMode, InstrumentMetadata, InstrumentResult } from "./instrument.ts";

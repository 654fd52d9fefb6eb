/**
 * Entry module of `src/backend/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * The backends a plugin's calls run on, behind one contract.
 *
 * `PluginBackend` (`_backend.ts`) is what `WasmPlugin` calls; the inline
 * backend (`_inline_backend.ts`) runs a `PluginInstance` (`_instance.ts`) on
 * the caller's thread, the worker backend (`../worker/`) runs the same
 * instance in a Deno Worker. An `InstanceSpec` (`_instance_spec.ts`) is the
 * one serializable description of an instance both build from; the import
 * plan (`_import_plan.ts`) wires host functions, WASI and linked imports.
 * A call's budget (`_call_budget.ts`) is resolved once, by the plugin, and
 * watched where the call waits.
 *
 * @module
 */

export type { AheadCall, BytesCall, CommandResult, PluginBackend } from "./_backend.ts";
export { CallWatch, resolveCallBudget } from "./_call_budget.ts";
export { commandOutputOf, withCommandOutput } from "./_command_output.ts";
export type { CommandOutput } from "./_command_output.ts";
export type { CallBudget, CallWatchOptions, PluginBudget } from "./_call_budget.ts";
export { planImports } from "./_import_plan.ts";
export { crossesAsItself, isManyResults } from "./_host_result.ts";
export type { PlannedImports } from "./_import_plan.ts";
export { createInlineBackend } from "./_inline_backend.ts";
export { NAN_GLOBAL, PluginInstance, START_NOT_READ } from "./_instance.ts";
export { describeInstance, startBudgetOf } from "./_instance_spec.ts";
export type { BackendParts, InstanceSpec, ParkedState, PluginHostSide } from "./_instance_spec.ts";
export { internalOptionsOf } from "./_internal_options.ts";
export type { InternalOptions } from "./_internal_options.ts";

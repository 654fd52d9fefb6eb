/**
 * Entry module of `src/host/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * The host side of a plugin: the host functions a guest imports (`log`,
 * `get_config`, `send_message`, `call_tool`), the services they reach, the
 * guest-memory view they read and write through, and the bookkeeping of the
 * host call in progress (its scope, for re-entrancy checks, and its timing).
 *
 * @module
 */

export {
  builtinCapability,
  builtinType,
  createBuiltin,
  createLogBudget,
  guardHostFunction,
  HOST_ERROR_RECORDED,
  isAsyncBuiltin,
  isBuiltin,
  reportDroppedLogs,
} from "./_env.ts";
export type { ErrorSlot, HostCallable, LogBudget } from "./_env.ts";
export { findExportedMemory, GuestMemory } from "./_guest_memory.ts";
export { assertNotInHostCallOf, isInHostCallOf, runInHostCall } from "./_host_call_scope.ts";
export { denoGrants } from "./_deno_permission.ts";
export { setTracingCheck, takeHostCalls, timedHostFunction } from "./_host_call_timing.ts";
export type { PendingHostCall } from "./_host_call_timing.ts";
export { createHostServices } from "./_services.ts";
export type { HostEnvironment, HostServices, ServiceName } from "./_services.ts";

/**
 * The names and codes instrumented code and the host agree on: the exports
 * the instrumenter adds for the host to call, and the reasons its checks
 * record before they trap. The instrumenter writes them into modules; the
 * host (`InstanceLimits`) reads them, without loading the instrumenter.
 *
 * @module
 */

/** Export name of the `[f64 i32] -> []` function that arms a call. */
export const PREPARE_EXPORT = "__wasmplug_prepare";
/** Export name of the `[] -> [f64]` function that returns the fuel left. */
export const FUEL_LEFT_EXPORT = "__wasmplug_fuel_left";
/**
 * Export name of the `[] -> [i64]` function returning the bytes of all the
 * plugin's memories (added by the totals pass to modules with several).
 */
export const MEMORY_BYTES_EXPORT = "__wasmplug_total_memory_bytes";

/**
 * Export name of the guest's stack pointer (an `i32` global), when the
 * instrumenter found one: the global that function prologues lower
 * (`global.get`, `i32.const`, `i32.sub`), as LLVM's and AssemblyScript's do.
 * A call that fails unwinds the guest without its epilogues, so the host
 * puts it back (see `InstanceLimits.unwind`).
 */
export const STACK_POINTER_EXPORT = "__wasmplug_stack_pointer";
/** Export name of the `i32` global the prepare function keeps the stack pointer in, as a call begins. */
export const STACK_BASE_EXPORT = "__wasmplug_stack_base";

/** Values of the trap-reason global after a call. */
export const TrapReason = {
  /** No limit tripped; a trap, if any, is the guest's own. */
  None: 0,
  /** The fuel budget ran out. */
  Fuel: 1,
  /** The call depth limit was exceeded. */
  CallDepth: 2,
  /** The deadline passed, or the host asked the call to stop. */
  Deadline: 3,
} as const;

/** One of the {@linkcode TrapReason} values. */
export type TrapReason = typeof TrapReason[keyof typeof TrapReason];

/**
 * The call-depth pass: bounds how many frames of recursive functions can be
 * live.
 *
 * What is counted: the frames of functions that can take part in recursion,
 * those on a cycle of the call graph of `_call_graph.ts` (which sends every
 * call through an import, a table or a reference to any function the outside
 * can reach). Other functions cannot recurse, so between two counted frames
 * at most one chain of distinct uncounted functions can be live, and they
 * cost nothing: the limit bounds every unbounded recursion, including
 * recursion through `call_indirect`, `call_ref` or the host, while a
 * non-recursive helper called in a hot loop pays nothing.
 *
 * An exported mutable `i32` global holds the remaining depth. A counted
 * function reads it on entry, subtracts one into a local of its own and traps
 * with {@linkcode TrapReason.CallDepth} when the result is negative. Before
 * every call that can reach counted code it stores its local back into the
 * global, so the callee starts from the caller's depth; before a tail call it
 * stores its local plus one, because the callee replaces its frame. An
 * uncounted function that can reach counted code keeps the value it found on
 * entry in its local and stores it back before such calls, since a counted
 * callee leaves the global lowered when it returns.
 *
 * Nothing runs on function exit, which keeps every exit path correct without
 * rewriting it: `return`, branches to the function label, tail calls, and
 * exceptions unwinding any number of frames (the frame that catches restores
 * the right value at its next call). Host functions calling back into the
 * module see the depth of the wasm call site that called them. The host must
 * write the limit into the global before each top-level call, since a trap
 * leaves it at whatever the deepest frame stored.
 *
 * With fuel on, functions called directly pass their depth in a parameter
 * instead (see `_internal_calls.ts`): the caller checks that one more counted
 * frame fits and passes the callee its depth already taken, and only calls of
 * imports, tables, references and functions without a variant go through the
 * global, as above.
 *
 * @module
 */

import { type CodeWriter, emitGlobalToLocal, emitLocalToGlobal } from "./_code.ts";
import { emitTrapIf, TrapReason, type TrapSlots } from "./_trap.ts";

/** Where the depth check keeps its state. */
export interface DepthSlots extends TrapSlots {
  /** Index of the remaining-depth `i32` global. */
  readonly depthGlobal: number;
}

/**
 * Writes the entry check of a counted function.
 *
 * @param out Where to write.
 * @param slots The globals the check uses.
 * @param local Index of the function's `i32` depth local.
 */
export function emitDepthEntry(out: CodeWriter, slots: DepthSlots, local: number): void {
  out.u8(0x23); // global.get depth
  out.u32(slots.depthGlobal);
  out.u8(0x41); // i32.const 1
  out.u8(0x01);
  out.u8(0x6b); // i32.sub
  out.u8(0x22); // local.tee depth local
  out.u32(local);
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x48); // i32.lt_s
  emitTrapIf(out, TrapReason.CallDepth, slots);
}

/** Writes the entry of an uncounted function that calls counted code: it keeps the depth it was given. */
export function emitDepthKeep(out: CodeWriter, slots: DepthSlots, local: number): void {
  emitGlobalToLocal(out, slots.depthGlobal, local);
}

/** Writes the store that precedes a call (and a tail call of an uncounted function). */
export function emitDepthStore(out: CodeWriter, slots: DepthSlots, local: number): void {
  emitLocalToGlobal(out, local, slots.depthGlobal);
}

/** Writes the store that precedes a tail call of a counted function. */
export function emitDepthTailStore(out: CodeWriter, slots: DepthSlots, local: number): void {
  out.u8(0x20); // local.get
  out.u32(local);
  out.u8(0x41); // i32.const 1
  out.u8(0x01);
  out.u8(0x6a); // i32.add
  out.u8(0x24); // global.set depth
  out.u32(slots.depthGlobal);
}

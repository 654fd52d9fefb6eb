/**
 * The call-depth pass: bounds how many wasm frames of the module can be live.
 *
 * An exported mutable `i32` global holds the remaining depth. Each function
 * reads it on entry, subtracts one into a local of its own and traps with
 * {@linkcode TrapReason.CallDepth} when the result is negative. Before every
 * call the function stores its local back into the global, so the callee
 * starts from the caller's depth; before a tail call it stores its local plus
 * one, because the callee replaces its frame.
 *
 * Nothing runs on function exit, which keeps every exit path correct without
 * rewriting it: `return`, branches to the function label, tail calls, and
 * exceptions unwinding any number of frames (the frame that catches restores
 * the right value at its next call). Host functions calling back into the
 * module see the depth of the wasm call site that called them. The host must
 * write the limit into the global before each top-level call, since a trap
 * leaves it at whatever the deepest frame stored.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { emitTrapIf, TrapReason } from "./_trap.ts";

/** Where the depth check keeps its state. */
export interface DepthSlots {
  /** Index of the remaining-depth `i32` global. */
  readonly depthGlobal: number;
  /** Index of the trap-reason global. */
  readonly trapGlobal: number;
}

/**
 * Writes the function-entry check.
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
  emitTrapIf(out, TrapReason.CallDepth, slots.trapGlobal);
}

/** Writes the store that precedes a call. */
export function emitDepthBeforeCall(out: CodeWriter, slots: DepthSlots, local: number): void {
  out.u8(0x20); // local.get
  out.u32(local);
  out.u8(0x24); // global.set depth
  out.u32(slots.depthGlobal);
}

/** Writes the store that precedes a tail call. */
export function emitDepthBeforeTailCall(out: CodeWriter, slots: DepthSlots, local: number): void {
  out.u8(0x20); // local.get
  out.u32(local);
  out.u8(0x41); // i32.const 1
  out.u8(0x01);
  out.u8(0x6a); // i32.add
  out.u8(0x24); // global.set depth
  out.u32(slots.depthGlobal);
}

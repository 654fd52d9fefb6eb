/**
 * How instrumented code stops a call that exceeded a limit: it records the
 * reason in an exported `i32` global, then executes `unreachable`. A trap is
 * not catchable by the guest's exception handlers, and the host tells it apart
 * from the guest's own traps by reading the global afterwards.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { TrapReason } from "../metering/mod.ts";

export { TrapReason };

/**
 * Where a check finds the trap-reason global and, optionally, the function
 * that traps for it.
 */
export interface TrapSlots {
  /** Index of the trap-reason global. */
  readonly trapGlobal: number;
  /**
   * Index of an appended `[] -> []` function that records the reason and traps
   * (see {@linkcode emitTrapBody}), or `null` to do that inline.
   */
  readonly trapFunction?: number | null;
}

/**
 * Writes `if <record reason> unreachable end`, consuming the `i32` condition
 * on the stack; or `if call <trap function> end`, which is smaller: V8 inlines
 * small functions, recursive ones included, only while their code stays small.
 *
 * @param out Where to write.
 * @param reason The {@linkcode TrapReason} to record.
 * @param slots The trap-reason global, and the trap function if there is one.
 */
export function emitTrapIf(out: CodeWriter, reason: number, slots: TrapSlots): void {
  out.unlikelyIf();
  emitTrapBy(out, reason, slots);
  out.u8(0x0b); // end
}

/** Writes a trap for `reason`: a call of the slots' trap function, or the trap inline. */
export function emitTrapBy(out: CodeWriter, reason: number, slots: TrapSlots): void {
  if (slots.trapFunction !== undefined && slots.trapFunction !== null) {
    out.u8(0x10); // call
    out.u32(slots.trapFunction);
  } else {
    emitTrap(out, reason, slots.trapGlobal);
  }
}

/** Writes, inline, code that records `reason` in global `trapGlobal` and traps. */
export function emitTrap(out: CodeWriter, reason: number, trapGlobal: number): void {
  out.u8(0x41); // i32.const
  out.u8(reason);
  out.u8(0x24); // global.set
  out.u32(trapGlobal);
  out.u8(0x00); // unreachable
}

/**
 * Writes the body (no locals, size excluded) of a `[] -> []` function that
 * records `reason` and traps.
 */
export function emitTrapBody(out: CodeWriter, reason: number, trapGlobal: number): void {
  out.u8(0x00); // no locals
  emitTrap(out, reason, trapGlobal);
  out.u8(0x0b); // end
}

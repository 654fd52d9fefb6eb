/**
 * The fuel pass: deterministic instruction metering.
 *
 * Cost model: every original instruction costs 1 unit (control instructions
 * included; the instrumentation's own code is free). Code is split into
 * metered segments, each a straight run of instructions with a single entry:
 * a segment starts at the function entry, at a loop header, at the start of an
 * `if` arm or `else` arm, after the `end` of a `block`/`if`/`try`/`try_table`
 * (a branch target), after a legacy `catch`/`catch_all`/`delegate`, and after
 * a conditional branch (`br_if`, `br_on_null`, `br_on_non_null`, `br_on_cast`,
 * `br_on_cast_fail`). It ends at the next such point or at an unconditional
 * transfer (`br`, `br_table`, `return`, `unreachable`, `throw`, `throw_ref`,
 * `rethrow`, tail calls). A segment's whole cost is charged on entry, before
 * any of its instructions runs, so a loop pays for its body on every
 * iteration, and a call that traps or throws midway has still paid for the
 * rest of its segment. Code after an unconditional transfer that no branch
 * can reach is not metered. Calls do not end a segment; a callee meters
 * itself, and host functions are not metered.
 *
 * The remaining budget lives in an exported mutable `i64` global: the host
 * writes the budget before a call and reads what is left after it. When a
 * charge would make it negative, the global is left negative, the trap-reason
 * global is set to {@linkcode TrapReason.Fuel} and the call traps.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { emitTrapIf, TrapReason } from "./_trap.ts";

/** Where the fuel charge keeps its state. */
export interface FuelSlots {
  /** Index of the remaining-fuel `i64` global. */
  readonly fuelGlobal: number;
  /** Index of the trap-reason global. */
  readonly trapGlobal: number;
}

/**
 * Writes a charge whose cost is patched later with {@linkcode settleFuelCharge}.
 *
 * @param out Where to write.
 * @param slots The globals the charge uses.
 * @param temp Index of an `i64` scratch local of the function.
 * @returns The position of the cost slot.
 */
export function emitFuelCharge(out: CodeWriter, slots: FuelSlots, temp: number): number {
  out.u8(0x23); // global.get fuel
  out.u32(slots.fuelGlobal);
  out.u8(0x42); // i64.const cost
  const at = out.slot5();
  out.u8(0x7d); // i64.sub
  out.u8(0x22); // local.tee temp
  out.u32(temp);
  out.u8(0x24); // global.set fuel
  out.u32(slots.fuelGlobal);
  out.u8(0x20); // local.get temp
  out.u32(temp);
  out.u8(0x42); // i64.const 0
  out.u8(0x00);
  out.u8(0x53); // i64.lt_s
  emitTrapIf(out, TrapReason.Fuel, slots.trapGlobal);
  return at;
}

/** Stores a segment's cost into the charge written at `at`. */
export function settleFuelCharge(out: CodeWriter, at: number, cost: number): void {
  out.patch5(at, cost);
}

/**
 * Gates of the bulk instructions (`memory.fill`, `memory.copy`,
 * `memory.init`, `table.fill`, `table.copy`, `table.init`), whose work grows
 * with their length operand: one instruction may fill gigabytes, so neither
 * "one unit per instruction" nor "a deadline check per loop iteration" bounds
 * what it costs or how long it runs.
 *
 * The rewriter (`_rewrite.ts`) calls a gate just before each bulk
 * instruction, with the length on top of the stack. The gate, an appended
 * function of type `[t] -> [t]` (`t` the length's type) that returns the
 * length untouched, so that no scratch local is needed:
 *
 * - charges the length's fuel (see the cost model of `_fuel.ts`), trapping or
 *   refilling the slice exactly as an ordinary charge does;
 * - checks the deadline before a large instruction (one of at least
 *   {@linkcode BULK_CHECK_UNITS} units): it calls the hook before large
 *   ones, and without fuel it counts smaller ones down the clock countdown by
 *   their units, so that the hook's pacing follows the work done.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { type DeadlinePollSlots, emitDeadlinePoll } from "./_deadline.ts";
import { BULK_BYTES_PER_UNIT, BULK_ELEMENTS_PER_UNIT, type FuelSlots } from "./_fuel.ts";
import { emitTrap, TrapReason } from "./_trap.ts";

/** Kinds of bulk instructions, by what their length counts and its type. */
export const BulkKind = {
  /** Bytes of a 32-bit memory (and `memory.init`, `memory.copy` with a 32-bit side). */
  Memory32: 0,
  /** Bytes of 64-bit memories. */
  Memory64: 1,
  /** Elements of a 32-bit table (and `table.init`, `table.copy` with a 32-bit side). */
  Table32: 2,
  /** Elements of 64-bit tables. */
  Table64: 3,
} as const;

/** Number of {@linkcode BulkKind} values. */
export const BULK_KINDS = 4;

/**
 * Units from which a bulk instruction is checked against the deadline
 * whatever the mode: 1 MiB of memory, 16384 table elements.
 */
export const BULK_CHECK_UNITS = 1 << 14;

/** Largest extra charge of one instruction, so that no charge can overflow the budget. */
const MAX_UNITS = 1n << 32n;

/** What a gate checks. */
export interface BulkGateSlots {
  /** The fuel globals, or `null` without fuel. */
  readonly fuel: FuelSlots | null;
  /** The deadline check of the fuel refill (a deadline with fuel), or `null`. */
  readonly poll: DeadlinePollSlots | null;
  /** The clock countdown (`"clock"` without fuel), or `null`. */
  readonly countdown: {
    /** Index of the countdown `i32` global. */
    readonly ticksGlobal: number;
    /** Index of the function that reloads the countdown and calls the hook. */
    readonly tick: number;
  } | null;
}

/** The function type entry of the gate of `kind`: `[i32] -> [i32]` or `[i64] -> [i64]`. */
export function bulkGateType(kind: number): Uint8Array {
  const type = (kind & 1) === 0 ? 0x7f : 0x7e;
  return new Uint8Array([0x60, 0x01, type, 0x01, type]);
}

/**
 * Writes the body (locals included, size excluded) of the gate of `kind`.
 *
 * @param out Where to write.
 * @param kind A {@linkcode BulkKind}.
 * @param slots What the gate checks.
 */
export function emitBulkGateBody(out: CodeWriter, kind: number, slots: BulkGateSlots): void {
  const length = 0;
  const units = 1;
  const wide = (kind & 1) !== 0;
  const perUnit = kind >= BulkKind.Table32 ? BULK_ELEMENTS_PER_UNIT : BULK_BYTES_PER_UNIT;
  out.u8(1); // one local group: i64 units
  out.u8(1);
  out.u8(0x7e);
  out.u8(0x20); // local.get length
  out.u32(length);
  if (!wide) out.u8(0xad); // i64.extend_i32_u
  if (perUnit > 1) {
    out.u8(0x42); // i64.const log2(perUnit)
    out.s64(BigInt(Math.log2(perUnit)));
    out.u8(0x88); // i64.shr_u
  }
  out.u8(0x21); // local.set units
  out.u32(units);
  if (wide) {
    // units = min_u(units, MAX_UNITS)
    out.u8(0x20);
    out.u32(units);
    out.u8(0x42);
    out.s64(MAX_UNITS);
    out.u8(0x20);
    out.u32(units);
    out.u8(0x42);
    out.s64(MAX_UNITS);
    out.u8(0x54); // i64.lt_u
    out.u8(0x1b); // select
    out.u8(0x21);
    out.u32(units);
  }
  const fuel = slots.fuel;
  if (fuel !== null) {
    out.u8(0x23); // fuel -= units
    out.u32(fuel.fuelGlobal);
    out.u8(0x20);
    out.u32(units);
    out.u8(0x7d); // i64.sub
    out.u8(0x24);
    out.u32(fuel.fuelGlobal);
    out.u8(0x23);
    out.u32(fuel.fuelGlobal);
    out.u8(0x42); // i64.const 0
    out.u8(0x00);
    out.u8(0x53); // i64.lt_s
    out.u8(0x04); // if overdrawn
    out.u8(0x40);
    if (fuel.refill === null) {
      emitTrap(out, TrapReason.Fuel, fuel.trapGlobal);
    } else {
      out.u8(0x10); // call refill, which checks the deadline
      out.u32(fuel.refill);
    }
    out.u8(0x05); // else
  }
  emitDeadlineGate(out, units, slots);
  if (fuel !== null) out.u8(0x0b); // end if
  out.u8(0x20); // local.get length
  out.u32(length);
  out.u8(0x0b); // end
}

/** Writes the gate's deadline check, for the units in local `units`. */
function emitDeadlineGate(out: CodeWriter, units: number, slots: BulkGateSlots): void {
  const { poll, countdown } = slots;
  if (poll === null && countdown === null) return;
  emitLarge(out, units);
  out.u8(0x04); // if large
  out.u8(0x40);
  if (poll !== null) {
    emitDeadlinePoll(out, poll);
    out.u8(0x0b); // end if
    return;
  }
  out.u8(0x10); // call tick: reload the countdown and call the hook
  out.u32(countdown!.tick);
  out.u8(0x05); // else: count the units down (fewer than 2^14, so they fit an i32)
  out.u8(0x23);
  out.u32(countdown!.ticksGlobal);
  out.u8(0x20);
  out.u32(units);
  out.u8(0xa7); // i32.wrap_i64
  out.u8(0x6b); // i32.sub
  out.u8(0x24);
  out.u32(countdown!.ticksGlobal);
  out.u8(0x23);
  out.u32(countdown!.ticksGlobal);
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x4c); // i32.le_s
  emitCallIf(out, countdown!.tick);
  out.u8(0x0b); // end if
}

/** Writes `units >= BULK_CHECK_UNITS`. */
function emitLarge(out: CodeWriter, units: number): void {
  out.u8(0x20);
  out.u32(units);
  out.u8(0x42);
  out.s64(BigInt(BULK_CHECK_UNITS));
  out.u8(0x5a); // i64.ge_u
}

/** Writes `if call f end` for the condition on the stack. */
function emitCallIf(out: CodeWriter, f: number): void {
  out.u8(0x04);
  out.u8(0x40);
  out.u8(0x10);
  out.u32(f);
  out.u8(0x0b);
}

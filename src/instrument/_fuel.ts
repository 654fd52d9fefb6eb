/**
 * The fuel pass: deterministic instruction metering.
 *
 * Cost model: every original instruction costs one unit, except `block`,
 * `loop`, `else`, `end`, `try`, `try_table`, `catch`, `catch_all` and
 * `delegate`, which only delimit code and cost nothing (the instrumentation's
 * own code is free too). Charges are taken ahead: each charge pays, before any
 * of it runs, for code that is sure to run once the charge has run (the
 * records of `_scan.ts`): a straight run of code up to the next conditional
 * branch, plus the code after every construct inside it that cannot branch
 * out, plus the part both arms of an `if`/`else` share. So a call that returns
 * normally consumes exactly one unit per instruction it executed, whatever the
 * shape of its code, unless an exception it caught left a function early (see
 * below); a loop pays for its body on every iteration; and a call
 * runs out of fuel at the first charge its budget cannot cover, which may be
 * a little before the instruction that would have overdrawn it. A call that
 * traps, or that an exception leaves early, has paid for what its charges
 * covered; so has a function an exception leaves early (a call or throw with
 * code after it in the same record, caught in this function or further up):
 * that code was paid for and did not run, at most one record per frame left. Code no branch can reach is not metered. A callee meters itself,
 * except that the record a direct call is in also pays for the callee's
 * entry record, which is sure to run once the call is made (with the fuel
 * pass on, see `_internal_calls.ts`; a callee entered from the host, through
 * a table or a reference pays for it itself): a call that traps before the
 * call it was about to make has paid for that callee's entry too. Host
 * functions are not metered.
 *
 * A function whose declared locals take more than
 * {@linkcode FRAME_FREE_BYTES} (4 bytes an `i32` or `f32`, 16 a `v128`, 8
 * any other) also pays, on every entry, one unit per
 * {@linkcode BULK_BYTES_PER_UNIT} bytes beyond them (rounded up), with its
 * entry record: the engine zeroes them all before the body runs (49 000
 * `v128` locals take 12 µs a call, a thousand times a unit's usual time, and
 * a deadline riding on fuel was passed by seconds). Real modules' largest
 * frames are 0.1-6 KiB, so most functions pay nothing for theirs.
 *
 * Bulk instructions, whose work grows with their length operand, also pay
 * for that length when they run: `memory.fill`, `memory.copy` and
 * `memory.init` one more unit per {@linkcode BULK_BYTES_PER_UNIT} bytes
 * (rounded down), `table.fill`, `table.copy` and `table.init` one more unit
 * per element (at most 2^32 extra units per instruction either way, see
 * `_bulk.ts`). The extra charge is taken just before the instruction, so one
 * that traps out of bounds has paid for its length too. `memory.grow` and
 * `table.grow` cost one unit: what all the grows of an instance can do
 * together is bounded by the memory's and the table's maximum, and charging a
 * failing `table.grow` for the length it asked for would make it run out of
 * fuel where it must return -1.
 *
 * The remaining budget lives in an exported mutable `i64` global: the host
 * writes the budget before a call and reads what is left after it. When a
 * charge makes it negative, the charge's slow path runs: without a deadline
 * it records {@linkcode TrapReason.Fuel} and traps, leaving the global
 * negative. With a deadline, deadline checks ride on fuel instead of being
 * spread through the code: the global holds only a slice of the budget, the
 * rest waits in a second `i64` global (the reserve), and the slow path is an
 * appended function that traps when the reserve cannot cover the overdraft,
 * checks the deadline, and moves the next slice (at most the interval global)
 * from the reserve. Since every loop iteration and every call charges at
 * least one unit, and a bulk instruction at least its length, no code runs for
 * long between two slow paths.
 *
 * Functions keep the fuel in a local, which is much cheaper than a global
 * (the variants of `_internal_calls.ts` get it in a parameter from their
 * caller; the others that have loops load it on entry), but write every new
 * value through to the global as well: whatever stops the call (a trap of
 * the guest's own included), the global holds what the charges taken so far
 * covered. Variants that cannot trap by themselves store it only where it is
 * read (see `_internal_calls.ts`). The `if` of every slow path is marked unlikely in a branch hint
 * section (see `CodeWriter.unlikelyIf`), which V8 lays out of the way.
 *
 * @module
 */

import { type CodeWriter, emitGlobalToLocal } from "./_code.ts";
import { emitTrap, emitTrapIf, TrapReason, type TrapSlots } from "./_trap.ts";

/** Bytes a bulk memory instruction may fill, copy or initialize per unit of fuel. */
export const BULK_BYTES_PER_UNIT = 64;
/** Table elements a bulk table instruction may fill, copy or initialize per unit of fuel. */
export const BULK_ELEMENTS_PER_UNIT = 1;
/** Bytes of declared locals a function's entry zeroes without paying for them. */
export const FRAME_FREE_BYTES = 1024;

/**
 * Units a function entry pays for zeroing `localBytes` of declared locals.
 *
 * @example
 * ```ts ignore
 * frameUnits(1024); // 0
 * frameUnits(49_000 * 16); // 12 234
 * ```
 */
export function frameUnits(localBytes: number): number {
  return localBytes <= FRAME_FREE_BYTES
    ? 0
    : Math.ceil((localBytes - FRAME_FREE_BYTES) / BULK_BYTES_PER_UNIT);
}

/** Where the fuel charge keeps its state. */
export interface FuelSlots extends TrapSlots {
  /** Index of the remaining-fuel `i64` global (the current slice when a reserve is used). */
  readonly fuelGlobal: number;
  /** Index of the refill function when fuel is sliced, else `null` (exhaustion traps at once). */
  readonly refill: number | null;
}

/**
 * Writes a charge of `cost` units.
 *
 * @param out Where to write.
 * @param slots The globals the charge uses.
 * @param temp Index of an `i64` scratch local of the function.
 * @param cost The units to charge.
 * @returns The position of the cost immediate.
 */
export function emitFuelCharge(
  out: CodeWriter,
  slots: FuelSlots,
  temp: number,
  cost: number,
): number {
  const at = emitFuelSubtract(out, slots.fuelGlobal, temp, cost, false);
  emitOverdrawn(out, temp);
  if (slots.refill === null) {
    emitTrapIf(out, TrapReason.Fuel, slots);
  } else {
    out.unlikelyIf();
    out.u8(0x10); // call refill
    out.u32(slots.refill);
    out.u8(0x0b); // end
  }
  return at;
}

/**
 * Writes a charge of `cost` units against the function's cached copy of the
 * fuel global (see {@linkcode emitFuelLoad}), storing the new value in both.
 *
 * @param out Where to write.
 * @param slots The globals the charge uses.
 * @param local Index of the `i64` local caching the fuel global.
 * @param cost The units to charge.
 * @returns The position of the cost immediate.
 */
export function emitCachedFuelCharge(
  out: CodeWriter,
  slots: FuelSlots,
  local: number,
  cost: number,
): number {
  const at = emitFuelSubtract(out, slots.fuelGlobal, local, cost, true);
  emitOverdrawn(out, local);
  out.unlikelyIf();
  if (slots.refill === null) {
    emitTrap(out, TrapReason.Fuel, slots.trapGlobal);
  } else {
    out.u8(0x10); // call refill
    out.u32(slots.refill);
    emitFuelLoad(out, slots, local);
  }
  out.u8(0x0b); // end
  return at;
}

/**
 * Writes `local = fuel - cost`, storing the new value in global `fuelGlobal`
 * too unless `writeThrough` is false (then the caller stores it before
 * anything reads the global: see `_internal_calls.ts`), where `fuel` is the
 * global or, when `cached`, the local itself (which holds a copy of the global).
 *
 * @returns The position of the cost immediate.
 */
export function emitFuelSubtract(
  out: CodeWriter,
  fuelGlobal: number,
  local: number,
  cost: number,
  cached: boolean,
  writeThrough = true,
): number {
  if (cached) {
    out.u8(0x20); // local.get fuel
    out.u32(local);
  } else {
    out.u8(0x23); // global.get fuel
    out.u32(fuelGlobal);
  }
  out.u8(0x42); // i64.const cost
  const at = out.length;
  if (cost <= 0x7fffffff) out.s32(cost);
  else out.s64(BigInt(cost)); // folded entry costs can exceed 32 bits
  out.u8(0x7d); // i64.sub
  if (writeThrough) {
    out.u8(0x22); // local.tee
    out.u32(local);
    out.u8(0x24); // global.set fuel
    out.u32(fuelGlobal);
  } else {
    out.u8(0x21); // local.set
    out.u32(local);
  }
  return at;
}

/** Writes `local < 0`: the charge just taken overdrew the fuel. */
export function emitOverdrawn(out: CodeWriter, local: number): void {
  out.u8(0x20); // local.get fuel
  out.u32(local);
  out.u8(0x42); // i64.const 0
  out.u8(0x00);
  out.u8(0x53); // i64.lt_s
}

/**
 * Writes `local = fuel global`. Functions with loops keep a copy of the fuel
 * in a local, which is much cheaper to read in a loop than a global: they load
 * it on entry and after each call (which may have charged the global), and
 * their charges store each new value in both (see
 * {@linkcode emitCachedFuelCharge}); functions that handle exceptions do not,
 * so that a catch never sees a stale copy.
 */
export function emitFuelLoad(out: CodeWriter, slots: FuelSlots, local: number): void {
  emitGlobalToLocal(out, slots.fuelGlobal, local);
}

/** Where the refill function keeps its state. */
export interface RefillSlots {
  /** Index of the fuel (current slice) `i64` global. */
  readonly fuelGlobal: number;
  /** Index of the reserve `i64` global. */
  readonly reserveGlobal: number;
  /** Index of the `i64` global holding the largest slice. */
  readonly intervalGlobal: number;
  /** Index of the trap-reason global. */
  readonly trapGlobal: number;
}

/**
 * Writes the body (locals included, size excluded) of the `[] -> []` refill
 * function, called when a charge overdraws the slice.
 *
 * @param out Where to write.
 * @param slots The globals it uses.
 * @param checkDeadline Writes code that traps when the deadline passed.
 */
export function emitRefillBody(
  out: CodeWriter,
  slots: RefillSlots,
  checkDeadline: (out: CodeWriter) => void,
): void {
  const total = 0;
  out.u8(1); // one local group: i64 total
  out.u8(1);
  out.u8(0x7e);
  out.u8(0x23); // total = reserve + fuel
  out.u32(slots.reserveGlobal);
  out.u8(0x23);
  out.u32(slots.fuelGlobal);
  out.u8(0x7c); // i64.add
  out.u8(0x22);
  out.u32(total);
  out.u8(0x42); // i64.const 0
  out.u8(0x00);
  out.u8(0x53); // i64.lt_s
  out.u8(0x04); // if: exhausted, leave the overdraft in fuel and trap
  out.u8(0x40);
  out.u8(0x20);
  out.u32(total);
  out.u8(0x24);
  out.u32(slots.fuelGlobal);
  out.u8(0x42);
  out.u8(0x00);
  out.u8(0x24);
  out.u32(slots.reserveGlobal);
  emitTrap(out, TrapReason.Fuel, slots.trapGlobal);
  out.u8(0x0b);
  checkDeadline(out);
  // fuel = min(total, interval); reserve = total - fuel
  out.u8(0x20);
  out.u32(total);
  out.u8(0x23);
  out.u32(slots.intervalGlobal);
  out.u8(0x20);
  out.u32(total);
  out.u8(0x23);
  out.u32(slots.intervalGlobal);
  out.u8(0x53); // i64.lt_s
  out.u8(0x1b); // select
  out.u8(0x24);
  out.u32(slots.fuelGlobal);
  out.u8(0x20);
  out.u32(total);
  out.u8(0x23);
  out.u32(slots.fuelGlobal);
  out.u8(0x7d); // i64.sub
  out.u8(0x24);
  out.u32(slots.reserveGlobal);
  out.u8(0x0b); // end
}

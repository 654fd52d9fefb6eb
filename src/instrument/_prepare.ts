/**
 * The host's fast path into an instrumented instance: two exported functions
 * the instrumenter appends, so that arming a call and reading what it
 * consumed each take one wasm call instead of several
 * `WebAssembly.Global.value` accessors converting `i64` values to and from
 * `BigInt` (see {@linkcode InstanceLimits}).
 *
 * - {@linkcode PREPARE_EXPORT} `(param f64 i32)` takes the fuel budget, an
 *   integer of magnitude at most 2^53 (exact in an `f64`), and the depth
 *   limit; it clears the trap reason, sets the fuel global (in a sliced
 *   budget, the first slice, the rest going to the reserve), the depth global,
 *   and the clock countdown, as the passes need.
 * - {@linkcode FUEL_LEFT_EXPORT} `(result f64)` returns the fuel left, slice
 *   and reserve together: negative once exhausted, exact whenever the budget
 *   was at most 2^53.
 *
 * The host keeps the accessors for larger budgets and for modules built
 * without these functions.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { FUEL_LEFT_EXPORT, PREPARE_EXPORT } from "../metering/mod.ts";

export { FUEL_LEFT_EXPORT, PREPARE_EXPORT };

/** `(func (param f64 i32))` as a type section entry. */
export const PREPARE_TYPE: Uint8Array = new Uint8Array([0x60, 0x02, 0x7c, 0x7f, 0x00]);
/** `(func (result f64))` as a type section entry. */
export const FUEL_LEFT_TYPE: Uint8Array = new Uint8Array([0x60, 0x00, 0x01, 0x7c]);

/** The globals and memory the prepare function sets; `-1` for those the module lacks. */
export interface PrepareSlots {
  /** Index of the trap-reason `i32` global. */
  readonly trapGlobal: number;
  /** Index of the fuel `i64` global, or -1. */
  readonly fuelGlobal: number;
  /** Index of the fuel reserve `i64` global when fuel is sliced, or -1. */
  readonly reserveGlobal: number;
  /** Index of the `i64` largest-slice global when fuel is sliced, or -1. */
  readonly sliceGlobal: number;
  /** Index of the depth `i32` global, or -1. */
  readonly depthGlobal: number;
  /** Index of the clock countdown `i32` global, or -1. */
  readonly ticksGlobal: number;
  /** Index of the `i32` global the countdown starts from, or -1. */
  readonly ticksIntervalGlobal: number;
  /** Index of the guest's stack pointer, or -1 (see `STACK_POINTER_EXPORT`). */
  readonly stackGlobal?: number;
  /** Index of the `i32` global that keeps the stack pointer as the call began, or -1. */
  readonly stackBaseGlobal?: number;
}

/**
 * Writes the body (locals included, size excluded) of the prepare function.
 *
 * @param out Where to write.
 * @param slots What it sets.
 */
export function emitPrepareBody(out: CodeWriter, slots: PrepareSlots): void {
  const budget = 0;
  const total = 2;
  const slice = 3;
  out.u8(1); // one local group: i64 total, i64 slice
  out.u8(2);
  out.u8(0x7e);
  out.u8(0x41); // trap = 0
  out.u8(0x00);
  out.u8(0x24);
  out.u32(slots.trapGlobal);
  if (slots.fuelGlobal >= 0) {
    out.u8(0x20); // total = i64.trunc_sat_f64_s(budget)
    out.u32(budget);
    out.u8(0xfc);
    out.u8(0x06);
    if (slots.reserveGlobal < 0) {
      out.u8(0x24); // fuel = total
      out.u32(slots.fuelGlobal);
    } else {
      out.u8(0x22); // local.tee total
      out.u32(total);
      out.u8(0x23); // slice = min(total, largest slice)
      out.u32(slots.sliceGlobal);
      out.u8(0x20);
      out.u32(total);
      out.u8(0x23);
      out.u32(slots.sliceGlobal);
      out.u8(0x53); // i64.lt_s
      out.u8(0x1b); // select
      out.u8(0x22); // local.tee slice
      out.u32(slice);
      out.u8(0x24); // fuel = slice
      out.u32(slots.fuelGlobal);
      out.u8(0x20); // reserve = total - slice
      out.u32(total);
      out.u8(0x20);
      out.u32(slice);
      out.u8(0x7d); // i64.sub
      out.u8(0x24);
      out.u32(slots.reserveGlobal);
    }
  }
  if (slots.depthGlobal >= 0) {
    out.u8(0x20); // depth = the limit
    out.u32(1);
    out.u8(0x24);
    out.u32(slots.depthGlobal);
  }
  if (slots.ticksGlobal >= 0) {
    out.u8(0x23); // ticks = interval
    out.u32(slots.ticksIntervalGlobal);
    out.u8(0x24);
    out.u32(slots.ticksGlobal);
  }
  if ((slots.stackGlobal ?? -1) >= 0) {
    out.u8(0x23); // stack base = stack pointer, where a failed call puts it back
    out.u32(slots.stackGlobal!);
    out.u8(0x24);
    out.u32(slots.stackBaseGlobal!);
  }
  out.u8(0x0b); // end
}

/**
 * Writes the body (locals included, size excluded) of the fuel-left function.
 *
 * @param out Where to write.
 * @param fuelGlobal Index of the fuel `i64` global.
 * @param reserveGlobal Index of the reserve `i64` global, or -1 when fuel is not sliced.
 */
export function emitFuelLeftBody(out: CodeWriter, fuelGlobal: number, reserveGlobal: number): void {
  out.u8(0x00); // no locals
  out.u8(0x23); // global.get fuel
  out.u32(fuelGlobal);
  if (reserveGlobal >= 0) {
    out.u8(0x23); // + reserve
    out.u32(reserveGlobal);
    out.u8(0x7c); // i64.add
  }
  out.u8(0xb9); // f64.convert_i64_s
  out.u8(0x0b); // end
}

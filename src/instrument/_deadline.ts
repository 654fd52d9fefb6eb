/**
 * The deadline pass: a cheap check at every loop header and at the entry of
 * every function that calls (leaf functions without loops run in bounded
 * time), so that no path through the code runs unboundedly long without one.
 *
 * Two modes:
 *
 * - `"shared-flag"`: the check is an `i32.atomic.load` of byte offset 0 of a
 *   memory appended to the module (`(memory 1 1 shared)`, exported as
 *   {@linkcode DEADLINE_MEMORY_EXPORT}). Its buffer is a `SharedArrayBuffer`,
 *   so another thread (the host watching a worker) can raise the flag with
 *   `Atomics.store`. Appending a memory renumbers nothing.
 * - `"clock"`: for a guest running on the host's own thread. A countdown
 *   global is decremented at each check; when it reaches zero it is reloaded
 *   from the interval global and the host's hook is called through slot 0 of
 *   an appended one-element `funcref` table (exported as
 *   {@linkcode DEADLINE_HOOKS_EXPORT}, type `[] -> [i32]`). The hook returns
 *   non-zero when the deadline passed; while the slot is empty the check
 *   passes. Using a table rather than a function import keeps every function
 *   index unchanged.
 *
 * Either way the check traps with {@linkcode TrapReason.Deadline}; a trap,
 * unlike an exception thrown by the hook, cannot be caught by the guest.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { emitTrapIf, TrapReason } from "./_trap.ts";

/** Export name of the interrupt-flag memory in `"shared-flag"` mode. */
export const DEADLINE_MEMORY_EXPORT = "__wasmplug_interrupt";
/** Export name of the hook table in `"clock"` mode. */
export const DEADLINE_HOOKS_EXPORT = "__wasmplug_hooks";

/** Where the deadline check finds its state. */
export type DeadlineSlots =
  | {
    readonly mode: "shared-flag";
    /** Index of the appended shared memory. */
    readonly memory: number;
    /** Index of the trap-reason global. */
    readonly trapGlobal: number;
  }
  | {
    readonly mode: "clock";
    /** Index of the countdown `i32` global. */
    readonly ticksGlobal: number;
    /** Index of the `i32` global the countdown is reloaded from. */
    readonly intervalGlobal: number;
    /** Index of the hook table. */
    readonly table: number;
    /** Index of the `[] -> [i32]` function type. */
    readonly hookType: number;
    /** Index of the trap-reason global. */
    readonly trapGlobal: number;
  };

/**
 * Writes one deadline check.
 *
 * @param out Where to write.
 * @param slots The mode and its indices.
 * @param temp Index of an `i32` scratch local (used in `"clock"` mode).
 */
export function emitDeadlineCheck(out: CodeWriter, slots: DeadlineSlots, temp: number): void {
  if (slots.mode === "shared-flag") {
    out.u8(0x41); // i32.const 0
    out.u8(0x00);
    out.u8(0xfe); // i32.atomic.load
    out.u8(0x10);
    if (slots.memory === 0) {
      out.u8(0x02); // align 4
    } else {
      out.u8(0x42); // align 4, explicit memory index
      out.u32(slots.memory);
    }
    out.u8(0x00); // offset 0
    emitTrapIf(out, TrapReason.Deadline, slots.trapGlobal);
    return;
  }
  out.u8(0x23); // global.get ticks
  out.u32(slots.ticksGlobal);
  out.u8(0x41); // i32.const 1
  out.u8(0x01);
  out.u8(0x6b); // i32.sub
  out.u8(0x22); // local.tee temp
  out.u32(temp);
  out.u8(0x24); // global.set ticks
  out.u32(slots.ticksGlobal);
  out.u8(0x20); // local.get temp
  out.u32(temp);
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x4c); // i32.le_s
  out.u8(0x04); // if
  out.u8(0x40);
  out.u8(0x23); // global.get interval
  out.u32(slots.intervalGlobal);
  out.u8(0x24); // global.set ticks
  out.u32(slots.ticksGlobal);
  out.u8(0x02); // block: skip the call while no hook is installed
  out.u8(0x40);
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x25); // table.get
  out.u32(slots.table);
  out.u8(0xd1); // ref.is_null
  out.u8(0x0d); // br_if 0
  out.u8(0x00);
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x11); // call_indirect hookType table
  out.u32(slots.hookType);
  out.u32(slots.table);
  emitTrapIf(out, TrapReason.Deadline, slots.trapGlobal);
  out.u8(0x0b); // end block
  out.u8(0x0b); // end if
}

/**
 * The deadline pass: checks of a clock placed so that no path through the
 * code runs for long without one.
 *
 * With the fuel pass on, the checks ride on fuel (see `_fuel.ts`): they run
 * in the slow path of a charge once per slice of the budget, and the code
 * itself carries none. Without fuel, a check goes at every loop header and
 * before calls that can lead into recursion (per the call graph of
 * `_call_graph.ts`: calls through imports, tables or references, and calls to
 * functions that are recursive or whose static work bound exceeds
 * `BOUNDED_WORK` instructions), at most one per straight run of
 * code. Every unbounded execution repeats a loop or recurses, so it passes a
 * check at least once per iteration or per recursive call; between two checks
 * only a bounded amount of code can run (for a call tree that unwinds,
 * bounded per frame), even through chains of non-recursive calls, which the
 * work bound keeps from multiplying. Two kinds of instructions run long on
 * their own and carry checks of their own: bulk instructions
 * (`memory.fill` and the like, see `_bulk.ts`) and atomic waits (see
 * `_atomic_wait.ts`).
 *
 * The one mode, `"clock"`: the host's hook is called through slot 0 of an
 * appended one-element `funcref` table (exported as
 * {@linkcode DEADLINE_HOOKS_EXPORT}, type `[] -> [i32]`) and returns non-zero
 * when the call must stop: its deadline passed on the clock of the thread the
 * guest runs on, or another thread (the host of a worker) asked it to stop.
 * While the slot is empty the check passes. Using a table rather than a
 * function import keeps every function index unchanged. Without fuel, a
 * countdown global is decremented at each check and the hook called when it
 * reaches zero, the countdown then being reloaded from the interval global.
 * The host paces the hook to about once a millisecond (see
 * `InstanceLimits`).
 *
 * The check traps with {@linkcode TrapReason.Deadline}; a trap, unlike an
 * exception thrown by the hook, cannot be caught by the guest.
 *
 * @module
 */

import { type CodeWriter, emitGlobalToLocal, emitLocalToGlobal } from "./_code.ts";
import { emitTrapIf, TrapReason } from "./_trap.ts";

/** Export name of the hook table in `"clock"` mode. */
export const DEADLINE_HOOKS_EXPORT = "__wasmplug_hooks";

/** Where the check of the fuel refill function finds its state. */
export interface DeadlinePollSlots {
  readonly mode: "clock";
  /** Index of the hook table. */
  readonly table: number;
  /** Index of the `[] -> [i32]` function type. */
  readonly hookType: number;
  /** Index of the trap-reason global. */
  readonly trapGlobal: number;
}

/** Where the deadline check finds its state. */
export interface DeadlineSlots {
  readonly mode: "clock";
  /** Index of the countdown `i32` global. */
  readonly ticksGlobal: number;
  /** Index of the appended `[] -> []` function that reloads the countdown and calls the hook. */
  readonly tick: number;
}

/**
 * Writes a check without a countdown: it calls the hook (used by the fuel
 * refill function, which runs once per slice).
 *
 * @param out Where to write.
 * @param slots The hook's indices.
 */
export function emitDeadlinePoll(out: CodeWriter, slots: DeadlinePollSlots): void {
  emitHookCall(out, slots);
}

/**
 * Throws between two of the throw gate's checks. A throw costs the engine's
 * search for its handler (about 36 ns for each frame it unwinds, 65 ns more
 * for each `try_table` in scope there and 9 ns for each catch clause: see
 * `HANDLER_WEIGHT` in `_scan.ts`), which fuel does not count; a check costs
 * about 100 ns. So a call may overrun its deadline by this many throws.
 */
export const THROWS_PER_CHECK = 8;

/**
 * From this weight of handlers in scope in a frame (`ScanResult.handlerWeight`)
 * on, every throw checks the deadline: eight throws through 1 000 frames of
 * it would take 5 ms.
 */
export const CHECK_EVERY_THROW_WEIGHT = 64;

/**
 * The most weight of handlers in scope in one frame that a module with a
 * deadline may have (64 nested `try_table`s of one clause, or one of 505
 * clauses): one throw through 1 000 such frames (the default `maxCallDepth`)
 * takes about 5 ms, through the deepest stack V8 allows (about 16 000 frames,
 * without a depth limit, or in chains of functions that do not recurse) about
 * 75 ms, and the deadline cannot stop a throw midway. A `try_table` with
 * 60 000 clauses that do not match made one throw take 1.4 s. The price:
 * clang emits a legacy `try`/`catch_all` for each object with a destructor
 * alive at a call, so a C++ function with more than about 64 of them at once
 * does not compile with a deadline.
 */
export const MAX_HANDLER_WEIGHT = 512;

/** A module's exception handlers would make one throw too slow to keep its deadline. */
export class UnboundedThrowError extends RangeError {
  /**
   * Creates the error.
   *
   * @param weight The module's largest weight of handlers in scope in one frame.
   */
  constructor(weight: number) {
    super(
      `Cannot compile module: a throw would pass handlers of weight ${weight} in one frame (each try_table counts 7 and each catch clause 1), and wasmplug allows at most ${MAX_HANDLER_WEIGHT}: the engine's search for a handler is not metered, so one throw through many such frames would outlast any deadline`,
    );
    this.name = "UnboundedThrowError";
  }
}

/**
 * Writes the body of the throw gate (`[] -> []`, see `emitThrowGateCall` in
 * `_rewrite.ts`): it counts throws down in global `countdown` and makes the
 * hook's check every {@linkcode THROWS_PER_CHECK} of them.
 *
 * @param out Where to write.
 * @param slots The hook's indices.
 * @param countdown Index of the `i32` countdown global (starting at `perCheck`).
 * @param perCheck Throws between two checks.
 */
export function emitThrowGateBody(
  out: CodeWriter,
  slots: DeadlinePollSlots,
  countdown: number,
  perCheck: number = THROWS_PER_CHECK,
): void {
  out.u8(0x00); // no locals
  out.u8(0x23); // countdown -= 1
  out.u32(countdown);
  out.u8(0x41);
  out.s32(1);
  out.u8(0x6b); // i32.sub
  out.u8(0x24);
  out.u32(countdown);
  out.u8(0x23);
  out.u32(countdown);
  out.u8(0x45); // i32.eqz
  out.u8(0x04); // if it ran out
  out.u8(0x40);
  out.u8(0x41); // countdown = perCheck
  out.s32(perCheck);
  out.u8(0x24);
  out.u32(countdown);
  emitHookCall(out, slots);
  out.u8(0x0b); // end if
  out.u8(0x0b); // end
}

/** Writes `block (br_if 0 (ref.is_null (table.get 0))) (call the hook) (trap if it returned 1) end`. */
function emitHookCall(
  out: CodeWriter,
  slots: { readonly table: number; readonly hookType: number; readonly trapGlobal: number },
): void {
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
  emitTrapIf(out, TrapReason.Deadline, slots);
  out.u8(0x0b); // end block
}

/**
 * Writes the body (no locals, size excluded) of the `[] -> []` tick function
 * of `"clock"` mode without fuel, which the checks call when the countdown
 * reaches zero: it reloads the countdown from the interval global and calls
 * the hook.
 *
 * @param out Where to write.
 * @param slots The hook's indices.
 * @param ticksGlobal Index of the countdown `i32` global.
 * @param intervalGlobal Index of the `i32` global the countdown is reloaded from.
 */
export function emitTickBody(
  out: CodeWriter,
  slots: DeadlinePollSlots,
  ticksGlobal: number,
  intervalGlobal: number,
): void {
  out.u8(0x00); // no locals
  out.u8(0x23); // global.get interval
  out.u32(intervalGlobal);
  out.u8(0x24); // global.set ticks
  out.u32(ticksGlobal);
  emitHookCall(out, slots);
  out.u8(0x0b); // end
}

/**
 * Writes a `"clock"` check that counts down a local copy of the countdown
 * global, for functions with loops (which load and store the copy where they
 * load and store a cached fuel global, see `_fuel.ts`).
 *
 * @param out Where to write.
 * @param slots The clock mode's indices.
 * @param local Index of the `i32` local caching the countdown.
 */
export function emitCachedClockCheck(
  out: CodeWriter,
  slots: DeadlineSlots,
  local: number,
  weight = 1,
): void {
  out.u8(0x20); // local.get ticks
  out.u32(local);
  out.u8(0x41); // i32.const weight
  out.s32(weight);
  out.u8(0x6b); // i32.sub
  out.u8(0x22); // local.tee ticks
  out.u32(local);
  emitTickWhenDue(out, slots, local);
}

/**
 * Writes `if countdown <= 0: call tick` for the countdown on the stack, and
 * reloads `reload` (a local caching the countdown), if given, after the call.
 */
function emitTickWhenDue(
  out: CodeWriter,
  slots: DeadlineSlots,
  reload: number | null,
): void {
  out.u8(0x41); // i32.const 0
  out.u8(0x00);
  out.u8(0x4c); // i32.le_s
  out.unlikelyIf();
  out.u8(0x10); // call tick
  out.u32(slots.tick);
  if (reload !== null) emitTicksLoad(out, slots, reload);
  out.u8(0x0b); // end if
}

/** Writes `local = countdown global` (`"clock"` mode). */
export function emitTicksLoad(
  out: CodeWriter,
  slots: DeadlineSlots,
  local: number,
): void {
  emitGlobalToLocal(out, slots.ticksGlobal, local);
}

/** Writes `countdown global = local` (`"clock"` mode). */
export function emitTicksFlush(
  out: CodeWriter,
  slots: DeadlineSlots,
  local: number,
): void {
  emitLocalToGlobal(out, local, slots.ticksGlobal);
}

/**
 * Fuel units of a function entry's zeroing (see `frameUnits` in `_fuel.ts`)
 * that count as one check without fuel: a check stands for a loop iteration
 * or a call, some tens of units.
 */
export const FRAME_UNITS_PER_CHECK = 16;

/**
 * How many checks a function entry that pays `units` for its locals counts
 * for without fuel.
 *
 * @example
 * ```ts ignore
 * frameChecks(12_234); // 765
 * ```
 */
export function frameChecks(units: number): number {
  return Math.ceil(units / FRAME_UNITS_PER_CHECK);
}

/**
 * Instructions of a block past which, without fuel, it counts down the
 * clock for its length (`Event.Pace`): a block of fewer runs about as long
 * as the checks of the loop or call it is part of.
 */
export const LONG_BODY = 4 * FRAME_UNITS_PER_CHECK;

/**
 * How many checks a function entry counts for without fuel: its locals'
 * zeroing (`frame` units, see {@linkcode frameChecks}) and, for a body of
 * more than {@linkcode FRAME_UNITS_PER_CHECK} instructions, its length
 * (`size`), which a call may run through without a check (straight-line
 * code has none). A body's loops count again for each iteration.
 *
 * @example
 * ```ts ignore
 * entryChecks(0, 10_004); // 626
 * entryChecks(0, 12); // 0
 * ```
 */
export function entryChecks(frame: number, size: number): number {
  // Past one check's worth (not LONG_BODY): a caller through `call_indirect` does not know
  // the callee, and counted one check for a body of 60 cache-missing loads (50-96 ms past).
  const length = size > FRAME_UNITS_PER_CHECK ? frameChecks(size) : 0;
  return (frame > 0 ? frameChecks(frame) : 0) + length;
}

/**
 * How many checks a loop iteration whose first block costs `units` counts
 * for: one up to {@linkcode FRAME_UNITS_PER_CHECK} units, as a check stands
 * for a short iteration, more for a long one.
 *
 * @example
 * ```ts ignore
 * loopChecks(10_002); // 626
 * ```
 */
export function loopChecks(units: number): number {
  return units <= FRAME_UNITS_PER_CHECK ? 1 : Math.ceil(units / FRAME_UNITS_PER_CHECK);
}

/**
 * Writes one deadline check.
 *
 * @param out Where to write.
 * @param slots The countdown's indices.
 * @param temp Index of an `i32` scratch local.
 * @param weight How many checks it counts for: more for code that runs long
 * by itself (a function entry that zeroes many locals), so that the hook's
 * pacing follows the work done.
 */
export function emitDeadlineCheck(
  out: CodeWriter,
  slots: DeadlineSlots,
  temp: number,
  weight = 1,
): void {
  out.u8(0x23); // global.get ticks
  out.u32(slots.ticksGlobal);
  out.u8(0x41); // i32.const weight
  out.s32(weight);
  out.u8(0x6b); // i32.sub
  out.u8(0x22); // local.tee temp
  out.u32(temp);
  out.u8(0x24); // global.set ticks
  out.u32(slots.ticksGlobal);
  out.u8(0x20); // local.get temp
  out.u32(temp);
  emitTickWhenDue(out, slots, null);
}

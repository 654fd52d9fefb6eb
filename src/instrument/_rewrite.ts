/**
 * The second pass over code: it writes each function body with the enabled
 * passes applied, copying the input verbatim between the events the scan
 * (`_scan.ts`) recorded and splicing in, at each one, the fuel charge, the
 * depth bookkeeping or the deadline check the event calls for, the call of a
 * bulk instruction's gate (`_bulk.ts`), or the call that replaces an atomic
 * wait (`_atomic_wait.ts`).
 *
 * @module
 */

import { CodeReader, CodeWriter } from "./_code.ts";
import { emitCachedFuelCharge, emitFuelCharge, emitFuelLoad, type FuelSlots } from "./_fuel.ts";
import {
  type DepthSlots,
  emitDepthEntry,
  emitDepthKeep,
  emitDepthStore,
  emitDepthTailStore,
} from "./_call_depth.ts";
import {
  type DeadlineSlots,
  emitCachedClockCheck,
  emitDeadlineCheck,
  emitTicksFlush,
  emitTicksLoad,
  entryChecks,
  FRAME_UNITS_PER_CHECK,
  frameChecks,
  LONG_BODY,
  loopChecks,
} from "./_deadline.ts";
import { DepthRole } from "./_call_graph.ts";
import { BodyFlags, Event, type ScanResult } from "./_scan.ts";
import type { InternalCallPlan } from "./_internal_calls.ts";

/** The passes to apply, with the module-level indices they use. */
export interface BodyPlan {
  /** Fuel metering, or `null` when off. */
  readonly fuel: FuelSlots | null;
  /** Call-depth limiting, or `null` when off. */
  readonly depth: DepthSlots | null;
  /** Deadline checks in code, or `null` when off or when they ride on fuel. */
  readonly deadline: DeadlineSlots | null;
  /** The gate function of each `BulkKind` the scan recorded (see `_bulk.ts`). */
  readonly bulkGates: readonly number[];
  /** The function replacing each of the scan's distinct atomic waits (see `_atomic_wait.ts`). */
  readonly waitFunctions: readonly number[];
  /** The function replacing each of the scan's distinct split instructions (see `_bulk_split.ts`). */
  readonly splitFunctions: readonly number[];
  /** The `[] -> []` function that checks the deadline before each throw, or -1. */
  readonly throwGate: number;
  /** The internal calling convention's variants, or `null` (see `_internal_calls.ts`). */
  readonly internal: InternalCallPlan | null;
  /** The `[i32] -> [i64]` slow path of variants' charges that also check the depth, or -1. */
  readonly chargeSlowPath: number;
  /** The `[] -> [i64]` slow path of variants' charges, or -1. */
  readonly fuelSlowPath: number;
}

/** What the call graph decided, by defined function index. */
export interface CallRoles {
  /** Number of imported functions (defined function `f` has index `imported + f`). */
  readonly imported: number;
  /** `DepthRole` of each defined function. */
  readonly depthRole: Uint8Array;
  /** Whether calls to each defined function need no deadline check. */
  readonly bounded: Uint8Array;
  /** The static work of each bounded function (see `CallAnalysis.work`). */
  readonly work: Float64Array;
}

const I32 = 0x7f;
const I64 = 0x7e;

/** The byte sequences a body needs, which depend only on the first new local's index. */
interface Snippets {
  /** The depth entry check with its trap inline (in functions with loops), or called. */
  readonly depthEntryInline: Uint8Array;
  readonly depthEntry: Uint8Array;
  readonly depthKeep: Uint8Array;
  readonly depthStore: Uint8Array;
  readonly depthTailStore: Uint8Array;
  readonly check: Uint8Array;
  /** Checks, loads and stores of a function that caches the clock countdown. */
  readonly cachedCheck: Uint8Array;
  readonly ticksLoad: Uint8Array;
  readonly ticksFlush: Uint8Array;
  /** The fuel charge up to its cost immediate, and after it. */
  readonly chargeHead: Uint8Array;
  readonly chargeTail: Uint8Array;
  /** The same against a local copy of the fuel global (which it writes through), and the copy's load. */
  readonly cachedHead: Uint8Array;
  readonly cachedTail: Uint8Array;
  readonly fuelLoad: Uint8Array;
}

function split(write: (out: CodeWriter) => number): [Uint8Array, Uint8Array] {
  scratch.length = 0;
  scratch.hints = [];
  const at = write(scratch);
  const whole = scratch.finish();
  const tail = whole.slice(at + 1); // the cost 0 takes one byte
  // The unlikely `if` of a charge comes after its cost.
  if (scratch.hints.length > 0) snippetHints.set(tail, scratch.hints.map((h) => h - at - 1));
  return [whole.slice(0, at), tail];
}

const scratch = new CodeWriter(256);
let cachedPlan: BodyPlan | null = null;
const cache = new Map<number, Snippets>();
/** Offsets of the unlikely `if`s in snippets (see `CodeWriter.unlikelyIf`). */
const snippetHints = new WeakMap<Uint8Array, readonly number[]>();

function snippet(write: (out: CodeWriter) => void): Uint8Array {
  scratch.length = 0;
  scratch.hints = [];
  write(scratch);
  const bytes = scratch.finish();
  if (scratch.hints.length > 0) snippetHints.set(bytes, scratch.hints);
  return bytes;
}

/** Writes a snippet, noting its unlikely `if`s in `out`'s hints. */
function put(out: CodeWriter, bytes: Uint8Array): void {
  const hints = out.hints === null ? undefined : snippetHints.get(bytes);
  if (hints !== undefined) { for (const h of hints) out.hints!.push(out.length + h); }
  out.bytes(bytes);
}

function snippets(plan: BodyPlan, firstNew: number): Snippets {
  if (cachedPlan !== plan) {
    cache.clear();
    cachedPlan = plan;
  }
  let found = cache.get(firstNew);
  if (found !== undefined) return found;
  const { fuel, depth, deadline } = plan;
  let next = firstNew;
  const fuelTemp = fuel === null ? -1 : next++;
  const depthLocal = depth === null ? -1 : next++;
  const clockTemp = deadline !== null ? next++ : -1;
  const none = new Uint8Array(0);
  const [chargeHead, chargeTail] = fuel === null
    ? [none, none]
    : split((out) => emitFuelCharge(out, fuel, fuelTemp, 0));
  const [cachedHead, cachedTail] = fuel === null
    ? [none, none]
    : split((out) => emitCachedFuelCharge(out, fuel, fuelTemp, 0));
  found = {
    depthEntry: snippet((out) => depth !== null && emitDepthEntry(out, depth, depthLocal)),
    depthEntryInline: snippet((out) =>
      depth !== null && emitDepthEntry(out, { ...depth, trapFunction: null }, depthLocal)
    ),
    depthKeep: snippet((out) => depth !== null && emitDepthKeep(out, depth, depthLocal)),
    depthStore: snippet((out) => depth !== null && emitDepthStore(out, depth, depthLocal)),
    depthTailStore: snippet((out) => depth !== null && emitDepthTailStore(out, depth, depthLocal)),
    check: snippet((out) => deadline !== null && emitDeadlineCheck(out, deadline, clockTemp)),
    cachedCheck: snippet((out) =>
      deadline !== null && emitCachedClockCheck(out, deadline, clockTemp)
    ),
    ticksLoad: snippet((out) => deadline !== null && emitTicksLoad(out, deadline, clockTemp)),
    ticksFlush: snippet((out) => deadline !== null && emitTicksFlush(out, deadline, clockTemp)),
    chargeHead,
    chargeTail,
    cachedHead,
    cachedTail,
    fuelLoad: snippet((out) => fuel !== null && emitFuelLoad(out, fuel, fuelTemp)),
  };
  cache.set(firstNew, found);
  return found;
}

/**
 * Writes the instrumented version of body `f` (its bytes `bytes[start, end)`,
 * `paramCount` parameters) to `out`, without its size prefix. Kept whole:
 * one loop with one switch over the scan's events, the instrumenter's
 * innermost loop, which reads best side by side with the events' list.
 *
 * @param f The defined function's index (among defined functions).
 */
export function rewriteBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  f: number,
  paramCount: number,
  plan: BodyPlan,
  scan: ScanResult,
  roles: CallRoles | null,
  out: CodeWriter,
): void {
  const { declared, codeStart } = writeAddedLocals(bytes, start, end, plan, out);
  // New locals go after every existing one, so no local is renumbered.
  const s = snippets(plan, paramCount + declared);
  const deadline = plan.deadline;
  const role = plan.depth === null || roles === null ? DepthRole.None : roles.depthRole[f]!;
  const { cached, chargeHead, chargeTail, check, load, flush } = pick(s, plan, scan.flags[f]!);
  // The entry's depth check traps inline in functions with loops, as checks do (see `pick`).
  const withLoop = scan.flags[f]! & BodyFlags.Loop;
  if (role === DepthRole.Count) put(out, withLoop ? s.depthEntryInline : s.depthEntry);
  else if (role === DepthRole.Keep) put(out, s.depthKeep);
  const tailStore = role === DepthRole.Count ? s.depthTailStore : s.depthStore;
  // The clock's scratch local (or cached countdown): after the fuel's and the depth's, if any
  // (see snippets()).
  const clockLocal = paramCount + declared + (plan.fuel === null ? 0 : 1) +
    (plan.depth === null ? 0 : 1);
  // Without fuel, an entry counts down the clock as the work it is: zeroing many locals, and
  // a long body (10 000 divisions, called in a loop, ran 1.4 s past a 50 ms deadline: one
  // check a call, and the callee had none of its own).
  if (plan.fuel === null && deadline !== null) {
    const checks = entryChecks(scan.frame[f]!, scan.size[f]!);
    if (checks > 0) emitDeadlineCheck(out, deadline, clockLocal, checks);
  }
  if (cached) put(out, load);

  /** Without fuel, a deadline check that counts for `weight` checks (see `emitDeadlineCheck`). */
  const weightedCheck = (weight: number): void => {
    if (cached) emitCachedClockCheck(out, deadline!, clockLocal, weight);
    else emitDeadlineCheck(out, deadline!, clockLocal, weight);
  };
  let copied = codeStart;
  const { pos, kind, arg, run, cost } = scan;
  const imported = roles?.imported ?? 0;
  let checkedRun = -1;
  // Kept as one loop with a flat switch: it runs once per event of every body.
  for (let e = scan.eventStart[f]!, last = scan.eventStart[f + 1]!; e < last; e++) {
    // Accesses of locals that variants move are copied as they are here.
    if (kind[e] === Event.Local) continue;
    const at = pos[e]!;
    if (at > copied) {
      out.copy(bytes, copied, at);
      copied = at;
    }
    switch (kind[e]) {
      case Event.Charge: {
        const units = cost[arg[e]!]!;
        if (units === 0) break;
        put(out, chargeHead);
        out.s32(units);
        put(out, chargeTail);
        break;
      }
      case Event.Call:
      case Event.TailCall: {
        // Unreachable tail calls are recorded for variants only.
        if (scan.rec[e] === -1 && kind[e] === Event.TailCall) break;
        const callee = arg[e]! - imported;
        const known = arg[e]! >= 0 && callee >= 0 && roles !== null &&
          callee < roles.depthRole.length;
        if (
          deadline !== null && run[e] !== checkedRun && !(known && roles.bounded[callee] === 1)
        ) {
          put(out, check);
          checkedRun = run[e]!;
        } else if (
          deadline !== null && plan.fuel === null && known && roles.bounded[callee] === 1 &&
          roles.work[callee]! > 4
        ) {
          // Without fuel, a call of a bounded function counts down the clock for its work: a
          // loop of calls of ones doing a thousand loads counted one check an iteration.
          weightedCheck(frameChecks(roles.work[callee]!));
        }
        if (role !== DepthRole.None && !(known && roles.depthRole[callee] === DepthRole.None)) {
          put(out, kind[e] === Event.Call ? s.depthStore : tailStore);
        }
        if (flush !== null) put(out, flush);
        break;
      }
      case Event.Exit:
        if (flush !== null) put(out, flush);
        break;
      case Event.Resume:
        if (cached) put(out, load);
        break;
      case Event.Pace: {
        // Without fuel, a long record counts down the clock for its length (a loop whose
        // first block was short counted one check an iteration, however long the rest).
        const units = cost[arg[e]!]!;
        if (deadline === null || units <= LONG_BODY) break;
        weightedCheck(frameChecks(units));
        break;
      }
      case Event.Loop: {
        if (deadline === null) break;
        // Without fuel, an iteration whose body runs long counts as several checks (a body of
        // 10 000 divisions ran 32 768 iterations, 24 s, between two clock reads): its whole
        // body's length, not just its first block's (a body cut into short pieces, each under
        // a long block's length, counted one check an iteration: 18 s past a deadline).
        const length = Math.max(cost[arg[e]!]!, scan.loopSize.get(e) ?? 0);
        if (plan.fuel === null && length > FRAME_UNITS_PER_CHECK) {
          weightedCheck(loopChecks(length));
        } else {
          put(out, check);
        }
        break;
      }
      case Event.Bulk:
        // The gate charges the fuel global or counts the countdown global down.
        if (flush !== null) put(out, flush);
        emitGateCall(out, plan, arg[e]!);
        if (cached) put(out, load);
        break;
      case Event.Wait:
        copied = emitWaitCall(out, plan, scan, arg[e]!);
        break;
      case Event.Split:
        copied = emitSplitCall(out, plan, scan, arg[e]!);
        break;
      case Event.Throw:
        // As a gate: the global holds what was charged, should the deadline stop the call.
        if (flush !== null) put(out, flush);
        emitThrowGateCall(out, plan);
        break;
    }
  }
  out.copy(bytes, copied, end);
}

/**
 * Writes the call of the throw gate before a throw: the engine's search for
 * a handler takes time fuel does not count (about 0.1 µs per handler it
 * passes, in every frame it unwinds), so each throw reads the clock first.
 */
export function emitThrowGateCall(out: CodeWriter, plan: BodyPlan): void {
  out.u8(0x10); // call the gate
  out.u32(plan.throwGate);
}

/** Writes the call of the gate of bulk instructions of kind `kind`, before one. */
export function emitGateCall(out: CodeWriter, plan: BodyPlan, kind: number): void {
  out.u8(0x10); // call gate
  out.u32(plan.bulkGates[kind]!);
}

/**
 * Writes the call replacing the `memory.fill` or `memory.copy` at the scan's
 * split site `site` (see `_bulk_split.ts`); returns where the instruction ends
 * in the input, which the call replaces.
 */
export function emitSplitCall(
  out: CodeWriter,
  plan: BodyPlan,
  scan: ScanResult,
  site: number,
): number {
  const { split, end } = scan.splitSites[site]!;
  out.u8(0x10); // call the instruction's replacement instead of it
  out.u32(plan.splitFunctions[split]!);
  return end;
}

/**
 * Writes the call replacing the atomic wait at the scan's wait site `site`;
 * returns where the wait instruction ends in the input, which the call replaces.
 */
export function emitWaitCall(
  out: CodeWriter,
  plan: BodyPlan,
  scan: ScanResult,
  site: number,
): number {
  const { wait, end } = scan.waitSites[site]!;
  out.u8(0x10); // call the wait's replacement instead of the wait
  out.u32(plan.waitFunctions[wait]!);
  return end;
}

/** The snippets a body's events write, as chosen for its kind of body. */
interface Picked {
  /** Whether the function counts down a local copy of the fuel (or clock) global. */
  readonly cached: boolean;
  readonly chargeHead: Uint8Array;
  readonly chargeTail: Uint8Array;
  readonly check: Uint8Array;
  /** Loads the local copy (on entry and after calls). */
  readonly load: Uint8Array;
  /** Stores the local countdown back before calls and exits, or `null`. */
  readonly flush: Uint8Array | null;
}

/** Picks the snippets of a body with `flags` (its `BodyFlags`). */
function pick(s: Snippets, plan: BodyPlan, flags: number): Picked {
  const { fuel, deadline } = plan;
  // Functions with loops count down a local copy of the fuel (or clock) global.
  const cached = flags === BodyFlags.Loop && (fuel !== null || deadline !== null);
  return {
    cached,
    chargeHead: cached ? s.cachedHead : s.chargeHead,
    chargeTail: cached ? s.cachedTail : s.chargeTail,
    check: cached ? s.cachedCheck : s.check,
    load: fuel !== null ? s.fuelLoad : s.ticksLoad,
    // Charges write the cached fuel through to its global; the countdown is stored back.
    flush: cached && fuel === null ? s.ticksFlush : null,
  };
}

/**
 * Copies the locals vector of the body `bytes[start, end)` with the passes'
 * locals added after every existing one: the fuel's `i64`, then the depth's
 * and the clock countdown's `i32`s.
 *
 * @returns How many locals the body declares and where its code starts.
 */
function writeAddedLocals(
  bytes: Uint8Array,
  start: number,
  end: number,
  plan: BodyPlan,
  out: CodeWriter,
): { declared: number; codeStart: number } {
  const { fuel, depth, deadline } = plan;
  const reader = new CodeReader(bytes, start, end);
  const groups = reader.u32();
  const groupsStart = reader.pos;
  let declared = 0;
  for (let i = 0; i < groups; i++) {
    declared += reader.u32();
    reader.skipValueType();
  }
  const i32Count = (depth !== null ? 1 : 0) + (deadline !== null ? 1 : 0);
  out.u32(groups + (fuel === null ? 0 : 1) + (i32Count === 0 ? 0 : 1));
  out.copy(bytes, groupsStart, reader.pos);
  if (fuel !== null) {
    out.u8(1);
    out.u8(I64);
  }
  if (i32Count !== 0) {
    out.u8(i32Count);
    out.u8(I32);
  }
  return { declared, codeStart: reader.pos };
}

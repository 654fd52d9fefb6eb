/**
 * Writes the two functions the internal calling convention makes of an
 * eligible function (see `_internal_calls.ts`): the wrapper at its original
 * index and the variant holding its instrumented body.
 *
 * The variant's body is the original one with the passes applied, as
 * `_rewrite.ts` would, except that:
 *
 * - the new parameters (the fuel, then the depth) take the indices of the
 *   first one or two locals the body declares, which move to the end (the
 *   scan recorded every access to them);
 * - the body is wrapped in a block of the function's results, so that every
 *   branch to the function's label leaves the block, after which the fuel is
 *   pushed as the last result; each `return` pushes it first;
 * - charges take from the fuel parameter, and write through to the global
 *   when the plan says so (`InternalCallPlan.writeThrough`); calls to other
 *   variants pass the fuel and the depth and take the fuel back (stored in
 *   the global too by a body that writes through, unless the callee returns
 *   with it stored); slow paths, depth traps and calls of a variant that
 *   writes through store the fuel first; calls to anything else store the fuel and the depth (when the callee can
 *   reach counted code) and reload the fuel from the global afterwards.
 *
 * @module
 */

import { CodeReader, type CodeWriter, emitGlobalToLocal, emitLocalToGlobal } from "./_code.ts";
import { type DepthSlots, emitDepthEntry } from "./_call_depth.ts";
import { emitCachedFuelCharge, emitFuelSubtract, emitOverdrawn, type FuelSlots } from "./_fuel.ts";
import { DepthRole } from "./_call_graph.ts";
import { BodyFlags, Event, type ScanResult } from "./_scan.ts";
import { emitTrap, emitTrapBy, emitTrapIf, TrapReason } from "./_trap.ts";
import {
  type BodyPlan,
  type CallRoles,
  emitGateCall,
  emitSplitCall,
  emitThrowGateCall,
  emitWaitCall,
} from "./_rewrite.ts";
import type { InternalCallPlan } from "./_internal_calls.ts";

/**
 * Writes the wrapper of defined function `f` (locals included, size
 * excluded): the depth check of a counted function and the charge of its
 * entry record, against the globals, then the call of its variant.
 */
export function emitWrapperBody(
  out: CodeWriter,
  f: number,
  paramCount: number,
  plan: BodyPlan,
  roles: CallRoles | null,
  internal: InternalCallPlan,
): void {
  const fuel = plan.fuel!;
  const depth = plan.depth;
  const role = depth === null || roles === null ? DepthRole.None : roles.depthRole[f]!;
  const entryCost = internal.entryCost[f]!;
  const temp = paramCount;
  const depthLocal = paramCount + (entryCost > 0 ? 1 : 0);
  const groups = (entryCost > 0 ? 1 : 0) + (role === DepthRole.Count ? 1 : 0);
  out.u32(groups);
  if (entryCost > 0) {
    out.u8(1);
    out.u8(0x7e);
  }
  if (role === DepthRole.Count) {
    out.u8(1);
    out.u8(0x7f);
    emitDepthEntry(out, depth!, depthLocal);
  }
  if (entryCost > 0) {
    emitGlobalToLocal(out, fuel.fuelGlobal, temp);
    emitCachedFuelCharge(out, fuel, temp, entryCost);
  }
  for (let i = 0; i < paramCount; i++) {
    out.u8(0x20); // local.get
    out.u32(i);
  }
  if (entryCost > 0) {
    out.u8(0x20); // local.get fuel, as charged
    out.u32(temp);
  } else {
    out.u8(0x23); // global.get fuel
    out.u32(fuel.fuelGlobal);
  }
  if (internal.depth) {
    if (role === DepthRole.Count) {
      out.u8(0x20); // local.get depth
      out.u32(depthLocal);
    } else if (role === DepthRole.Keep) {
      out.u8(0x23); // global.get depth
      out.u32(depth!.depthGlobal);
    } else {
      out.u8(0x41); // i32.const 0: the callee touches no depth
      out.u8(0x00);
    }
  }
  out.u8(0x10); // call the variant
  out.u32(internal.internal[f]!);
  if (internal.fresh[f] === 1) {
    out.u8(0x1a); // drop the fuel, which the global holds too
  } else {
    out.u8(0x24); // global.set fuel
    out.u32(fuel.fuelGlobal);
  }
  out.u8(0x0b); // end
}

/**
 * Writes the variant of defined function `f`, whose body is
 * `bytes[start, end)` (locals included), to `out` without its size prefix;
 * `imported` is the number of imported functions.
 *
 * Kept whole, as `rewriteBody` is: one loop with one switch over the scan's
 * events, the instrumenter's innermost loop, which reads best side by side
 * with the events' list in `_scan.ts`.
 */
export function rewriteInternalBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  f: number,
  paramCount: number,
  plan: BodyPlan,
  scan: ScanResult,
  roles: CallRoles | null,
  internal: InternalCallPlan,
  imported: number,
  out: CodeWriter,
): void {
  const fuel = plan.fuel!;
  const depth = internal.depth ? plan.depth! : null;
  const added = depth === null ? 1 : 2;
  const moved = writeLocals(bytes, start, end, added, out);
  // The first declared locals, whose indices the new parameters take, go last.
  const movedBase = paramCount + added + moved.declared - moved.count;
  out.u8(0x02); // block [] -> [results]
  out.bytes(internal.blockType[f]!);
  const withLoop = (scan.flags[f]! & BodyFlags.Loop) !== 0;
  const body: VariantBody = {
    out,
    plan,
    internal,
    roles,
    imported,
    f,
    fuelLocal: paramCount,
    depthLocal: paramCount + 1,
    depth,
    // Functions with loops trap inline (cold code for V8), others call the trap function.
    depthSlots: depth === null ? null : withLoop ? inlineTraps(depth) : depth,
    role: depth === null || roles === null ? DepthRole.None : roles.depthRole[f]!,
    writeThrough: internal.writeThrough[f] === 1,
  };
  const fuelLocal = paramCount;
  const { pos, kind, arg, rec } = scan;
  let copied = moved.codeStart;
  // Kept as one loop with a flat switch: it runs once per event of every variant.
  for (let e = scan.eventStart[f]!, last = scan.eventStart[f + 1]!; e < last; e++) {
    const at = pos[e]!;
    if (at > copied) {
      out.copy(bytes, copied, at);
      copied = at;
    }
    switch (kind[e]) {
      case Event.Local:
        out.u8(bytes[at]!); // local.get, local.set or local.tee
        out.u32(movedBase + arg[e]!);
        copied = instructionEnd(bytes, at);
        break;
      case Event.Charge:
        emitVariantCharge(body, arg[e]!);
        break;
      case Event.Call:
        // A variant's call event is always followed by its resume event, at the call's end.
        if (emitCall(body, arg[e]!, rec[e]!)) copied = pos[++e]!;
        break;
      case Event.TailCall:
        // Only tail calls of variants are left in an eligible function.
        emitTailCall(body, arg[e]!, rec[e]!);
        copied = instructionEnd(bytes, at);
        break;
      case Event.Resume:
        emitGlobalToLocal(out, fuel.fuelGlobal, fuelLocal);
        break;
      case Event.Return:
        out.u8(0x20); // local.get fuel, the last result
        out.u32(fuelLocal);
        break;
      case Event.Bulk:
        emitFuelStore(body);
        emitGateCall(out, plan, arg[e]!); // the gate charges the global
        emitGlobalToLocal(out, fuel.fuelGlobal, fuelLocal);
        break;
      case Event.Wait:
        emitFuelStore(body);
        copied = emitWaitCall(out, plan, scan, arg[e]!);
        break;
      case Event.Split:
        // Just after its gate, which left the global as the fuel local is.
        copied = emitSplitCall(out, plan, scan, arg[e]!);
        break;
      case Event.Throw:
        emitFuelStore(body);
        emitThrowGateCall(out, plan); // it does not change the fuel
        break;
    }
  }
  // The body's final `end` closes the block; the fuel follows its results.
  out.copy(bytes, copied, end);
  out.u8(0x20);
  out.u32(fuelLocal);
  out.u8(0x0b);
}

/** What the events of one variant's body need, made once per body. */
interface VariantBody {
  readonly out: CodeWriter;
  readonly plan: BodyPlan;
  readonly internal: InternalCallPlan;
  readonly roles: CallRoles | null;
  /** Number of imported functions. */
  readonly imported: number;
  /** The defined function's index. */
  readonly f: number;
  readonly fuelLocal: number;
  readonly depthLocal: number;
  /** The depth pass, when variants take the depth, else `null`. */
  readonly depth: DepthSlots | null;
  /** The same, with its traps inline in functions with loops. */
  readonly depthSlots: DepthSlots | null;
  /** The function's `DepthRole`. */
  readonly role: number;
  /** Whether charges write through to the fuel global (see `InternalCallPlan.writeThrough`). */
  readonly writeThrough: boolean;
}

/** Stores the fuel parameter in the global, unless charges write it through. */
function emitFuelStore(body: VariantBody): void {
  if (body.writeThrough) return;
  emitLocalToGlobal(body.out, body.fuelLocal, body.plan.fuel!.fuelGlobal);
}

/** Writes the charge of `record`, less the entry cost its callers pay, checking the depth too when planned. */
function emitVariantCharge(body: VariantBody, record: number): void {
  const { plan, internal, f } = body;
  let units = internal.cost[record]!;
  if (record === internal.entryRecord[f]!) units -= internal.entryCost[f]!;
  if (internal.depthAtCharge[record] === 1) {
    emitChargeAndDepthCheck(body, units, plan.chargeSlowPath);
  } else if (units > 0) {
    emitCharge(body, units, plan.fuelSlowPath);
  }
}

/**
 * Writes what a direct or indirect call of `target` (-1 when indirect) made
 * in record `record` needs: the call of the variant, its arguments passed,
 * when there is one (returns `true`: the call itself is not copied), else
 * the store of the depth when the callee may need it.
 */
function emitCall(body: VariantBody, target: number, record: number): boolean {
  const { out, internal, roles, depth } = body;
  const callee = target - body.imported;
  const variant = target >= 0 && callee >= 0 ? internal.internal[callee] ?? -1 : -1;
  if (variant >= 0) {
    const checked = internal.depthAtCharge[record] === 1;
    emitVariantCall(body, callee, variant, false, checked);
    if (body.writeThrough && internal.fresh[callee] === 0) {
      out.u8(0x22); // local.tee fuel: the callee's fuel left, which its global may not hold
      out.u32(body.fuelLocal);
      out.u8(0x24); // global.set fuel
      out.u32(body.plan.fuel!.fuelGlobal);
    } else {
      out.u8(0x21); // local.set fuel: the callee's fuel left
      out.u32(body.fuelLocal);
    }
    return true;
  }
  emitFuelStore(body);
  const known = target >= 0 && callee >= 0 && roles !== null && callee < roles.depthRole.length;
  if (
    depth !== null && body.role !== DepthRole.None &&
    !(known && roles.depthRole[callee] === DepthRole.None)
  ) {
    emitLocalToGlobal(out, body.depthLocal, depth.depthGlobal);
  }
  return false;
}

/** Writes the tail call of the variant of function `target`, made in `record` (-1 when unreachable). */
function emitTailCall(body: VariantBody, target: number, record: number): void {
  const callee = target - body.imported;
  const checked = record === -1 || body.internal.depthAtCharge[record] === 1;
  emitVariantCall(body, callee, body.internal.internal[callee]!, true, checked);
}

/**
 * Writes a charge of `units` against the fuel parameter (written through to
 * the global when the body does), whose slow path is one call (of
 * `slowPath`, `[] -> [fuel]`).
 */
function emitCharge(body: VariantBody, units: number, slowPath: number): void {
  const { out, fuelLocal: local } = body;
  emitFuelSubtract(out, body.plan.fuel!.fuelGlobal, local, units, true, body.writeThrough);
  emitOverdrawn(out, local);
  out.unlikelyIf();
  emitFuelStore(body);
  out.u8(0x10); // call the slow path
  out.u32(slowPath);
  out.u8(0x21); // local.set fuel
  out.u32(local);
  out.u8(0x0b); // end
}

/** `(func (result i64))` as a type section entry. */
export const FUEL_SLOW_PATH_TYPE: Uint8Array = new Uint8Array([0x60, 0x00, 0x01, 0x7e]);

/**
 * Writes the body (locals included, size excluded) of the slow path of a
 * variant's charge, `[] -> [fuel]`: it refills the slice (or runs out of fuel)
 * and returns the fuel global.
 */
export function emitFuelSlowPathBody(out: CodeWriter, fuel: FuelSlots): void {
  out.u8(0x00); // no locals
  if (fuel.refill === null) {
    emitTrap(out, TrapReason.Fuel, fuel.trapGlobal);
  } else {
    out.u8(0x10); // call refill
    out.u32(fuel.refill);
    out.u8(0x23); // global.get fuel
    out.u32(fuel.fuelGlobal);
  }
  out.u8(0x0b); // end
}

/** `(func (param i32) (result i64))` as a type section entry. */
export const CHARGE_SLOW_PATH_TYPE: Uint8Array = new Uint8Array([0x60, 0x01, 0x7f, 0x01, 0x7e]);

/**
 * Writes the body (locals included, size excluded) of the slow path of a
 * charge that also checks the depth, `[depth] -> [fuel]`: it refills (or runs
 * out of) fuel when the charge overdrew it, then traps when no depth is left,
 * and returns the fuel global. One call keeps the variants small, which V8
 * inlines into each other.
 */
export function emitChargeSlowPathBody(
  out: CodeWriter,
  fuel: FuelSlots,
  depth: NonNullable<BodyPlan["depth"]>,
): void {
  out.u8(0x00); // no locals
  out.u8(0x23); // global.get fuel
  out.u32(fuel.fuelGlobal);
  out.u8(0x42); // i64.const 0
  out.u8(0x00);
  out.u8(0x53); // i64.lt_s
  if (fuel.refill === null) {
    emitTrapIf(out, TrapReason.Fuel, fuel);
  } else {
    out.u8(0x04); // if
    out.u8(0x40);
    out.u8(0x10); // call refill
    out.u32(fuel.refill);
    out.u8(0x0b); // end
  }
  emitDepthLeft(out, 0);
  emitTrapIf(out, TrapReason.CallDepth, depth);
  out.u8(0x23); // global.get fuel
  out.u32(fuel.fuelGlobal);
  out.u8(0x0b); // end
}

/**
 * Writes a charge of `units` (maybe none) that also checks that the depth
 * allows one more counted frame, with one branch for both, whose slow path
 * is one call.
 */
function emitChargeAndDepthCheck(body: VariantBody, units: number, slowPath: number): void {
  const { out, fuelLocal, depthLocal } = body;
  if (units <= 0) {
    emitDepthTrap(body);
    return;
  }
  emitFuelSubtract(out, body.plan.fuel!.fuelGlobal, fuelLocal, units, true, body.writeThrough);
  emitOverdrawn(out, fuelLocal); // fuel < 0
  emitDepthLeft(out, depthLocal); // depth < 1
  out.u8(0x72); // i32.or: either (two compares measured faster than one of both or'ed)
  out.unlikelyIf();
  emitFuelStore(body);
  out.u8(0x20); // local.get depth
  out.u32(depthLocal);
  out.u8(0x10); // call the slow path
  out.u32(slowPath);
  out.u8(0x21); // local.set fuel
  out.u32(fuelLocal);
  out.u8(0x0b); // end
}

/** Writes a trap when the depth allows no counted callee, the fuel stored first. */
function emitDepthTrap(body: VariantBody): void {
  const { out } = body;
  const slots = body.depthSlots!;
  emitDepthLeft(out, body.depthLocal);
  if (body.writeThrough) {
    emitTrapIf(out, TrapReason.CallDepth, slots);
    return;
  }
  out.unlikelyIf();
  emitFuelStore(body);
  emitTrapBy(out, TrapReason.CallDepth, slots);
  out.u8(0x0b); // end
}

/** Writes `depth < 1`: no depth left for a counted callee. */
function emitDepthLeft(out: CodeWriter, depthLocal: number): void {
  out.u8(0x20); // local.get depth
  out.u32(depthLocal);
  out.u8(0x41); // i32.const 1
  out.u8(0x01);
  out.u8(0x48); // i32.lt_s
}

/**
 * Writes a call of a variant, its arguments already on the stack: checks the
 * depth when the callee is counted (unless `checked`), pushes the fuel and
 * the callee's depth.
 */
function emitVariantCall(
  body: VariantBody,
  callee: number,
  variant: number,
  tail: boolean,
  checked: boolean,
): void {
  const { out, fuelLocal, depthLocal, role } = body;
  const depth = body.depthSlots;
  const calleeRole = depth === null ? DepthRole.None : body.roles!.depthRole[callee]!;
  // The callee's depth: the caller's (one more when a counted caller's frame
  // is replaced), one less when the callee is counted.
  let delta = tail && role === DepthRole.Count ? 1 : 0;
  if (depth !== null && calleeRole === DepthRole.Count) {
    if (delta === 0 && !checked) emitDepthTrap(body);
    delta--;
  }
  // A callee that may trap before it charges anything (its entry record is
  // this body's to pay) expects the global to hold the fuel from its start.
  if (body.internal.writeThrough[callee] === 1) emitFuelStore(body);
  out.u8(0x20); // local.get fuel
  out.u32(fuelLocal);
  if (depth !== null) {
    out.u8(0x20); // local.get depth
    out.u32(depthLocal);
    if (delta !== 0) {
      out.u8(0x41); // i32.const ±1
      out.u8(0x01);
      out.u8(delta > 0 ? 0x6a : 0x6b); // i32.add / i32.sub
    }
  }
  out.u8(tail ? 0x12 : 0x10); // return_call / call
  out.u32(variant);
}

/** End of the instruction at `at` whose only immediate is one LEB128 (`return_call`, `local.get`...). */
function instructionEnd(bytes: Uint8Array, at: number): number {
  let p = at + 1;
  while ((bytes[p++]! & 0x80) !== 0);
  return p;
}

const inlined = new WeakMap<DepthSlots, DepthSlots>();

/** `slots` with its traps inline, made once per plan. */
function inlineTraps(slots: DepthSlots): DepthSlots {
  let found = inlined.get(slots);
  if (found === undefined) {
    found = { ...slots, trapFunction: null };
    inlined.set(slots, found);
  }
  return found;
}

/**
 * Writes the locals vector of a variant: the body's declared locals but the
 * first `added`, which go last since the new parameters take their indices.
 *
 * @returns Where the body's code starts, how many locals it declares and how many moved.
 */
function writeLocals(
  bytes: Uint8Array,
  start: number,
  end: number,
  added: number,
  out: CodeWriter,
): { codeStart: number; declared: number; count: number } {
  const reader = new CodeReader(bytes, start, end);
  const groups = reader.u32();
  const counts: number[] = [];
  const types: [number, number][] = [];
  let declared = 0;
  for (let i = 0; i < groups; i++) {
    const count = reader.u32();
    const type = reader.pos;
    reader.skipValueType();
    counts.push(count);
    types.push([type, reader.pos]);
    declared += count;
  }
  const count = Math.min(added, declared);
  const movedTypes: [number, number][] = [];
  let skip = count;
  let kept = 0;
  for (let i = 0; i < groups; i++) {
    const take = Math.min(skip, counts[i]!);
    for (let j = 0; j < take; j++) movedTypes.push(types[i]!);
    skip -= take;
    counts[i]! -= take;
    if (counts[i]! > 0) kept++;
  }
  out.u32(kept + movedTypes.length);
  for (let i = 0; i < groups; i++) {
    if (counts[i] === 0) continue;
    out.u32(counts[i]!);
    out.copy(bytes, types[i]![0], types[i]![1]);
  }
  for (const [from, to] of movedTypes) {
    out.u8(1);
    out.copy(bytes, from, to);
  }
  return { codeStart: reader.pos, declared, count };
}

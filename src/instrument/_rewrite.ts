/**
 * The single-pass body rewriter that applies the enabled passes to one
 * function body: it streams instructions from a {@linkcode CodeReader}, copies
 * untouched runs of bytes verbatim, and splices in the fuel charges, depth
 * bookkeeping and deadline checks at the points each pass asks for.
 *
 * @module
 */

import { CodeReader, CodeWriter, Nesting } from "./_code.ts";
import { Ctl } from "./_opcodes.ts";
import { emitFuelCharge, type FuelSlots, settleFuelCharge } from "./_fuel.ts";
import {
  type DepthSlots,
  emitDepthBeforeCall,
  emitDepthBeforeTailCall,
  emitDepthEntry,
} from "./_call_depth.ts";
import { type DeadlineSlots, emitDeadlineCheck } from "./_deadline.ts";

/** The passes to apply, with the module-level indices they use. */
export interface BodyPlan {
  /** Fuel metering, or `null` when off. */
  readonly fuel: FuelSlots | null;
  /** Call-depth limiting, or `null` when off. */
  readonly depth: DepthSlots | null;
  /** Deadline checks, or `null` when off. */
  readonly deadline: DeadlineSlots | null;
}

const I32 = 0x7f;
const I64 = 0x7e;

/** The byte sequences a body needs, which depend only on the first new local's index. */
interface Snippets {
  readonly entry: Uint8Array;
  readonly entryCheck: Uint8Array;
  readonly loopCheck: Uint8Array;
  readonly beforeCall: Uint8Array;
  readonly beforeTailCall: Uint8Array;
  /** The fuel charge up to its cost slot, and after it. */
  readonly chargeHead: Uint8Array;
  readonly chargeTail: Uint8Array;
}

const scratch = new CodeWriter(256);
const nesting = new Nesting();
let cachedPlan: BodyPlan | null = null;
const cache = new Map<number, Snippets>();

function snippet(write: (out: CodeWriter) => void): Uint8Array {
  scratch.length = 0;
  write(scratch);
  return scratch.finish();
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
  const clockTemp = deadline?.mode === "clock" ? next++ : -1;
  let chargeHead = new Uint8Array(0);
  let chargeTail = new Uint8Array(0);
  if (fuel !== null) {
    const whole = snippet((out) => emitFuelCharge(out, fuel, fuelTemp));
    scratch.length = 0;
    const at = emitFuelCharge(scratch, fuel, fuelTemp);
    chargeHead = whole.slice(0, at);
    chargeTail = whole.slice(at + 5);
  }
  found = {
    entry: snippet((out) => depth !== null && emitDepthEntry(out, depth, depthLocal)),
    entryCheck: snippet((out) => deadline !== null && emitDeadlineCheck(out, deadline, clockTemp)),
    loopCheck: snippet((out) => deadline !== null && emitDeadlineCheck(out, deadline, clockTemp)),
    beforeCall: snippet((out) => depth !== null && emitDepthBeforeCall(out, depth, depthLocal)),
    beforeTailCall: snippet((out) =>
      depth !== null && emitDepthBeforeTailCall(out, depth, depthLocal)
    ),
    chargeHead,
    chargeTail,
  };
  cache.set(firstNew, found);
  return found;
}

/** Writes a fuel charge from its snippets; returns the cost slot's position. */
function charge(out: CodeWriter, s: Snippets): number {
  out.bytes(s.chargeHead);
  const at = out.slot5();
  out.bytes(s.chargeTail);
  return at;
}

/**
 * Rewrites the body `bytes[start, end)` of a function with `paramCount`
 * parameters, appending the result (without its size prefix) to `out`.
 *
 * @throws {BinaryFormatError} When the body is malformed.
 */
export function rewriteBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  paramCount: number,
  plan: BodyPlan,
  out: CodeWriter,
): void {
  const { fuel, depth, deadline } = plan;
  const reader = new CodeReader(bytes, start, end);
  const groups = reader.u32();
  const groupsStart = reader.pos;
  let declared = 0;
  for (let i = 0; i < groups; i++) {
    declared += reader.u32();
    reader.skipValueType();
  }
  let copied = reader.pos;

  // New locals go after every existing one, so no local is renumbered.
  const s = snippets(plan, paramCount + declared);
  const i32Count = (depth !== null ? 1 : 0) + (deadline?.mode === "clock" ? 1 : 0);
  out.u32(groups + (fuel === null ? 0 : 1) + (i32Count === 0 ? 0 : 1));
  out.copy(bytes, groupsStart, copied);
  if (fuel !== null) {
    out.u8(1);
    out.u8(I64);
  }
  if (i32Count !== 0) {
    out.u8(i32Count);
    out.u8(I32);
  }

  out.bytes(s.entry);
  // A function that calls nothing and has no loop runs in bounded time, so its
  // entry check is dropped once the body turns out to be such a leaf.
  const entryCheckStart = out.length;
  out.bytes(s.entryCheck);
  const entryCheckEnd = out.length;
  let calls = false;
  // Fuel segment state: the open segment's cost slot (-1 when the code is unreachable).
  let slot = fuel === null ? -1 : charge(out, s);
  let cost = 0;

  nesting.reset();
  while (true) {
    const ctl = reader.next();
    cost++;
    if (ctl === Ctl.None) continue;
    if (ctl === Ctl.Call) {
      calls = true;
      if (depth !== null) {
        out.copy(bytes, copied, reader.start);
        copied = reader.start;
        out.bytes(s.beforeCall);
      }
      continue;
    }
    if (ctl === Ctl.TailCall) calls = true;
    if (ctl === Ctl.TailCall && depth !== null) {
      out.copy(bytes, copied, reader.start);
      copied = reader.start;
      out.bytes(s.beforeTailCall);
    }
    const last = nesting.step(reader, ctl);
    if (last) break;
    // Whether a new metered segment starts after this instruction.
    let opens: boolean;
    switch (ctl) {
      case Ctl.Block:
      case Ctl.Try:
        continue;
      case Ctl.End:
        // After a loop's end only its own fall-through arrives: same segment.
        if (nesting.endedLoop) continue;
        opens = true;
        break;
      case Ctl.Jump:
      case Ctl.TailCall:
        opens = false;
        break;
      default: // Loop, If, Else, Catch, Delegate, Branch
        opens = true;
    }
    if (fuel === null && ctl !== Ctl.Loop) continue;
    out.copy(bytes, copied, reader.pos);
    copied = reader.pos;
    if (slot >= 0) settleFuelCharge(out, slot, cost);
    slot = -1;
    if (ctl === Ctl.Loop) out.bytes(s.loopCheck);
    if (opens && fuel !== null) {
      slot = charge(out, s);
      cost = 0;
    }
  }
  nesting.finish(reader);
  if (slot >= 0) settleFuelCharge(out, slot, cost);
  out.copy(bytes, copied, end);
  if (!calls && entryCheckEnd > entryCheckStart) {
    // Every fuel slot is settled, so later code can move.
    out.buf.copyWithin(entryCheckStart, entryCheckEnd, out.length);
    out.length -= entryCheckEnd - entryCheckStart;
  }
}

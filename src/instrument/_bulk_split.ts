/**
 * Large `memory.fill`, `memory.copy`, `table.fill` and `table.copy`
 * instructions in steps, with the deadline checked between them.
 *
 * The bulk gate (`_bulk.ts`) charges an instruction's fuel and checks the
 * deadline before it, but one instruction runs as long as its length asks:
 * a single fill of 1 GiB held an inline call for 0.4–0.6 s past a 50 ms
 * deadline (6 s on fresh memory, whose pages the system then maps), and a
 * worker's guest was terminated; a `table.fill` of 10 million elements took
 * 0.1 s. So with a deadline, each of these instructions becomes a call of an
 * appended function of the same operands that:
 *
 * - runs the instruction whole when its length is at most one step
 *   ({@linkcode SPLIT_BYTES} or {@linkcode SPLIT_ELEMENTS}), or when it is
 *   out of bounds (so it traps before it writes anything, as the
 *   instruction does);
 * - else does it one step at a time, checking the deadline after each; a
 *   copy goes from the end when its destination is above its source, so
 *   overlapping ranges move as one copy moves them.
 *
 * What the bytes end up as is the instruction's, unless the deadline stops
 * the call midway (then part of a fill or a copy is done, as part of a loop
 * is). Fuel is the gate's business and does not change.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { type DeadlinePollSlots, emitDeadlinePoll } from "./_deadline.ts";

/** Bytes a split memory instruction moves between two deadline checks: 1 MiB. */
export const SPLIT_BYTES = 1 << 20;

/** Elements a split table instruction sets between two deadline checks. */
export const SPLIT_ELEMENTS = 1 << 14;

/** Sub-opcodes (after `0xFC`) of the instructions that are split. */
export const SplitOp = { Copy: 10, Fill: 11, TableCopy: 14, TableFill: 17 } as const;

/** One distinct split instruction of a module (by its memories or tables). */
export interface SplitInstruction {
  /** A {@linkcode SplitOp}. */
  readonly op: number;
  /** The memory or table written. */
  readonly dst: number;
  /** The one read (a copy's source; the one written, for a fill). */
  readonly src: number;
  /** Whether the one written has 64-bit addresses. */
  readonly dst64: boolean;
  /** Whether the one read has 64-bit addresses. */
  readonly src64: boolean;
  /** A fill's value type, as encoded (`i32` for memory, the table's reference type). */
  readonly value: Uint8Array | null;
}

function isFill(split: SplitInstruction): boolean {
  return split.op === SplitOp.Fill || split.op === SplitOp.TableFill;
}

function isTable(split: SplitInstruction): boolean {
  return split.op === SplitOp.TableCopy || split.op === SplitOp.TableFill;
}

/** Units of one step. */
function stepOf(split: SplitInstruction): number {
  return isTable(split) ? SPLIT_ELEMENTS : SPLIT_BYTES;
}

const I32 = 0x7f;
const I64 = 0x7e;

/** The type of the length: 64-bit only when every memory or table involved is. */
function lengthIs64(split: SplitInstruction): boolean {
  return split.dst64 && split.src64;
}

/**
 * The function type entry of the replacement of `split`: the instruction's
 * operands, no results (`[d, value, n]` for a fill, `[d, s, n]` for a copy).
 */
export function splitFunctionType(split: SplitInstruction): Uint8Array {
  const second = isFill(split) ? split.value! : [split.src64 ? I64 : I32];
  return new Uint8Array([
    0x60,
    0x03,
    split.dst64 ? I64 : I32,
    ...second,
    lengthIs64(split) ? I64 : I32,
    0x00,
  ]);
}

/** Parameters (the operands), then the i64 locals: destination, source and bytes left. */
const [dstParam, secondParam, lengthParam, dst, src, left] = [0, 1, 2, 3, 4, 5];

/**
 * Writes the body (locals included, size excluded) of the function replacing
 * `split` at its sites: the instruction itself when its length is at most
 * one step, else a call of `steps` (small enough for the engine to inline:
 * the many short copies of compiled code pay no call).
 *
 * @param out Where to write.
 * @param split The instruction.
 * @param steps Index of the function written by {@linkcode emitSplitBody}.
 */
export function emitSplitDispatchBody(
  out: CodeWriter,
  split: SplitInstruction,
  steps: number,
): void {
  out.u8(0x00); // no locals
  getLocal(out, lengthParam);
  if (lengthIs64(split)) {
    emitStepLength(out, split);
    out.u8(0x58); // i64.le_u
  } else {
    out.u8(0x41); // i32.const step
    out.s32(stepOf(split));
    out.u8(0x4d); // i32.le_u
  }
  out.u8(0x04); // if
  out.u8(0x40);
  for (const param of [dstParam, secondParam, lengthParam]) getLocal(out, param);
  emitInstruction(out, split);
  out.u8(0x0f); // return
  out.u8(0x0b); // end
  for (const param of [dstParam, secondParam, lengthParam]) getLocal(out, param);
  out.u8(0x10); // call steps
  out.u32(steps);
  out.u8(0x0b); // end
}

/**
 * Writes the body (locals included, size excluded) of the function that
 * does `split` in steps (or whole, when it is short or out of bounds).
 *
 * @param out Where to write.
 * @param split The instruction.
 * @param poll The deadline check to run between steps.
 */
export function emitSplitBody(
  out: CodeWriter,
  split: SplitInstruction,
  poll: DeadlinePollSlots,
): void {
  const copy = !isFill(split);
  out.u8(1); // locals: i64 dst, src, left
  out.u8(3);
  out.u8(I64);
  emitWidened(out, dstParam, split.dst64);
  setLocal(out, dst);
  if (copy) {
    emitWidened(out, secondParam, split.src64);
    setLocal(out, src);
  }
  emitWidened(out, lengthParam, lengthIs64(split));
  setLocal(out, left);
  // Short, or out of bounds: the instruction whole (it traps before writing, as it would).
  getLocal(out, left);
  emitStepLength(out, split);
  out.u8(0x58); // i64.le_u
  emitOutOfBounds(out, split, split.dst, split.dst64, dst);
  out.u8(0x72); // i32.or
  if (copy) {
    emitOutOfBounds(out, split, split.src, split.src64, src);
    out.u8(0x72); // i32.or
  }
  out.u8(0x04); // if
  out.u8(0x40);
  getLocal(out, dstParam);
  getLocal(out, secondParam);
  getLocal(out, lengthParam);
  emitInstruction(out, split);
  out.u8(0x0f); // return
  out.u8(0x0b); // end
  if (!copy) {
    emitForward(out, split, poll);
  } else {
    // From the start when the destination is below the source, else from the end.
    getLocal(out, dst);
    getLocal(out, src);
    out.u8(0x58); // i64.le_u
    out.u8(0x04); // if
    out.u8(0x40);
    emitForward(out, split, poll);
    out.u8(0x05); // else
    emitBackward(out, split, poll);
    out.u8(0x0b); // end
  }
  out.u8(0x0b); // end
}

/** Writes the steps from the start, then the rest (at most one step). */
function emitForward(out: CodeWriter, split: SplitInstruction, poll: DeadlinePollSlots): void {
  out.u8(0x03); // loop
  out.u8(0x40);
  emitPart(out, split, { at: "start", length: "step" });
  for (const local of isFill(split) ? [dst] : [dst, src]) {
    getLocal(out, local);
    emitStepLength(out, split);
    out.u8(0x7c); // i64.add
    setLocal(out, local);
  }
  emitLeftMinusStep(out, split);
  emitLoopEnd(out, split, poll);
}

/** Writes the steps from the end, then the rest (at most one step) at the start. */
function emitBackward(out: CodeWriter, split: SplitInstruction, poll: DeadlinePollSlots): void {
  out.u8(0x03); // loop
  out.u8(0x40);
  emitLeftMinusStep(out, split);
  emitPart(out, split, { at: "left", length: "step" });
  emitLoopEnd(out, split, poll);
}

/**
 * Writes the end of a loop of steps: the deadline check, another step while
 * more than one is left, then the rest (at most one step) at the start.
 */
function emitLoopEnd(out: CodeWriter, split: SplitInstruction, poll: DeadlinePollSlots): void {
  emitDeadlinePoll(out, poll);
  emitMoreThanStep(out, split);
  out.u8(0x0d); // br_if 0: the loop
  out.u8(0x00);
  out.u8(0x0b); // end loop
  emitPart(out, split, { at: "start", length: "left" });
}

/**
 * Writes one instruction over part of the range: at its start or `left`
 * units into it, of one step's length or of the units left.
 */
function emitPart(
  out: CodeWriter,
  split: SplitInstruction,
  part: { readonly at: "start" | "left"; readonly length: "step" | "left" },
): void {
  const address = (local: number, is64: boolean): void => {
    getLocal(out, local);
    if (part.at === "left") {
      getLocal(out, left);
      out.u8(0x7c); // i64.add
    }
    if (!is64) out.u8(0xa7); // i32.wrap_i64
  };
  address(dst, split.dst64);
  if (isFill(split)) getLocal(out, secondParam);
  else address(src, split.src64);
  if (part.length === "step") emitStepLength(out, split);
  else getLocal(out, left);
  if (!lengthIs64(split)) out.u8(0xa7); // i32.wrap_i64
  emitInstruction(out, split);
}

/** Writes `left -= step`. */
function emitLeftMinusStep(out: CodeWriter, split: SplitInstruction): void {
  getLocal(out, left);
  emitStepLength(out, split);
  out.u8(0x7d); // i64.sub
  setLocal(out, left);
}

/** Writes `left > step` (unsigned). */
function emitMoreThanStep(out: CodeWriter, split: SplitInstruction): void {
  getLocal(out, left);
  emitStepLength(out, split);
  out.u8(0x56); // i64.gt_u
}

/**
 * Writes whether `left` units at the address in local `local` go past the
 * end of memory or table `index`: `left > size || address > size - left`
 * (unsigned).
 */
function emitOutOfBounds(
  out: CodeWriter,
  split: SplitInstruction,
  index: number,
  is64: boolean,
  local: number,
): void {
  getLocal(out, left);
  emitSize(out, split, index, is64);
  out.u8(0x56); // i64.gt_u
  getLocal(out, local);
  emitSize(out, split, index, is64);
  getLocal(out, left);
  out.u8(0x7d); // i64.sub
  out.u8(0x56); // i64.gt_u
  out.u8(0x72); // i32.or
}

/** Writes the size of memory or table `index` in its units (bytes, elements), as an i64. */
function emitSize(out: CodeWriter, split: SplitInstruction, index: number, is64: boolean): void {
  if (isTable(split)) {
    out.u8(0xfc); // table.size
    out.u32(16);
    out.u32(index);
    if (!is64) out.u8(0xad); // i64.extend_i32_u
    return;
  }
  out.u8(0x3f); // memory.size
  out.u32(index);
  if (!is64) out.u8(0xad); // i64.extend_i32_u
  out.u8(0x42); // i64.const 16
  out.u8(16);
  out.u8(0x86); // i64.shl
}

/** Writes the instruction itself, on the operands on the stack. */
function emitInstruction(out: CodeWriter, split: SplitInstruction): void {
  out.u8(0xfc);
  out.u32(split.op);
  out.u32(split.dst);
  if (!isFill(split)) out.u32(split.src);
}

/** Writes parameter `param` as an i64 (zero-extended when 32-bit). */
function emitWidened(out: CodeWriter, param: number, is64: boolean): void {
  getLocal(out, param);
  if (!is64) out.u8(0xad); // i64.extend_i32_u
}

/** Writes one step's length as an i64 constant. */
function emitStepLength(out: CodeWriter, split: SplitInstruction): void {
  out.u8(0x42); // i64.const step
  out.s64(BigInt(stepOf(split)));
}

function getLocal(out: CodeWriter, local: number): void {
  out.u8(0x20);
  out.u32(local);
}

function setLocal(out: CodeWriter, local: number): void {
  out.u8(0x21);
  out.u32(local);
}

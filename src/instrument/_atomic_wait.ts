/**
 * Atomic waits that cannot outlive the deadline. `memory.atomic.wait32` and
 * `memory.atomic.wait64` block the thread until another thread notifies the
 * address or the timeout (in nanoseconds, negative for none) expires. A
 * plugin has no other thread, so an infinite wait never ends: not at the
 * deadline, since no check runs while the thread sleeps, and in a worker not
 * even at `Worker.terminate()`, which cannot wake a sleeping thread.
 *
 * With the deadline pass on, the rewriter (`_rewrite.ts`) replaces each wait
 * by a call to an appended function with the instruction's own signature,
 * one per distinct instruction (sub-opcode and memory argument). It waits in
 * slices of at most {@linkcode WAIT_SLICE_NS} with the very same instruction,
 * so that unaligned, out-of-bounds and unshared-memory waits trap as before,
 * and checks the deadline (the clock hook) after each slice that timed out,
 * including the last: a guest looping over short waits sleeps through no
 * deadline either. Its
 * result is the instruction's: 1 when the value differs at the start, 2 once
 * slices have waited out the guest's own timeout, 0 when a slice is
 * notified. A later slice that finds the value changed (a notifier that
 * wrote before its notify came between two slices) also answers 0, which is
 * what the notify would have made the original answer.
 *
 * @module
 */

import type { CodeWriter } from "./_code.ts";
import { type DeadlinePollSlots, emitDeadlinePoll } from "./_deadline.ts";

/** Longest slice a rewritten wait sleeps before checking the deadline: 10 ms. */
export const WAIT_SLICE_NS = 10_000_000n;

/** Sub-opcodes (after `0xFE`) of the waits. */
export const WaitOp = { Wait32: 1, Wait64: 2 } as const;

/** One distinct wait instruction of a module. */
export interface WaitInstruction {
  /** {@linkcode WaitOp.Wait32} or {@linkcode WaitOp.Wait64}. */
  readonly op: number;
  /** Index of the memory it waits on. */
  readonly memory: number;
  /** Its memory argument, as encoded. */
  readonly memarg: Uint8Array;
}

/**
 * The function type entry replacing `wait`:
 * `[address, expected, i64] -> [i32]`.
 *
 * @param wait The instruction.
 * @param memory64 Whether its memory has 64-bit addresses.
 */
export function waitFunctionType(wait: WaitInstruction, memory64: boolean): Uint8Array {
  return new Uint8Array([
    0x60,
    0x03,
    memory64 ? 0x7e : 0x7f,
    wait.op === WaitOp.Wait64 ? 0x7e : 0x7f,
    0x7e,
    0x01,
    0x7f,
  ]);
}

/**
 * Writes the body (locals included, size excluded) of the function replacing
 * `wait`.
 *
 * @param out Where to write.
 * @param wait The instruction.
 * @param poll The deadline check to run between slices.
 */
export function emitWaitBody(
  out: CodeWriter,
  wait: WaitInstruction,
  poll: DeadlinePollSlots,
): void {
  out.u8(2); // locals: i64 slice; i32 result, later
  out.u8(1);
  out.u8(0x7e);
  out.u8(2);
  out.u8(0x7f);
  out.u8(0x03); // loop
  out.u8(0x40);
  emitWaitSlice(out, wait);
  // After every slice, the last one too: a loop of short waits would
  // otherwise sleep between clock reads, which fuel does not pace.
  emitDeadlinePoll(out, poll);
  emitTimeoutLeft(out);
  out.u8(0x41); // later = 1
  out.u8(0x01);
  out.u8(0x21);
  out.u32(later);
  out.u8(0x0c); // br to the loop
  out.u8(0x00);
  out.u8(0x0b); // end loop
  out.u8(0x00); // unreachable
  out.u8(0x0b); // end
}

/** Locals of the wait's replacement: its parameters, then the slice, the wait's result and whether a slice timed out. */
const [address, expected, timeout, slice, result, later] = [0, 1, 2, 3, 4, 5];

/** Writes a wait of at most one slice, returning unless it timed out (0 once a slice did). */
function emitWaitSlice(out: CodeWriter, wait: WaitInstruction): void {
  out.u8(0x20); // local.get address
  out.u32(address);
  out.u8(0x20); // local.get expected
  out.u32(expected);
  // slice = timeout >u SLICE ? SLICE : timeout (a negative timeout is infinite)
  out.u8(0x42);
  out.s64(WAIT_SLICE_NS);
  out.u8(0x20);
  out.u32(timeout);
  out.u8(0x20);
  out.u32(timeout);
  out.u8(0x42);
  out.s64(WAIT_SLICE_NS);
  out.u8(0x56); // i64.gt_u
  out.u8(0x1b); // select
  out.u8(0x22); // local.tee slice
  out.u32(slice);
  out.u8(0xfe); // the guest's own wait instruction
  out.u32(wait.op);
  out.bytes(wait.memarg);
  out.u8(0x22); // local.tee result
  out.u32(result);
  out.u8(0x41); // i32.const 2
  out.u8(0x02);
  out.u8(0x47); // i32.ne
  out.u8(0x04); // if woken or not equal: return later ? 0 : result
  out.u8(0x40);
  out.u8(0x41);
  out.u8(0x00);
  out.u8(0x20);
  out.u32(result);
  out.u8(0x20);
  out.u32(later);
  out.u8(0x1b); // select
  out.u8(0x0f); // return
  out.u8(0x0b);
}

/** Writes: a finite timeout counts the slice down, and the wait returns 2 (timed out) when none is left. */
function emitTimeoutLeft(out: CodeWriter): void {
  out.u8(0x20); // if timeout >= 0 (finite)
  out.u32(timeout);
  out.u8(0x42);
  out.u8(0x00);
  out.u8(0x59); // i64.ge_s
  out.u8(0x04);
  out.u8(0x40);
  out.u8(0x20); // if (timeout -= slice) <= 0: return 2
  out.u32(timeout);
  out.u8(0x20);
  out.u32(slice);
  out.u8(0x7d); // i64.sub
  out.u8(0x22);
  out.u32(timeout);
  out.u8(0x42);
  out.u8(0x00);
  out.u8(0x57); // i64.le_s
  out.u8(0x04);
  out.u8(0x40);
  out.u8(0x41);
  out.u8(0x02);
  out.u8(0x0f); // return
  out.u8(0x0b);
  out.u8(0x0b);
}

/**
 * The system calls that are not about files: arguments, environment,
 * clocks, randomness, `poll_oneoff`, `sched_yield` and `proc_exit`.
 *
 * @module
 */

import { Capability } from "../capability.ts";
import { CapabilityDeniedError } from "../errors.ts";
import { ClockId, EventType, Size, SUBCLOCK_ABSTIME } from "./_abi.ts";
import { Errno, ErrnoError, fail } from "./_errno.ts";
import type { Descriptor } from "./_fd_table.ts";
import type { Guest } from "./_guest.ts";
import type { SystemCall, WasiState } from "./_state.ts";
import { WasiExit } from "./wasi_exit.ts";

/** What every clock reports as its resolution: 1 µs. */
const RESOLUTION_NS = 1_000n;

/** `FD_READWRITE_HANGUP` of `eventrwflags`. */
const HANGUP = 1;

/** Random bytes per `crypto.getRandomValues` call, its limit. */
const RANDOM_CHUNK = 65_536;

/** Writes a string table (`args_get`, `environ_get`): pointers at `ptrs`, bytes at `buf`. */
function writeStrings(
  guest: Guest,
  strings: readonly Uint8Array[],
  ptrs: number,
  buf: number,
): void {
  const total = strings.reduce((sum, s) => sum + s.length, 0);
  guest.check(ptrs, strings.length * 4);
  guest.check(buf, total);
  let at = buf;
  strings.forEach((s, i) => {
    guest.setU32(ptrs + i * 4, at);
    guest.write(at, s);
    at += s.length;
  });
}

/** Writes the sizes of a string table (`args_sizes_get`, `environ_sizes_get`). */
function writeSizes(
  guest: Guest,
  strings: readonly Uint8Array[],
  countPtr: number,
  sizePtr: number,
): void {
  guest.check(countPtr, 4);
  guest.check(sizePtr, 4);
  guest.setU32(countPtr, strings.length);
  guest.setU32(sizePtr, strings.reduce((sum, s) => sum + s.length, 0));
}

/** One parsed `poll_oneoff` subscription. */
interface Subscription {
  readonly userdata: bigint;
  readonly type: number;
  /** Clocks: nanoseconds until it fires (≤ 0: already due). */
  readonly dueInNs: bigint;
  /** fd subscriptions (and clocks with a bad id): the event's result. */
  readonly error: number;
  readonly nbytes: bigint;
  readonly flags: number;
}

/** The current time of a clock in nanoseconds; `EINVAL` for an unknown clock. */
function now(state: WasiState, id: number): bigint {
  switch (id) {
    case ClockId.REALTIME:
      return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1_000n;
    case ClockId.MONOTONIC:
      // From the epoch, not from this thread's start: a worker plugin parked and restored in a
      // new worker carries on from its memory, with deadlines it computed on the old clock.
      return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1_000n;
    case ClockId.PROCESS_CPUTIME:
    case ClockId.THREAD_CPUTIME:
      // No CPU-time clock in Deno: the time since the instance was created.
      return BigInt(
        Math.round((performance.timeOrigin + performance.now() - state.createdAt) * 1e6),
      );
    default:
      return fail(Errno.INVAL);
  }
}

/** Reads the subscription at `ptr`. */
function subscription(state: WasiState, guest: Guest, ptr: number): Subscription {
  const userdata = guest.u64(ptr);
  const type = guest.u8(ptr + 8);
  const ready = { userdata, type, dueInNs: 0n, error: Errno.SUCCESS, nbytes: 0n, flags: 0 };
  if (type === EventType.CLOCK) {
    const timeout = guest.u64(ptr + 24);
    const absolute = (guest.u16(ptr + 40) & SUBCLOCK_ABSTIME) !== 0;
    try {
      const current = now(state, guest.u32(ptr + 16));
      return { ...ready, dueInNs: absolute ? timeout - current : timeout };
    } catch (err) {
      if (!(err instanceof ErrnoError)) throw err;
      return { ...ready, error: err.errno };
    }
  }
  if (type !== EventType.FD_READ && type !== EventType.FD_WRITE) {
    return { ...ready, error: Errno.INVAL };
  }
  // Stdio and regular files never block, so fd subscriptions are ready at once.
  let entry: Descriptor | undefined;
  try {
    entry = state.fds.get(guest.u32(ptr + 16));
  } catch (err) {
    if (!(err instanceof ErrnoError)) throw err;
  }
  if (entry === undefined || entry.kind === "directory") return { ...ready, error: Errno.BADF };
  if (type === EventType.FD_READ && entry.kind === "stdin") {
    const left = state.stdin.length - state.stdinOffset;
    return { ...ready, nbytes: BigInt(left), flags: left === 0 ? HANGUP : 0 };
  }
  if (type === EventType.FD_READ && entry.kind === "file") {
    // As wasmtime: the bytes between the file's position and its end.
    const { file } = entry;
    const left = file.statSync().size - file.seekSync(0, Deno.SeekMode.Current);
    return { ...ready, nbytes: BigInt(Math.max(left, 0)) };
  }
  return ready;
}

/**
 * The subscriptions that fire: every one that is not a clock or is already
 * due; when there are only clocks and none is due, sleeps until the first
 * one is. The sleep checks the checkpoint at least every 10 ms, so a sleep
 * past the call's deadline ends the call there (with the runner's timeout
 * error), not when the clock fires.
 */
function fire(state: WasiState, subscriptions: readonly Subscription[]): Subscription[] {
  const isClock = (s: Subscription): boolean => s.type === EventType.CLOCK && s.error === 0;
  const fired = subscriptions.filter((s) => !isClock(s) || s.dueInNs <= 0n);
  if (fired.length > 0) return fired;
  const clocks = subscriptions.filter(isClock);
  const first = clocks.reduce((a, b) => (b.dueInNs < a.dueInNs ? b : a));
  state.sleep(Number(first.dueInNs) / 1e6);
  return clocks.filter((s) => s.dueInNs <= first.dueInNs);
}

/** Writes the `event`s of `fired` at `output`. */
function writeEvents(guest: Guest, output: number, fired: readonly Subscription[]): void {
  guest.bytes(output, fired.length * Size.EVENT).fill(0);
  fired.forEach((s, i) => {
    const at = output + i * Size.EVENT;
    guest.setU64(at, s.userdata);
    guest.setU16(at + 8, s.error);
    guest.setU8(at + 10, s.type);
    guest.setU64(at + 16, s.nbytes);
    guest.setU16(at + 24, s.flags);
  });
}

/** How many `poll_oneoff` subscriptions are read between checks of the call's deadline. */
const SUBSCRIPTIONS_PER_CHECKPOINT = 1024;

/**
 * The most subscriptions one `poll_oneoff` takes; more are `EINVAL`, as
 * Linux's `poll` refuses more descriptors than the process may open. Each
 * costs the host about 150 bytes while the call runs: a guest that passed
 * millions (its memory full of them) held gigabytes of the host's heap.
 */
export const MAX_SUBSCRIPTIONS = 65_536;

/** The system calls on the process and its environment, by their WASI names. */
export const PROCESS_CALLS: Readonly<Record<string, SystemCall>> = {
  args_get(state, argv: number, buf: number): number {
    writeStrings(state.guest(), state.args, argv, buf);
    return Errno.SUCCESS;
  },

  args_sizes_get(state, countPtr: number, sizePtr: number): number {
    writeSizes(state.guest(), state.args, countPtr, sizePtr);
    return Errno.SUCCESS;
  },

  environ_get(state, environ: number, buf: number): number {
    writeStrings(state.guest(), state.env, environ, buf);
    return Errno.SUCCESS;
  },

  environ_sizes_get(state, countPtr: number, sizePtr: number): number {
    writeSizes(state.guest(), state.env, countPtr, sizePtr);
    return Errno.SUCCESS;
  },

  clock_res_get(state, id: number, ptr: number): number {
    const guest = state.guest();
    guest.check(ptr, 8);
    now(state, id);
    guest.setU64(ptr, RESOLUTION_NS);
    return Errno.SUCCESS;
  },

  clock_time_get(state, id: number, _precision: bigint, ptr: number): number {
    const guest = state.guest();
    guest.check(ptr, 8);
    guest.setU64(ptr, now(state, id));
    return Errno.SUCCESS;
  },

  random_get(state, buf: number, len: number): number {
    if (!state.random) {
      throw new CapabilityDeniedError(
        `Capability denied: WASI random_get needs the "${Capability.Random}" capability`,
        { capability: Capability.Random },
      );
    }
    const guest = state.guest();
    guest.check(buf, len);
    for (let at = 0; at < len; at += RANDOM_CHUNK) {
      if (at % (16 * RANDOM_CHUNK) === 0) state.checkpoint();
      // A fresh array: getRandomValues may refuse a view of shared memory.
      guest.write(
        buf + at,
        crypto.getRandomValues(new Uint8Array(Math.min(RANDOM_CHUNK, len - at))),
      );
    }
    return Errno.SUCCESS;
  },

  poll_oneoff(state, input: number, output: number, count: number, neventsPtr: number): number {
    // A count is unsigned: a negative i32 is one past the largest.
    if (count === 0 || count >>> 0 > MAX_SUBSCRIPTIONS) fail(Errno.INVAL);
    const guest = state.guest();
    guest.check(input, count * Size.SUBSCRIPTION);
    guest.check(output, count * Size.EVENT);
    guest.check(neventsPtr, 4);
    const subscriptions: Subscription[] = [];
    for (let i = 0; i < count; i++) {
      // A guest may pass hundreds of thousands: the call's deadline holds between slices.
      if (i % SUBSCRIPTIONS_PER_CHECKPOINT === SUBSCRIPTIONS_PER_CHECKPOINT - 1) state.checkpoint();
      subscriptions.push(subscription(state, guest, input + i * Size.SUBSCRIPTION));
    }
    const fired = fire(state, subscriptions);
    writeEvents(guest, output, fired);
    guest.setU32(neventsPtr, fired.length);
    return Errno.SUCCESS;
  },

  sched_yield(): number {
    return Errno.SUCCESS;
  },

  proc_exit(state, code: number): number {
    state.exitCode = code;
    throw new WasiExit(code);
  },
};

/**
 * What the system calls of one WASI instance share.
 *
 * @module
 */

import type { FdTable } from "./_fd_table.ts";
import type { Guest } from "./_guest.ts";
import type { CapturedOutput } from "./_output.ts";
import type { WriteGrant } from "./_write_grant.ts";

/** The state of one WASI instance. */
export interface WasiState {
  /** A bounds-checked view of the guest's memory, fresh for each call. */
  guest(): Guest;
  readonly fds: FdTable;
  /** `argv` strings, UTF-8 with their terminating NUL. */
  readonly args: readonly Uint8Array[];
  /** `KEY=value` strings, UTF-8 with their terminating NUL. */
  readonly env: readonly Uint8Array[];
  readonly stdin: Uint8Array;
  /** How much of `stdin` the guest has read. */
  stdinOffset: number;
  readonly stdout: CapturedOutput;
  readonly stderr: CapturedOutput;
  /** The paths the program may change (as far as Deno allows too). */
  readonly writable: WriteGrant;
  /** Whether `random_get` is granted. */
  readonly random: boolean;
  /**
   * Blocks the thread for `ms` milliseconds (`poll_oneoff`), calling
   * {@linkcode checkpoint} at least every 10 ms, so it throws once the call
   * must end.
   */
  readonly sleep: (ms: number) => void;
  /**
   * Throws when the running call must end (its deadline passed, its host
   * asked it to stop). Long system calls call it between slices of their
   * work: every wait, every mebibyte moved, every few hundred entries.
   */
  readonly checkpoint: () => void;
  /**
   * When the instance was created (`performance.timeOrigin +
   * performance.now()`, comparable across threads), the zero of the CPU-time
   * clocks; a restored instance takes over the parked one's.
   */
  createdAt: number;
  /** Set by `proc_exit`. */
  exitCode: number | undefined;
}

/**
 * The state of each {@linkcode WasiPreview1}, for the library's own use
 * (a parked plugin worker must know whether its WASI state changed).
 */
export const wasiStates: WeakMap<object, WasiState> = new WeakMap();

/**
 * A system call of one WASI instance, `state`, with its arguments already
 * converted (see `SIGNATURES`); it returns an errno, or throws an
 * `ErrnoError`.
 */
// deno-lint-ignore no-explicit-any
export type SystemCall = (state: WasiState, ...args: any[]) => number;

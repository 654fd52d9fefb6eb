/**
 * Moving bytes between the guest's iovecs and stdio or host files, in
 * chunks with a checkpoint before each: a guest that reads or writes
 * gigabytes is stopped at its deadline, not when it is done.
 *
 * @module
 */

import { Errno, fail } from "./_errno.ts";
import type { Guest, Span } from "./_guest.ts";
import type { CapturedOutput } from "./_output.ts";
import type { WasiState } from "./_state.ts";

/** The most bytes one host read or write moves between checkpoints. */
const IO_CHUNK = 1024 * 1024;

/**
 * Walks `spans` in pieces of at most {@linkcode IO_CHUNK} bytes, calling
 * `checkpoint` and then `move` on each. `move` returns how many bytes it
 * moved; fewer than asked (a short read) ends the walk. Returns the total.
 */
function inChunks(
  spans: readonly Span[],
  checkpoint: () => void,
  move: (ptr: number, len: number) => number,
): number {
  let total = 0;
  for (const span of spans) {
    for (let at = 0; at < span.len;) {
      checkpoint();
      const len = Math.min(IO_CHUNK, span.len - at);
      const n = move(span.ptr + at, len);
      total += n;
      at += n;
      if (n < len) return total;
    }
  }
  return total;
}

/**
 * Reads into `spans` until one is not filled (a short read or the end of
 * the file), at most {@linkcode IO_CHUNK} bytes at a time.
 */
export function readSpans(
  file: Deno.FsFile,
  guest: Guest,
  spans: readonly Span[],
  checkpoint: () => void,
): number {
  return inChunks(spans, checkpoint, (ptr, len) => {
    const chunk = new Uint8Array(len);
    const n = file.readSync(chunk) ?? 0;
    guest.write(ptr, chunk.subarray(0, n));
    return n;
  });
}

/** Writes every byte of `spans` to `file`, at most {@linkcode IO_CHUNK} bytes at a time. */
export function writeSpans(
  file: Deno.FsFile,
  guest: Guest,
  spans: readonly Span[],
  checkpoint: () => void,
): number {
  return inChunks(spans, checkpoint, (ptr, len) => {
    // A copy: Deno's write takes no view of (possibly shared) wasm memory.
    const data = guest.bytes(ptr, len).slice();
    for (let done = 0; done < data.length;) done += file.writeSync(data.subarray(done));
    return data.length;
  });
}

/** The largest offset a file may have: a larger `off_t` is negative (`EINVAL`). */
export const MAX_OFFSET = (1n << 63n) - 1n;

/**
 * Runs `io` at `offset` and puts the file position back (`fd_pread`,
 * `fd_pwrite`). An offset past the largest file the file system holds (it
 * refuses the seek) is Linux's answer there: the end of the file for a read
 * (`past` returns 0), `EFBIG` for a write.
 */
export function atOffset(
  file: Deno.FsFile,
  offset: bigint,
  io: () => number,
  past: () => number,
): number {
  if (offset > MAX_OFFSET) fail(Errno.INVAL);
  const saved = file.seekSync(0, Deno.SeekMode.Current);
  try {
    file.seekSync(offset, Deno.SeekMode.Start);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code !== "EINVAL") throw err;
    file.seekSync(saved, Deno.SeekMode.Start);
    return past();
  }
  try {
    return io();
  } finally {
    file.seekSync(saved, Deno.SeekMode.Start);
  }
}

/**
 * Writes `spans` to captured stdout or stderr: kept up to its
 * `maxOutputBytes`, the rest costs only the checkpoints. Returns the bytes
 * the guest is told were written (all of them).
 */
export function writeOutput(
  output: CapturedOutput,
  guest: Guest,
  spans: readonly Span[],
  checkpoint: () => void,
): number {
  return inChunks(spans, checkpoint, (ptr, len) => {
    output.write(guest.bytes(ptr, len));
    return len;
  });
}

/** Reads from the instance's stdin into `spans`, until one is not filled. */
export function readStdin(state: WasiState, guest: Guest, spans: readonly Span[]): number {
  let read = 0;
  for (const span of spans) {
    const chunk = state.stdin.subarray(state.stdinOffset, state.stdinOffset + span.len);
    guest.write(span.ptr, chunk);
    state.stdinOffset += chunk.length;
    read += chunk.length;
    if (chunk.length < span.len) break;
  }
  return read;
}

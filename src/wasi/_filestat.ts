/**
 * File metadata as WASI sees it: the `filetype` of a stat, the `filestat`
 * struct, and the times `fstflags` set.
 *
 * @module
 */

import { Filetype, FstFlags, Size } from "./_abi.ts";
import { Errno, fail } from "./_errno.ts";
import type { Guest } from "./_guest.ts";
import { confirmOpened, type Resolved } from "./_path.ts";

/** The WASI `filetype` of what `info` describes. */
export function filetypeOf(info: Deno.FileInfo): number {
  if (info.isFile) return Filetype.REGULAR_FILE;
  if (info.isDirectory) return Filetype.DIRECTORY;
  if (info.isSymlink) return Filetype.SYMBOLIC_LINK;
  if (info.isBlockDevice) return Filetype.BLOCK_DEVICE;
  if (info.isCharDevice) return Filetype.CHARACTER_DEVICE;
  if (info.isSocket) return Filetype.SOCKET_STREAM;
  return Filetype.UNKNOWN;
}

/** A timestamp in nanoseconds since the epoch, 0 when the platform has none. */
function nanoseconds(date: Date | null): bigint {
  return date === null ? 0n : BigInt(date.getTime()) * 1_000_000n;
}

/**
 * Writes a `filestat` (64 bytes) at `ptr`; `info` undefined means a standard
 * stream, a buffer of unknown type (see `describe` in `_fd_calls.ts`).
 */
export function writeFilestat(guest: Guest, ptr: number, info: Deno.FileInfo | undefined): void {
  guest.bytes(ptr, Size.FILESTAT).fill(0);
  if (info === undefined) return;
  guest.setU64(ptr, info.dev ?? 0);
  guest.setU64(ptr + 8, info.ino ?? 0);
  guest.setU8(ptr + 16, filetypeOf(info));
  guest.setU64(ptr + 24, info.nlink ?? 1);
  guest.setU64(ptr + 32, info.size);
  guest.setU64(ptr + 40, nanoseconds(info.atime));
  guest.setU64(ptr + 48, nanoseconds(info.mtime));
  // The status-change time: never before the last write (Deno gives it in whole seconds).
  const ctim = nanoseconds(info.ctime ?? info.mtime);
  const mtim = nanoseconds(info.mtime);
  guest.setU64(ptr + 56, ctim > mtim ? ctim : mtim);
}

/** What `fd_filestat_set_times` and `path_filestat_set_times` set: `fstflags` and its two times. */
export interface NewTimes {
  readonly atim: bigint;
  readonly mtim: bigint;
  readonly flags: number;
}

/** The access and modification times `times` ask for, as Deno's seconds. */
function secondsOf(info: Deno.FileInfo, times: NewTimes): [number, number] {
  const { atim, mtim, flags } = times;
  if (
    (flags & FstFlags.ATIM && flags & FstFlags.ATIM_NOW) ||
    (flags & FstFlags.MTIM && flags & FstFlags.MTIM_NOW)
  ) {
    fail(Errno.INVAL);
  }
  const now = Date.now() / 1000;
  function pick(set: number, setNow: number, value: bigint, current: Date | null): number {
    if (flags & setNow) return now;
    if (flags & set) return Number(value) / 1e9;
    return current === null ? now : current.getTime() / 1000;
  }
  return [
    pick(FstFlags.ATIM, FstFlags.ATIM_NOW, atim, info.atime),
    pick(FstFlags.MTIM, FstFlags.MTIM_NOW, mtim, info.mtime),
  ];
}

/** Sets the times of an open file. */
export function setFileTimes(file: Deno.FsFile, times: NewTimes): void {
  file.utimeSync(...secondsOf(file.statSync(), times));
}

/**
 * Sets the times of what `target` names through a handle checked to be
 * that file (see `confirmOpened`), not by path: Deno's `utime` by path
 * follows symlinks, which could reach past the preopen.
 */
export function setTimesAt(target: Resolved, times: NewTimes): void {
  const file = Deno.openSync(target.host, { read: true });
  try {
    const info = file.statSync();
    confirmOpened(target, info);
    file.utimeSync(...secondsOf(info, times));
  } finally {
    file.close();
  }
}

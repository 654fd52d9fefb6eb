/**
 * The `fd_*` system calls: stdio, and the files and directories opened
 * under the preopens.
 *
 * Each one checks the guest memory it reads or writes first (`EFAULT`),
 * then looks its descriptor up with {@linkcode descriptor}, which also
 * checks that it is what the call works on.
 *
 * @module
 */

import {
  ALL_FDFLAGS,
  DIRECTORY_RIGHTS,
  FdFlags,
  FILE_RIGHTS,
  Filetype,
  Rights,
  Size,
  Whence,
  WRITE_RIGHTS,
} from "./_abi.ts";
import { listDirectory, resumeAt, writeDirents } from "./_directory_listing.ts";
import { Errno, fail } from "./_errno.ts";
import {
  type Descriptor,
  type DirectoryDescriptor,
  type FdTable,
  type FileDescriptor,
  hostPath,
} from "./_fd_table.ts";
import { atOffset, MAX_OFFSET, readSpans, readStdin, writeOutput, writeSpans } from "./_file_io.ts";
import { filetypeOf, setFileTimes, setTimesAt, writeFilestat } from "./_filestat.ts";
import { encode } from "./_guest.ts";
import { confirmNamed, mayWrite, permitWrite, resolvePath } from "./_path.ts";
import type { SystemCall, WasiState } from "./_state.ts";

const SEEK_MODES: Readonly<Record<number, Deno.SeekMode>> = {
  [Whence.SET]: Deno.SeekMode.Start,
  [Whence.CUR]: Deno.SeekMode.Current,
  [Whence.END]: Deno.SeekMode.End,
};

const STDIN_RIGHTS = Rights.FD_READ | Rights.POLL_FD_READWRITE | Rights.FD_FILESTAT_GET |
  Rights.FD_FDSTAT_SET_FLAGS;
const STDOUT_RIGHTS = Rights.FD_WRITE | Rights.POLL_FD_READWRITE | Rights.FD_FILESTAT_GET |
  Rights.FD_FDSTAT_SET_FLAGS;

/** What a call may need a descriptor to be. */
interface Needs {
  /** Anything open (`EBADF` for a closed number). */
  any: Descriptor;
  /** A file: `EISDIR` for a directory, `EBADF` for stdio. */
  file: FileDescriptor;
  /** A file opened for reading: as `file`, and `EBADF` if it was not. */
  readable: FileDescriptor;
  /** A file opened for writing: as `file`, and `EBADF` if it was not. */
  writable: FileDescriptor;
  /** A file with a position: `EBADF` for a directory, `ESPIPE` for stdio. */
  seekable: FileDescriptor;
  /** A directory: `ENOTDIR` for anything else. */
  directory: DirectoryDescriptor;
  /** A directory given at start: `EBADF` for anything else. */
  preopen: DirectoryDescriptor;
}

const LOOKUPS: { readonly [N in keyof Needs]: (fds: FdTable, fd: number) => Needs[N] } = {
  any: (fds, fd) => fds.get(fd),
  file: (fds, fd) => fds.file(fd),
  readable(fds, fd): FileDescriptor {
    const entry = fds.file(fd);
    if (!entry.readable) fail(Errno.BADF);
    return entry;
  },
  writable(fds, fd): FileDescriptor {
    const entry = fds.file(fd);
    if (!entry.writable) fail(Errno.BADF);
    return entry;
  },
  seekable(fds, fd): FileDescriptor {
    const entry = fds.get(fd);
    if (entry.kind !== "file") fail(entry.kind === "directory" ? Errno.BADF : Errno.SPIPE);
    return entry;
  },
  directory: (fds, fd) => fds.directory(fd),
  preopen(fds, fd): DirectoryDescriptor {
    const entry = fds.get(fd);
    if (entry.kind !== "directory" || !entry.isPreopen) fail(Errno.BADF);
    return entry;
  },
};

/** The descriptor `fd`, checked to be what the call `needs`. */
function descriptor<N extends keyof Needs>(state: WasiState, fd: number, needs: N): Needs[N] {
  return LOOKUPS[needs](state.fds, fd);
}

/** `fdstat` fields of a descriptor: filetype, rights base, rights inheriting. */
function describe(state: WasiState, entry: Descriptor): [number, bigint, bigint] {
  switch (entry.kind) {
    // The standard streams are the run's buffers, never a terminal: wasi-libc's isatty() is
    // false for them (a character device without seek rights is a terminal to it), so an
    // interpreter reads a script from stdin instead of prompting, and no program colors its
    // output for a screen (wasmtime and wazero say the same of stdio that is not a tty).
    case "stdin":
      return [Filetype.UNKNOWN, STDIN_RIGHTS, 0n];
    case "stdout":
    case "stderr":
      return [Filetype.UNKNOWN, STDOUT_RIGHTS, 0n];
    case "directory": {
      // A directory the host does not let the plugin write reports no right to change its
      // entries. Its inheriting rights stay whole: wasi-libc masks the rights an `open()`
      // asks for with them, so `O_RDWR` would quietly open a file read-only there and fail
      // at the first write; asked for, write rights make `path_open` fail with EACCES at
      // once (wasmtime fails such an open too).
      const writable = mayWrite(state, { ...entry, host: hostPath(entry.preopen, entry.rel) });
      return [
        Filetype.DIRECTORY,
        writable ? DIRECTORY_RIGHTS : DIRECTORY_RIGHTS & ~WRITE_RIGHTS,
        Rights.ALL,
      ];
    }
    case "file": {
      let rights = FILE_RIGHTS;
      if (!entry.readable) rights &= ~Rights.FD_READ;
      if (!entry.writable) {
        rights &= ~(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE);
      }
      return [filetypeOf(entry.file.statSync()), rights, 0n];
    }
  }
}

/**
 * `fd_pread` (`readable`) and `fd_pwrite` (`writable`): reads into or
 * writes from the iovecs at `offset`, the file's position kept, and
 * reports how many bytes moved at `resultPtr`.
 */
function ioAtOffset(
  state: WasiState,
  call: {
    readonly fd: number;
    readonly iovs: number;
    readonly iovsLen: number;
    readonly offset: bigint;
    readonly resultPtr: number;
  },
  needs: "readable" | "writable",
): number {
  const guest = state.guest();
  const spans = guest.iovecs(call.iovs, call.iovsLen);
  guest.check(call.resultPtr, 4);
  const { file, flags } = descriptor(state, call.fd, needs);
  const io = needs === "readable" ? readSpans : writeSpans;
  const length = spans.reduce((sum, span) => sum + span.len, 0);
  // As Linux: the range must fit an off_t, whatever the file (EINVAL), even to append.
  if (call.offset > MAX_OFFSET - BigInt(length)) fail(Errno.INVAL);
  // Linux (and wasmtime) ignore a pwrite's offset on a file opened to append: it appends.
  const offset = needs === "writable" && (flags & FdFlags.APPEND) !== 0
    ? BigInt(file.statSync().size)
    : call.offset;
  const moved = atOffset(
    file,
    offset,
    () => io(file, guest, spans, state.checkpoint),
    // Past the largest file: nothing to read, and no room to write (but for nothing).
    () => needs === "readable" || length === 0 ? 0 : fail(Errno.FBIG),
  );
  guest.setU32(call.resultPtr, moved);
  return Errno.SUCCESS;
}

/** The system calls on descriptors, by their WASI names. */
export const FD_CALLS: Readonly<Record<string, SystemCall>> = {
  fd_write(state, fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
    const guest = state.guest();
    const spans = guest.iovecs(iovs, iovsLen);
    guest.check(nwrittenPtr, 4);
    const entry = descriptor(state, fd, "any");
    let written: number;
    if (entry.kind === "stdout" || entry.kind === "stderr") {
      const output = entry.kind === "stdout" ? state.stdout : state.stderr;
      written = writeOutput(output, guest, spans, state.checkpoint);
    } else {
      const { file, flags } = descriptor(state, fd, "writable");
      if (flags & FdFlags.APPEND) file.seekSync(0, Deno.SeekMode.End);
      written = writeSpans(file, guest, spans, state.checkpoint);
      if (flags & (FdFlags.SYNC | FdFlags.DSYNC)) file.syncDataSync();
    }
    guest.setU32(nwrittenPtr, written);
    return Errno.SUCCESS;
  },

  fd_read(state, fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
    const guest = state.guest();
    const spans = guest.iovecs(iovs, iovsLen);
    guest.check(nreadPtr, 4);
    const entry = descriptor(state, fd, "any");
    const read = entry.kind === "stdin"
      ? readStdin(state, guest, spans)
      : readSpans(descriptor(state, fd, "readable").file, guest, spans, state.checkpoint);
    guest.setU32(nreadPtr, read);
    return Errno.SUCCESS;
  },

  fd_pread(
    state,
    fd: number,
    iovs: number,
    iovsLen: number,
    offset: bigint,
    nreadPtr: number,
  ): number {
    return ioAtOffset(state, { fd, iovs, iovsLen, offset, resultPtr: nreadPtr }, "readable");
  },

  fd_pwrite(
    state,
    fd: number,
    iovs: number,
    iovsLen: number,
    offset: bigint,
    nwrittenPtr: number,
  ): number {
    return ioAtOffset(state, { fd, iovs, iovsLen, offset, resultPtr: nwrittenPtr }, "writable");
  },

  fd_seek(state, fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
    const guest = state.guest();
    guest.check(newOffsetPtr, 8);
    const { file } = descriptor(state, fd, "seekable");
    const mode = SEEK_MODES[whence] ?? fail(Errno.INVAL);
    guest.setU64(newOffsetPtr, file.seekSync(offset, mode));
    return Errno.SUCCESS;
  },

  fd_tell(state, fd: number, offsetPtr: number): number {
    const guest = state.guest();
    guest.check(offsetPtr, 8);
    const { file } = descriptor(state, fd, "seekable");
    guest.setU64(offsetPtr, file.seekSync(0, Deno.SeekMode.Current));
    return Errno.SUCCESS;
  },

  fd_close(state, fd: number): number {
    state.fds.close(fd);
    return Errno.SUCCESS;
  },

  fd_renumber(state, from: number, to: number): number {
    state.fds.renumber(from, to);
    return Errno.SUCCESS;
  },

  fd_sync(state, fd: number): number {
    const entry = descriptor(state, fd, "any");
    if (entry.kind === "file") entry.file.syncSync();
    return Errno.SUCCESS;
  },

  fd_datasync(state, fd: number): number {
    const entry = descriptor(state, fd, "any");
    if (entry.kind === "file") entry.file.syncDataSync();
    return Errno.SUCCESS;
  },

  fd_advise(state, fd: number, _offset: bigint, _len: bigint, advice: number): number {
    descriptor(state, fd, "file");
    return advice <= 5 ? Errno.SUCCESS : Errno.INVAL;
  },

  fd_allocate(state, fd: number, offset: bigint, len: bigint): number {
    const { file } = descriptor(state, fd, "writable");
    const end = offset + len;
    if (end > BigInt(Number.MAX_SAFE_INTEGER)) fail(Errno.INVAL);
    if (BigInt(file.statSync().size) < end) file.truncateSync(Number(end));
    return Errno.SUCCESS;
  },

  fd_fdstat_get(state, fd: number, ptr: number): number {
    const guest = state.guest();
    guest.check(ptr, Size.FDSTAT);
    const entry = descriptor(state, fd, "any");
    const [filetype, base, inheriting] = describe(state, entry);
    guest.bytes(ptr, Size.FDSTAT).fill(0);
    guest.setU8(ptr, filetype);
    guest.setU16(ptr + 2, entry.flags);
    guest.setU64(ptr + 8, base);
    guest.setU64(ptr + 16, inheriting);
    return Errno.SUCCESS;
  },

  fd_fdstat_set_flags(state, fd: number, flags: number): number {
    const entry = descriptor(state, fd, "any");
    // Bits past the flags (a negative i32 too) are no flags.
    if ((flags & ~ALL_FDFLAGS) !== 0) fail(Errno.INVAL);
    entry.flags = flags;
    state.fds.changes++;
    return Errno.SUCCESS;
  },

  fd_filestat_get(state, fd: number, ptr: number): number {
    const guest = state.guest();
    guest.check(ptr, Size.FILESTAT);
    const entry = descriptor(state, fd, "any");
    let info: Deno.FileInfo | undefined;
    if (entry.kind === "file") info = entry.file.statSync();
    if (entry.kind === "directory") {
      const self = resolvePath(entry, ".", true);
      confirmNamed(self);
      info = self.info;
    }
    writeFilestat(guest, ptr, info);
    return Errno.SUCCESS;
  },

  fd_filestat_set_size(state, fd: number, size: bigint): number {
    const { file } = descriptor(state, fd, "writable");
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) fail(Errno.INVAL);
    file.truncateSync(Number(size));
    return Errno.SUCCESS;
  },

  fd_filestat_set_times(state, fd: number, atim: bigint, mtim: bigint, flags: number): number {
    const entry = descriptor(state, fd, "any");
    if (entry.kind === "file") {
      // A read-only preopen's files keep their times too.
      permitWrite(state, entry);
      setFileTimes(entry.file, { atim, mtim, flags });
    } else if (entry.kind === "directory") {
      const self = resolvePath(entry, ".", true);
      permitWrite(state, self);
      setTimesAt(self, { atim, mtim, flags });
    } else {
      fail(Errno.BADF);
    }
    return Errno.SUCCESS;
  },

  fd_prestat_get(state, fd: number, ptr: number): number {
    const guest = state.guest();
    guest.check(ptr, Size.PRESTAT);
    const { preopen } = descriptor(state, fd, "preopen");
    guest.bytes(ptr, Size.PRESTAT).fill(0);
    guest.setU32(ptr + 4, encode(preopen.guestPath).length);
    return Errno.SUCCESS;
  },

  fd_prestat_dir_name(state, fd: number, ptr: number, len: number): number {
    const guest = state.guest();
    guest.check(ptr, len);
    const name = encode(descriptor(state, fd, "preopen").preopen.guestPath);
    if (len < name.length) fail(Errno.NAMETOOLONG);
    guest.write(ptr, name);
    return Errno.SUCCESS;
  },

  fd_readdir(
    state,
    fd: number,
    buf: number,
    bufLen: number,
    cookie: bigint,
    bufUsedPtr: number,
  ): number {
    const guest = state.guest();
    guest.check(buf, bufLen);
    guest.check(bufUsedPtr, 4);
    const dir = descriptor(state, fd, "directory");
    let at = cookie;
    if (cookie === 0n || dir.listing === undefined) {
      dir.listing = listDirectory(dir, state.checkpoint);
      // Taken again while paging (the listing was dropped): on from where it was, by name.
      if (cookie !== 0n) at = resumeAt(dir.listing, dir.page, cookie);
    } else if (dir.page?.whole === 0 && cookie === dir.page.cookie) {
      // The same page again: it held no whole entry, so the guest, its buffer grown, asks
      // with the same cookie, whatever numbering that came from. It begins where that did.
      at = dir.page.at;
    }
    state.fds.keepListing(dir);
    const listing = dir.listing;
    const { used, next, whole } = writeDirents(guest, { ptr: buf, len: bufLen }, {
      listing,
      cookie: at,
    });
    const first = Math.max(0, Math.min(Number(at), listing.length) - 1);
    // Copies: a page outlives its listing when that is dropped. (A cookie past the listing's
    // end, any u64, writes nothing: `next` is the cookie then, not an index in the listing.)
    const end = Math.min(next, listing.length);
    const names = Array.from({ length: Math.max(0, end - first) }, (_, k) => {
      return listing.name(first + k).slice();
    });
    dir.page = { first, names, cookie, at, whole };
    guest.setU32(bufUsedPtr, used);
    return Errno.SUCCESS;
  },
};

/**
 * The `fd_*` and `path_*` system calls: stdio, and files and directories
 * under the preopens (see `_path.ts` for how paths stay inside them).
 *
 * @module
 */

import {
  DIRECTORY_RIGHTS,
  FdFlags,
  FILE_RIGHTS,
  Filetype,
  FstFlags,
  LOOKUP_SYMLINK_FOLLOW,
  OFlags,
  Rights,
  Size,
  Whence,
  WRITE_RIGHTS,
} from "./_abi.ts";
import { Errno, fail } from "./_errno.ts";
import {
  type Descriptor,
  type DirectoryDescriptor,
  type DirectoryEntry,
  type FileDescriptor,
  hostPath,
} from "./_fd_table.ts";
import { encode, type Guest, type Span } from "./_guest.ts";
import {
  assertMovable,
  confirmNamed,
  confirmOpened,
  permit,
  type Resolved,
  resolvePath,
} from "./_path.ts";
import type { Handler, WasiState } from "./_state.ts";

/** The most bytes one host read or write moves between checkpoints. */
const IO_CHUNK = 1024 * 1024;

/** How many directory entries a listing reads between checkpoints. */
const LIST_SLICE = 256;

const SEEK_MODES: Readonly<Record<number, Deno.SeekMode>> = {
  [Whence.SET]: Deno.SeekMode.Start,
  [Whence.CUR]: Deno.SeekMode.Current,
  [Whence.END]: Deno.SeekMode.End,
};

const STDIN_RIGHTS = Rights.FD_READ | Rights.POLL_FD_READWRITE | Rights.FD_FILESTAT_GET |
  Rights.FD_FDSTAT_SET_FLAGS;
const STDOUT_RIGHTS = Rights.FD_WRITE | Rights.POLL_FD_READWRITE | Rights.FD_FILESTAT_GET |
  Rights.FD_FDSTAT_SET_FLAGS;

/** The WASI `filetype` of what `info` describes. */
function filetypeOf(info: Deno.FileInfo): number {
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

/** Writes a `filestat` (64 bytes) at `ptr`; `info` undefined means a character device (stdio). */
function writeFilestat(guest: Guest, ptr: number, info: Deno.FileInfo | undefined): void {
  guest.bytes(ptr, Size.FILESTAT).fill(0);
  if (info === undefined) {
    guest.setU8(ptr + 16, Filetype.CHARACTER_DEVICE);
    return;
  }
  guest.setU64(ptr, info.dev ?? 0);
  guest.setU64(ptr + 8, info.ino ?? 0);
  guest.setU8(ptr + 16, filetypeOf(info));
  guest.setU64(ptr + 24, info.nlink ?? 1);
  guest.setU64(ptr + 32, info.size);
  guest.setU64(ptr + 40, nanoseconds(info.atime));
  guest.setU64(ptr + 48, nanoseconds(info.mtime));
  guest.setU64(ptr + 56, nanoseconds(info.birthtime ?? info.mtime));
}

/** The access and modification times `fstflags` ask for, as Deno's seconds. */
function newTimes(
  info: Deno.FileInfo,
  atim: bigint,
  mtim: bigint,
  flags: number,
): [number, number] {
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

/**
 * Reads into `spans` until one is not filled (a short read or the end of
 * the file), at most {@linkcode IO_CHUNK} bytes at a time with a checkpoint
 * before each.
 */
function readSpans(
  file: Deno.FsFile,
  guest: Guest,
  spans: readonly Span[],
  checkpoint: () => void,
): number {
  let total = 0;
  for (const span of spans) {
    for (let at = 0; at < span.len;) {
      checkpoint();
      const chunk = new Uint8Array(Math.min(IO_CHUNK, span.len - at));
      const n = file.readSync(chunk) ?? 0;
      guest.write(span.ptr + at, chunk.subarray(0, n));
      total += n;
      at += n;
      if (n < chunk.length) return total;
    }
  }
  return total;
}

/**
 * Writes every byte of `spans` to `file`, at most {@linkcode IO_CHUNK}
 * bytes at a time with a checkpoint before each: a guest that writes
 * gigabytes is stopped at its deadline, not when it is done.
 */
function writeSpans(
  file: Deno.FsFile,
  guest: Guest,
  spans: readonly Span[],
  checkpoint: () => void,
): number {
  let total = 0;
  for (const span of spans) {
    for (let at = 0; at < span.len;) {
      checkpoint();
      // A copy: Deno's write takes no view of (possibly shared) wasm memory.
      const data = guest.bytes(span.ptr + at, Math.min(IO_CHUNK, span.len - at)).slice();
      for (let done = 0; done < data.length;) done += file.writeSync(data.subarray(done));
      total += data.length;
      at += data.length;
    }
  }
  return total;
}

/** Runs `io` at `offset` and puts the file position back (`fd_pread`, `fd_pwrite`). */
function atOffset(file: Deno.FsFile, offset: bigint, io: () => number): number {
  const saved = file.seekSync(0, Deno.SeekMode.Current);
  file.seekSync(offset, Deno.SeekMode.Start);
  try {
    return io();
  } finally {
    file.seekSync(saved, Deno.SeekMode.Start);
  }
}

/** The entries of a directory for `fd_readdir`, `.` and `..` first, the rest sorted by name. */
function listDirectory(dir: DirectoryDescriptor, checkpoint: () => void): DirectoryEntry[] {
  const self = resolvePath(dir, ".", true);
  // At a preopen's root, `..` is the root itself, as in a chroot.
  const parentRel = self.rel.length > 0 ? self.rel.slice(0, -1) : self.rel;
  const parent = Deno.statSync(hostPath(self.preopen, parentRel));
  const entries: DirectoryEntry[] = [
    { name: encode("."), ino: BigInt(self.info?.ino ?? 0), type: Filetype.DIRECTORY },
    { name: encode(".."), ino: BigInt(parent.ino ?? 0), type: Filetype.DIRECTORY },
  ];
  const names: string[] = [];
  for (const entry of Deno.readDirSync(self.host)) {
    if (names.length % LIST_SLICE === 0) checkpoint();
    names.push(entry.name);
  }
  // What was listed is what the confined path names (see `_path.ts`).
  confirmNamed(self);
  names.sort();
  for (const [i, name] of names.entries()) {
    if (i % LIST_SLICE === 0) checkpoint();
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(`${self.host}/${name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // removed while listing
      throw err;
    }
    entries.push({ name: encode(name), ino: BigInt(info.ino ?? 0), type: filetypeOf(info) });
  }
  confirmNamed(self);
  return entries;
}

/** `fdstat` fields of a descriptor: filetype, rights base, rights inheriting. */
function describe(entry: Descriptor): [number, bigint, bigint] {
  switch (entry.kind) {
    case "stdin":
      return [Filetype.CHARACTER_DEVICE, STDIN_RIGHTS, 0n];
    case "stdout":
    case "stderr":
      return [Filetype.CHARACTER_DEVICE, STDOUT_RIGHTS, 0n];
    case "directory": {
      // A directory the host does not let the plugin write reports no right to change files.
      const writable = Deno.permissions.querySync({ name: "write", path: entry.preopen.host })
        .state === "granted";
      return writable
        ? [Filetype.DIRECTORY, DIRECTORY_RIGHTS, Rights.ALL]
        : [Filetype.DIRECTORY, DIRECTORY_RIGHTS & ~WRITE_RIGHTS, Rights.ALL & ~WRITE_RIGHTS];
    }
    case "file": {
      let rights = FILE_RIGHTS;
      if (!entry.readable) rights &= ~Rights.FD_READ;
      if (!entry.writable) rights &= ~(Rights.FD_WRITE | Rights.FD_ALLOCATE);
      return [filetypeOf(entry.file.statSync()), rights, 0n];
    }
  }
}

/** The file `fd` must be open for writing. */
function writableFile(state: WasiState, fd: number): FileDescriptor {
  const entry = state.fds.file(fd);
  if (!entry.writable) fail(Errno.BADF);
  return entry;
}

/** The file `fd` must be open for reading. */
function readableFile(state: WasiState, fd: number): FileDescriptor {
  const entry = state.fds.file(fd);
  if (!entry.readable) fail(Errno.BADF);
  return entry;
}

/**
 * Opens what `target` names for reading, checks it is that file (see
 * `confirmOpened`), and passes the handle and its stat to `use`.
 */
function withVerifiedHandle<T>(
  target: Resolved,
  use: (file: Deno.FsFile, info: Deno.FileInfo) => T,
): T {
  const file = Deno.openSync(target.host, { read: true });
  try {
    const info = file.statSync();
    confirmOpened(target, info);
    return use(file, info);
  } finally {
    file.close();
  }
}

/** Fails with `ENOTSUP` unless `info` is a regular file or a directory (a FIFO would block). */
function assertOpenable(info: Deno.FileInfo): void {
  if (!info.isFile && !info.isDirectory) fail(Errno.NOTSUP);
}

/** The system calls on descriptors and paths. */
export function fileSystemCalls(state: WasiState): Record<string, Handler> {
  const { fds, checkpoint } = state;

  /** The guest path at `ptr` resolved against the directory `fd`. */
  function resolveAt(fd: number, flags: number, ptr: number, len: number): Resolved {
    const dir = fds.directory(fd);
    return resolvePath(dir, state.guest().text(ptr, len), (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
  }

  return {
    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
      const guest = state.guest();
      const spans = guest.iovecs(iovs, iovsLen);
      guest.check(nwrittenPtr, 4);
      const entry = fds.get(fd);
      let written = 0;
      if (entry.kind === "stdout" || entry.kind === "stderr") {
        // Kept up to `maxOutputBytes`; the rest costs only the checkpoints.
        const output = entry.kind === "stdout" ? state.stdout : state.stderr;
        for (const span of spans) {
          for (let at = 0; at < span.len; at += IO_CHUNK) {
            checkpoint();
            output.write(guest.bytes(span.ptr + at, Math.min(IO_CHUNK, span.len - at)));
          }
          written += span.len;
        }
      } else {
        const file = writableFile(state, fd);
        if (file.flags & FdFlags.APPEND) file.file.seekSync(0, Deno.SeekMode.End);
        written = writeSpans(file.file, guest, spans, checkpoint);
        if (file.flags & (FdFlags.SYNC | FdFlags.DSYNC)) file.file.syncDataSync();
      }
      guest.setU32(nwrittenPtr, written);
      return Errno.SUCCESS;
    },

    fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
      const guest = state.guest();
      const spans = guest.iovecs(iovs, iovsLen);
      guest.check(nreadPtr, 4);
      const entry = fds.get(fd);
      let read = 0;
      if (entry.kind === "stdin") {
        for (const span of spans) {
          const chunk = state.stdin.subarray(state.stdinOffset, state.stdinOffset + span.len);
          guest.write(span.ptr, chunk);
          state.stdinOffset += chunk.length;
          read += chunk.length;
          if (chunk.length < span.len) break;
        }
      } else {
        read = readSpans(readableFile(state, fd).file, guest, spans, checkpoint);
      }
      guest.setU32(nreadPtr, read);
      return Errno.SUCCESS;
    },

    fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
      const guest = state.guest();
      const spans = guest.iovecs(iovs, iovsLen);
      guest.check(nreadPtr, 4);
      const { file } = readableFile(state, fd);
      guest.setU32(
        nreadPtr,
        atOffset(file, offset, () => readSpans(file, guest, spans, checkpoint)),
      );
      return Errno.SUCCESS;
    },

    fd_pwrite(
      fd: number,
      iovs: number,
      iovsLen: number,
      offset: bigint,
      nwrittenPtr: number,
    ): number {
      const guest = state.guest();
      const spans = guest.iovecs(iovs, iovsLen);
      guest.check(nwrittenPtr, 4);
      const { file } = writableFile(state, fd);
      guest.setU32(
        nwrittenPtr,
        atOffset(file, offset, () => writeSpans(file, guest, spans, checkpoint)),
      );
      return Errno.SUCCESS;
    },

    fd_seek(fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
      const guest = state.guest();
      guest.check(newOffsetPtr, 8);
      const entry = fds.get(fd);
      if (entry.kind !== "file") fail(entry.kind === "directory" ? Errno.BADF : Errno.SPIPE);
      const mode = SEEK_MODES[whence] ?? fail(Errno.INVAL);
      guest.setU64(newOffsetPtr, entry.file.seekSync(offset, mode));
      return Errno.SUCCESS;
    },

    fd_tell(fd: number, offsetPtr: number): number {
      const guest = state.guest();
      guest.check(offsetPtr, 8);
      const entry = fds.get(fd);
      if (entry.kind !== "file") fail(entry.kind === "directory" ? Errno.BADF : Errno.SPIPE);
      guest.setU64(offsetPtr, entry.file.seekSync(0, Deno.SeekMode.Current));
      return Errno.SUCCESS;
    },

    fd_close(fd: number): number {
      fds.close(fd);
      return Errno.SUCCESS;
    },

    fd_renumber(from: number, to: number): number {
      fds.renumber(from, to);
      return Errno.SUCCESS;
    },

    fd_sync(fd: number): number {
      const entry = fds.get(fd);
      if (entry.kind === "file") entry.file.syncSync();
      return Errno.SUCCESS;
    },

    fd_datasync(fd: number): number {
      const entry = fds.get(fd);
      if (entry.kind === "file") entry.file.syncDataSync();
      return Errno.SUCCESS;
    },

    fd_advise(fd: number, _offset: bigint, _len: bigint, advice: number): number {
      fds.file(fd);
      return advice <= 5 ? Errno.SUCCESS : Errno.INVAL;
    },

    fd_allocate(fd: number, offset: bigint, len: bigint): number {
      const { file } = writableFile(state, fd);
      const end = offset + len;
      if (end > BigInt(Number.MAX_SAFE_INTEGER)) fail(Errno.INVAL);
      if (BigInt(file.statSync().size) < end) file.truncateSync(Number(end));
      return Errno.SUCCESS;
    },

    fd_fdstat_get(fd: number, ptr: number): number {
      const guest = state.guest();
      guest.check(ptr, Size.FDSTAT);
      const entry = fds.get(fd);
      const [filetype, base, inheriting] = describe(entry);
      guest.bytes(ptr, Size.FDSTAT).fill(0);
      guest.setU8(ptr, filetype);
      guest.setU16(ptr + 2, entry.flags);
      guest.setU64(ptr + 8, base);
      guest.setU64(ptr + 16, inheriting);
      return Errno.SUCCESS;
    },

    fd_fdstat_set_flags(fd: number, flags: number): number {
      const entry = fds.get(fd);
      if (flags > 0x1f) fail(Errno.INVAL);
      entry.flags = flags;
      fds.changes++;
      return Errno.SUCCESS;
    },

    fd_filestat_get(fd: number, ptr: number): number {
      const guest = state.guest();
      guest.check(ptr, Size.FILESTAT);
      const entry = fds.get(fd);
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

    fd_filestat_set_size(fd: number, size: bigint): number {
      const { file } = writableFile(state, fd);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) fail(Errno.INVAL);
      file.truncateSync(Number(size));
      return Errno.SUCCESS;
    },

    fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, flags: number): number {
      const entry = fds.get(fd);
      if (entry.kind === "file") {
        // A read-only preopen's files keep their times too.
        permit("write", entry.host);
        entry.file.utimeSync(...newTimes(entry.file.statSync(), atim, mtim, flags));
      } else if (entry.kind === "directory") {
        const self = resolvePath(entry, ".", true);
        permit("write", self.host);
        withVerifiedHandle(
          self,
          (file, info) => file.utimeSync(...newTimes(info, atim, mtim, flags)),
        );
      } else {
        fail(Errno.BADF);
      }
      return Errno.SUCCESS;
    },

    fd_prestat_get(fd: number, ptr: number): number {
      const guest = state.guest();
      guest.check(ptr, Size.PRESTAT);
      const entry = fds.get(fd);
      if (entry.kind !== "directory" || !entry.isPreopen) fail(Errno.BADF);
      guest.bytes(ptr, Size.PRESTAT).fill(0);
      guest.setU32(ptr + 4, encode(entry.preopen.guestPath).length);
      return Errno.SUCCESS;
    },

    fd_prestat_dir_name(fd: number, ptr: number, len: number): number {
      const guest = state.guest();
      guest.check(ptr, len);
      const entry = fds.get(fd);
      if (entry.kind !== "directory" || !entry.isPreopen) fail(Errno.BADF);
      const name = encode(entry.preopen.guestPath);
      if (len < name.length) fail(Errno.NAMETOOLONG);
      guest.write(ptr, name);
      return Errno.SUCCESS;
    },

    fd_readdir(
      fd: number,
      buf: number,
      bufLen: number,
      cookie: bigint,
      bufUsedPtr: number,
    ): number {
      const guest = state.guest();
      guest.check(buf, bufLen);
      guest.check(bufUsedPtr, 4);
      const dir = fds.directory(fd);
      if (cookie === 0n || dir.listing === undefined) dir.listing = listDirectory(dir, checkpoint);
      const out = guest.bytes(buf, bufLen);
      let used = 0;
      for (let i = Number(cookie); i < dir.listing.length && used < bufLen; i++) {
        const entry = dir.listing[i]!;
        const record = new Uint8Array(Size.DIRENT + entry.name.length);
        const view = new DataView(record.buffer);
        view.setBigUint64(0, BigInt(i + 1), true);
        view.setBigUint64(8, entry.ino, true);
        view.setUint32(16, entry.name.length, true);
        view.setUint8(20, entry.type);
        record.set(entry.name, Size.DIRENT);
        // The last record may be cut short: that tells the guest its buffer was too small.
        const kept = record.subarray(0, bufLen - used);
        out.set(kept, used);
        used += kept.length;
      }
      guest.setU32(bufUsedPtr, used);
      return Errno.SUCCESS;
    },

    path_open(
      fd: number,
      lookupFlags: number,
      pathPtr: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      _rightsInheriting: bigint,
      fdflags: number,
      fdPtr: number,
    ): number {
      const guest = state.guest();
      guest.check(fdPtr, 4);
      const target = resolveAt(fd, lookupFlags, pathPtr, pathLen);
      const { info } = target;
      const create = (oflags & OFlags.CREAT) !== 0;
      const truncate = (oflags & OFlags.TRUNC) !== 0;
      const writable = (rightsBase & (Rights.FD_WRITE | Rights.FD_ALLOCATE)) !== 0n;
      if (info?.isSymlink) fail(Errno.LOOP); // not followed: the guest asked for O_NOFOLLOW
      if (info !== undefined && create && oflags & OFlags.EXCL) fail(Errno.EXIST);
      if (info === undefined && !create) fail(Errno.NOENT);
      if (oflags & OFlags.DIRECTORY && info !== undefined && !info.isDirectory) {
        fail(Errno.NOTDIR);
      }
      if (info !== undefined) assertOpenable(info);
      let opened: number;
      if (info?.isDirectory || oflags & OFlags.DIRECTORY) {
        if (info === undefined) fail(Errno.NOENT);
        if (writable || truncate) fail(Errno.ISDIR);
        opened = fds.add({
          kind: "directory",
          preopen: target.preopen,
          rel: target.rel,
          isPreopen: false,
          flags: fdflags,
        });
      } else {
        const readable = (rightsBase & Rights.FD_READ) !== 0n || !writable;
        const write = writable || create || truncate;
        // A read-only preopen refuses here, before Deno is asked (no prompt).
        if (write) permit("write", target.host);
        const file = Deno.openSync(target.host, {
          read: readable,
          write,
          create,
          createNew: create && (oflags & OFlags.EXCL) !== 0,
        });
        try {
          // The file opened must be the one the confined path names, before
          // anything is done to it or through it (see `_path.ts`).
          const handle = file.statSync();
          confirmOpened(target, handle);
          assertOpenable(handle);
          if (truncate) file.truncateSync(0);
        } catch (err) {
          file.close();
          throw err;
        }
        try {
          opened = fds.add({
            kind: "file",
            file,
            host: target.host,
            readable,
            writable,
            flags: fdflags,
          });
        } catch (err) {
          file.close();
          throw err;
        }
      }
      guest.setU32(fdPtr, opened);
      return Errno.SUCCESS;
    },

    path_filestat_get(
      fd: number,
      flags: number,
      pathPtr: number,
      pathLen: number,
      ptr: number,
    ): number {
      const guest = state.guest();
      guest.check(ptr, Size.FILESTAT);
      const target = resolveAt(fd, flags, pathPtr, pathLen);
      const info = target.info ?? fail(Errno.NOENT);
      confirmNamed(target);
      writeFilestat(guest, ptr, info);
      return Errno.SUCCESS;
    },

    path_filestat_set_times(
      fd: number,
      flags: number,
      pathPtr: number,
      pathLen: number,
      atim: bigint,
      mtim: bigint,
      fstFlags: number,
    ): number {
      const target = resolveAt(fd, flags, pathPtr, pathLen);
      const { info } = target;
      if (info === undefined) fail(Errno.NOENT);
      // Deno's utime follows symlinks, which would reach past the link.
      if (info.isSymlink) fail(Errno.NOTSUP);
      assertOpenable(info);
      permit("write", target.host);
      // Through a handle checked to be the confined file, not by path.
      withVerifiedHandle(target, (file, now) => {
        file.utimeSync(...newTimes(now, atim, mtim, fstFlags));
      });
      return Errno.SUCCESS;
    },

    path_create_directory(fd: number, pathPtr: number, pathLen: number): number {
      const { host, info } = resolveAt(fd, 0, pathPtr, pathLen);
      if (info !== undefined) fail(Errno.EXIST);
      permit("write", host);
      Deno.mkdirSync(host);
      return Errno.SUCCESS;
    },

    path_unlink_file(fd: number, pathPtr: number, pathLen: number): number {
      const { host, info } = resolveAt(fd, 0, pathPtr, pathLen);
      if (info === undefined) fail(Errno.NOENT);
      if (info.isDirectory) fail(Errno.ISDIR);
      permit("write", host);
      Deno.removeSync(host);
      return Errno.SUCCESS;
    },

    path_remove_directory(fd: number, pathPtr: number, pathLen: number): number {
      const { host, info, rel } = resolveAt(fd, 0, pathPtr, pathLen);
      if (info === undefined) fail(Errno.NOENT);
      if (!info.isDirectory) fail(Errno.NOTDIR);
      if (rel.length === 0) fail(Errno.BUSY);
      permit("write", host);
      Deno.removeSync(host);
      return Errno.SUCCESS;
    },

    path_rename(
      fd: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ): number {
      const from = resolveAt(fd, 0, oldPtr, oldLen);
      if (from.info === undefined) fail(Errno.NOENT);
      const to = resolveAt(newFd, 0, newPtr, newLen);
      if (from.rel.length === 0 || to.rel.length === 0) fail(Errno.BUSY);
      permit("write", from.host);
      permit("write", to.host);
      // Symlinks and special files never move (see `_path.ts`).
      assertMovable(from.host, from.info, checkpoint);
      Deno.renameSync(from.host, to.host);
      return Errno.SUCCESS;
    },

    path_readlink(
      fd: number,
      pathPtr: number,
      pathLen: number,
      buf: number,
      bufLen: number,
      bufUsedPtr: number,
    ): number {
      const guest = state.guest();
      guest.check(buf, bufLen);
      guest.check(bufUsedPtr, 4);
      const link = resolveAt(fd, 0, pathPtr, pathLen);
      if (link.info === undefined) fail(Errno.NOENT);
      if (!link.info.isSymlink) fail(Errno.INVAL);
      const text = Deno.readLinkSync(link.host);
      confirmNamed(link);
      const target = encode(text).subarray(0, bufLen);
      guest.write(buf, target);
      guest.setU32(bufUsedPtr, target.length);
      return Errno.SUCCESS;
    },
  };
}

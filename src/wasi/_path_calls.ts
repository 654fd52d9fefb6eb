/**
 * The `path_*` system calls: files and directories under the preopens (see
 * `_path.ts` for how paths stay inside them).
 *
 * Every one is a {@linkcode PathCall} run by {@linkcode pathCall}, which
 * does what they share: the memory checks, the resolution inside the
 * preopen, what must (not) be there, and Deno's write permission. What is
 * left to each call is its own checks and its work.
 *
 * @module
 */

import { ALL_FDFLAGS, ALL_OFLAGS, LOOKUP_SYMLINK_FOLLOW, OFlags, Rights, Size } from "./_abi.ts";
import { Errno, fail } from "./_errno.ts";
import type { FdTable } from "./_fd_table.ts";
import { setTimesAt, writeFilestat } from "./_filestat.ts";
import { encode, type Span } from "./_guest.ts";
import {
  assertMovable,
  confirmNamed,
  confirmOpened,
  permitWrite,
  type Resolved,
  resolvePath,
} from "./_path.ts";
import type { SystemCall, WasiState } from "./_state.ts";

/** What a path call needs at its path: something (`ENOENT` otherwise), nothing (`EEXIST` otherwise), or either. */
type Expect = "existing" | "absent" | "any";

/** A resolved path; where the call expects something there, with what is there. */
type Target<E extends Expect> = E extends "existing" ? Resolved & { readonly info: Deno.FileInfo }
  : Resolved;

/**
 * A system call on a path: `(fd, [lookupflags,] path, path_len, ...rest)`.
 * {@linkcode pathCall} runs every one through the same steps, in this
 * order, which also fixes the errno a guest sees when several things are
 * wrong:
 *
 * 1. the guest memory the call writes its results to (`results`) is
 *    checked: `EFAULT`;
 * 2. the directory `fd` is looked up (`ENOTDIR`, `EBADF`), the path read
 *    (`EFAULT`, `EILSEQ`) and resolved inside its preopen (`ENOTCAPABLE`;
 *    `EACCES` unless Deno already grants reading the preopen);
 * 3. what is there is checked against `expect`; then, for `path_rename`,
 *    the second path is resolved the same way;
 * 4. `check` fails the call with its own errno;
 * 5. if the call `writes`, Deno's write permission is queried for each of
 *    its paths, never asked: `EACCES`, so a read-only preopen refuses here,
 *    after the guest was told what else was wrong;
 * 6. `act` does the work.
 */
interface PathCall<E extends Expect, Rest extends unknown[]> {
  /** Whether `lookupflags` come before the path; without them a symlink at the end is never followed. */
  readonly lookup: boolean;
  /**
   * Whether the call follows a symlink at the end when its `lookupflags` ask
   * (default: it does); `path_open` with `O_CREAT|O_EXCL` never does.
   */
  readonly follows?: (...rest: Rest) => boolean;
  readonly expect: E;
  /**
   * Whether a second path (`fd, path, path_len`, never followed, anything
   * may be there) comes after the first; the call gets it resolved, as the
   * first of its `rest` arguments.
   */
  readonly second?: true;
  /** The guest memory the call will write to, from its `rest` arguments. */
  readonly results?: (...rest: Rest) => readonly Span[];
  readonly check?: (target: Target<E>, ...rest: Rest) => void;
  /** Whether the call changes what its paths name (false: it only reads). */
  readonly writes: boolean | ((target: Target<E>, ...rest: Rest) => boolean);
  readonly act: (state: WasiState, target: Target<E>, ...rest: Rest) => void;
}

/** The longest path a guest may pass, in bytes: Linux's `PATH_MAX`. */
const MAX_PATH_BYTES = 4096;

/** The guest path `(ptr, len)` resolved against the directory `fd`. */
function resolveAt(state: WasiState, fd: number, path: Span, follow: boolean): Resolved {
  const dir = state.fds.directory(fd);
  const guest = state.guest();
  guest.check(path.ptr, path.len);
  // Longer, no host call could take it; the guest pays for copying and splitting it, not the host.
  if (path.len > MAX_PATH_BYTES) fail(Errno.NAMETOOLONG);
  return resolvePath(dir, guest.text(path.ptr, path.len), follow);
}

/** Fails unless what `target` names is what `expect` asks for. */
function expectAt<E extends Expect>(target: Resolved, expect: E): Target<E> {
  if (expect === "existing" && target.info === undefined) fail(Errno.NOENT);
  if (expect === "absent" && target.info !== undefined) fail(Errno.EXIST);
  return target as Target<E>;
}

/** The system call that runs `call` (see {@linkcode PathCall} for the steps). */
function pathCall<E extends Expect, Rest extends unknown[]>(call: PathCall<E, Rest>): SystemCall {
  return (state: WasiState, ...args: unknown[]): number => {
    const fd = args.shift() as number;
    const flags = call.lookup ? args.shift() as number : 0;
    const path = { ptr: args.shift() as number, len: args.shift() as number };
    const guest = state.guest();
    for (const span of call.results?.(...args as Rest) ?? []) guest.check(span.ptr, span.len);
    const follow = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0 &&
      call.follows?.(...args as Rest) !== false;
    const target = expectAt(resolveAt(state, fd, path, follow), call.expect);
    const paths: Resolved[] = [target];
    if (call.second) {
      const [secondFd = 0, ptr = 0, len = 0] = args.splice(0, 3) as number[];
      const second = resolveAt(state, secondFd, { ptr, len }, false);
      paths.push(second);
      args.unshift(second);
    }
    const rest = args as Rest;
    call.check?.(target, ...rest);
    const writes = typeof call.writes === "boolean" ? call.writes : call.writes(target, ...rest);
    if (writes) {
      for (const place of paths) permitWrite(state, place);
    }
    call.act(state, target, ...rest);
    return Errno.SUCCESS;
  };
}

/** Fails with `ENOTSUP` unless `info` is a regular file or a directory (a FIFO would block). */
function assertOpenable(info: Deno.FileInfo): void {
  if (!info.isFile && !info.isDirectory) fail(Errno.NOTSUP);
}

/** `path_open`'s arguments after the path. */
type OpenArgs = [
  oflags: number,
  rightsBase: bigint,
  rightsInheriting: bigint,
  fdflags: number,
  fdPtr: number,
];

/** What `path_open` was asked to do, from its `oflags` and rights. */
interface OpenMode {
  /** Opens a directory: one is there, or `O_DIRECTORY` asks for one. */
  readonly directory: boolean;
  readonly create: boolean;
  readonly exclusive: boolean;
  readonly truncate: boolean;
  /** The guest may `fd_read`: it asked to, or asked for no write right either. */
  readonly readable: boolean;
  /** The guest may `fd_write`. */
  readonly writable: boolean;
  /** The host file is opened for writing. */
  readonly write: boolean;
}

/** How `path_open` opens what `target` names. */
function openMode(target: Resolved, oflags: number, rightsBase: bigint): OpenMode {
  const writable = (rightsBase & (Rights.FD_WRITE | Rights.FD_ALLOCATE)) !== 0n;
  const create = (oflags & OFlags.CREAT) !== 0;
  const truncate = (oflags & OFlags.TRUNC) !== 0;
  return {
    directory: target.info?.isDirectory === true || (oflags & OFlags.DIRECTORY) !== 0,
    create,
    exclusive: (oflags & OFlags.EXCL) !== 0,
    truncate,
    readable: (rightsBase & Rights.FD_READ) !== 0n || !writable,
    writable,
    write: writable || create || truncate,
  };
}

/** `path_open`'s checks of what is at the path against what it was asked to do. */
function checkOpen(
  target: Resolved,
  oflags: number,
  rightsBase: bigint,
  _rightsInheriting: bigint,
  fdflags: number,
): void {
  // Bits past the flags (a negative i32 too) ask for nothing wasmplug knows: EINVAL, as wasmtime.
  if ((oflags & ~ALL_OFLAGS) !== 0 || (fdflags & ~ALL_FDFLAGS) !== 0) fail(Errno.INVAL);
  const { info } = target;
  const mode = openMode(target, oflags, rightsBase);
  // O_CREAT|O_DIRECTORY makes nothing, whatever is there: Linux (since 6.4) says EINVAL.
  if (mode.create && (oflags & OFlags.DIRECTORY) !== 0) fail(Errno.INVAL);
  // O_CREAT|O_EXCL on a symlink, dangling or not, is EEXIST (POSIX; it is never followed).
  if (info?.isSymlink && mode.create && mode.exclusive) fail(Errno.EXIST);
  if (info?.isSymlink) fail(Errno.LOOP); // not followed: the guest asked for O_NOFOLLOW
  // O_CREAT on a directory opens nothing, as on Linux (it opened the directory): EISDIR, and
  // EEXIST with O_EXCL unless the name ends in `/`.
  const slashed = target.directoryOnly === true && target.dotted !== ".";
  if (info?.isDirectory && mode.create && slashed) fail(Errno.ISDIR);
  if (info !== undefined && mode.create && mode.exclusive) fail(Errno.EXIST);
  if (info?.isDirectory && mode.create) fail(Errno.ISDIR);
  if (info === undefined && !mode.create) fail(Errno.NOENT);
  // "name/" with O_CREAT names a directory: no file of that name is made (Linux: EISDIR).
  if (info === undefined && target.directoryOnly === true) fail(Errno.ISDIR);
  if (oflags & OFlags.DIRECTORY && info !== undefined && !info.isDirectory) fail(Errno.NOTDIR);
  if (info !== undefined) assertOpenable(info);
  if (mode.directory) {
    // O_CREAT|O_DIRECTORY makes nothing: Linux says EINVAL.
    if (info === undefined) fail(mode.create ? Errno.INVAL : Errno.NOENT);
    if (mode.writable || mode.truncate) fail(Errno.ISDIR);
  }
}

/** Opens the file `target` names as `mode` says, checked to be that file, and adds it to `fds`. */
function openFile(fds: FdTable, target: Resolved, mode: OpenMode, fdflags: number): number {
  // Room first: an open refused for want of it must not have created or truncated the file.
  fds.reserveFile();
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(target.host, {
      read: mode.readable,
      write: mode.write,
      create: mode.create,
      createNew: mode.create && mode.exclusive,
    });
  } catch (err) {
    fds.unreserveFile();
    throw err;
  }
  try {
    // The file opened must be the one the confined path names, before
    // anything is done to it or through it (see `_path.ts`).
    const handle = file.statSync();
    confirmOpened(target, handle);
    assertOpenable(handle);
    if (mode.truncate) file.truncateSync(0);
    return fds.add({
      kind: "file",
      file,
      host: target.host,
      preopen: target.preopen,
      rel: target.rel,
      readable: mode.readable,
      writable: mode.writable,
      flags: fdflags,
    });
  } catch (err) {
    fds.unreserveFile();
    file.close();
    throw err;
  }
}

/** The system calls on paths, by their WASI names. */
export const PATH_CALLS: Readonly<Record<string, SystemCall>> = {
  path_open: pathCall<"any", OpenArgs>({
    lookup: true,
    expect: "any",
    results: (_oflags, _rightsBase, _rightsInheriting, _fdflags, fdPtr) => [{ ptr: fdPtr, len: 4 }],
    follows: (oflags) => (oflags & (OFlags.CREAT | OFlags.EXCL)) !== (OFlags.CREAT | OFlags.EXCL),
    check: checkOpen,
    writes(target, oflags, rightsBase): boolean {
      const mode = openMode(target, oflags, rightsBase);
      return !mode.directory && mode.write;
    },
    act(state, target, oflags, rightsBase, _rightsInheriting, fdflags, fdPtr): void {
      const mode = openMode(target, oflags, rightsBase);
      const fd = mode.directory
        ? state.fds.add({
          kind: "directory",
          preopen: target.preopen,
          rel: target.rel,
          isPreopen: false,
          flags: fdflags,
        })
        : openFile(state.fds, target, mode, fdflags);
      state.guest().setU32(fdPtr, fd);
    },
  }),

  path_filestat_get: pathCall<"existing", [ptr: number]>({
    lookup: true,
    expect: "existing",
    results: (ptr) => [{ ptr, len: Size.FILESTAT }],
    writes: false,
    act(state, target, ptr): void {
      confirmNamed(target);
      writeFilestat(state.guest(), ptr, target.info);
    },
  }),

  path_filestat_set_times: pathCall<"existing", [atim: bigint, mtim: bigint, flags: number]>({
    lookup: true,
    expect: "existing",
    check({ info }): void {
      // Deno's utime follows symlinks, which would reach past the link.
      if (info.isSymlink) fail(Errno.NOTSUP);
      assertOpenable(info);
    },
    writes: true,
    act: (_state, target, atim, mtim, flags) => setTimesAt(target, { atim, mtim, flags }),
  }),

  path_create_directory: pathCall<"absent", []>({
    lookup: false,
    expect: "absent",
    writes: true,
    act: (_state, { host }) => Deno.mkdirSync(host),
  }),

  path_unlink_file: pathCall<"existing", []>({
    lookup: false,
    expect: "existing",
    check({ info, slashedLink, dotted }): void {
      if (slashedLink) fail(Errno.NOTDIR);
      // `unlink("dir/.")` (a directory by then) is EISDIR on Linux, a link to one too.
      if (info.isDirectory || dotted !== undefined) fail(Errno.ISDIR);
    },
    writes: true,
    act: (_state, { host }) => Deno.removeSync(host),
  }),

  path_remove_directory: pathCall<"existing", []>({
    lookup: false,
    expect: "existing",
    check({ info, rel, slashedLink, dotted }): void {
      // `rmdir("link/")` removed the directory the link names.
      if (slashedLink || !info.isDirectory) fail(Errno.NOTDIR);
      // As Linux: `rmdir("sub/.")` is EINVAL, `rmdir("sub/..")` ENOTEMPTY (not a removal of
      // what they resolve to), the root EBUSY.
      if (dotted === ".") fail(Errno.INVAL);
      if (dotted === "..") fail(Errno.NOTEMPTY);
      if (rel.length === 0) fail(Errno.BUSY);
    },
    writes: true,
    act: (_state, { host }) => Deno.removeSync(host),
  }),

  path_rename: pathCall<"existing", [to: Resolved]>({
    lookup: false,
    expect: "existing",
    second: true,
    check(from, to): void {
      // `rename("sub/.", …)` would move `sub` itself: Linux refuses a `.` or `..` name (EBUSY).
      if (from.rel.length === 0 || to.rel.length === 0) fail(Errno.BUSY);
      if (from.dotted !== undefined || to.dotted !== undefined) fail(Errno.BUSY);
      // A trailing `/` names a directory: `rename("link/", …)` moved the link's target, and
      // `rename("file", "new/")` made a file.
      if (from.slashedLink || to.slashedLink) fail(Errno.NOTDIR);
      if ((from.directoryOnly || to.directoryOnly) && !from.info.isDirectory) fail(Errno.NOTDIR);
    },
    writes: true,
    act(state, from, to): void {
      // Symlinks and special files never move (see `_path.ts`).
      assertMovable(from.host, from.info, state.checkpoint);
      Deno.renameSync(from.host, to.host);
    },
  }),

  path_readlink: pathCall<"existing", [buf: number, bufLen: number, bufUsedPtr: number]>({
    lookup: false,
    expect: "existing",
    results: (buf, bufLen, bufUsedPtr) => [{ ptr: buf, len: bufLen }, { ptr: bufUsedPtr, len: 4 }],
    check({ info }): void {
      if (!info.isSymlink) fail(Errno.INVAL);
    },
    writes: false,
    act(state, link, buf, bufLen, bufUsedPtr): void {
      const text = Deno.readLinkSync(link.host);
      confirmNamed(link);
      const target = encode(text).subarray(0, bufLen);
      const guest = state.guest();
      guest.write(buf, target);
      guest.setU32(bufUsedPtr, target.length);
    },
  }),
};

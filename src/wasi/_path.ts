/**
 * Path resolution confined to a preopened directory, and the checks that
 * keep it confined while other threads change the tree.
 *
 * The guest's path is made of `/`-separated components relative to a
 * directory descriptor. `.` and `..` are applied to the canonical path of
 * that directory before the host sees anything, and `..` cannot climb above
 * it. Every component but the last is then canonicalized with
 * `Deno.realPathSync`, and the last one too when the call follows symlinks;
 * each canonical path must stay under the preopen's own canonical path, or
 * the call fails with `ENOTCAPABLE`. The host path handed to Deno is the
 * preopen's configured path plus the canonical components, so Deno's
 * permission checks (which compare paths lexically) see a path under the
 * granted directory.
 *
 * Deno has no `openat`, so between this check and the call that uses the
 * path, a component that was a directory may have become a symlink that
 * leads outside. Two guarantees close that window:
 *
 * - Against other plugins (which share preopens only through WASI), by an
 *   invariant: no WASI call ever creates or moves a symlink or a special
 *   file. `path_symlink` and `path_link` are not supported, and
 *   `path_rename` refuses (`ENOTCAPABLE`) a source that is anything but a
 *   regular file or a directory holding only regular files and directories
 *   ({@linkcode assertMovable}). Moving a directory moves everything in it,
 *   so the first WASI rename that moved a symlink would have had it in its
 *   source when it scanned that source: there is no first one, and every
 *   symlink stays where the host put it. A name that a check saw as a
 *   directory can then only become another directory or a regular file, and
 *   a path that resolved inside the preopen keeps resolving inside it.
 * - Against everyone, including processes outside wasmplug, by checking
 *   after the fact what was reached: `path_open` compares the opened
 *   handle's identity (device and inode, `FsFile.statSync()`) with what the
 *   confined path names once resolved again ({@linkcode confirmOpened}), and
 *   refuses with `ENOTCAPABLE` (closing the handle) when they differ;
 *   truncation and time changes go through that verified handle. Reads of
 *   metadata, links and listings are confirmed the same way
 *   ({@linkcode confirmNamed}) before the guest sees them. A process outside
 *   wasmplug that swaps symlinks in and out of a preopen as fast as it can
 *   still has windows (in a trial with another process swapping a symlink
 *   in a tight loop, about 1 open in 20 000 still read outside), and a file
 *   it makes `path_open` create or a
 *   `path_unlink_file`/`path_rename`/`path_create_directory`/
 *   `path_remove_directory` it redirects happens before any check can see
 *   it. Do not share a preopen with processes you do not trust.
 *
 * Every Deno file system call is preceded by a permission query
 * ({@linkcode permit}): unless Deno says `"granted"`, the call fails with
 * `EACCES` and Deno is never asked, so no permission prompt can come from a
 * plugin. A preopen without write permission, or outside the program's
 * write grant ({@linkcode permitWrite}), is read-only.
 *
 * @module
 */

import { Errno, fail } from "./_errno.ts";
import { type DirectoryDescriptor, hostPath, type Preopen } from "./_fd_table.ts";
import type { WasiState } from "./_state.ts";
import type { Place } from "./_write_grant.ts";
import { denoGrants } from "../host/mod.ts";

const SEPARATOR = Deno.build.os === "windows" ? "\\" : "/";

/** Where a guest path leads. */
export interface Resolved {
  readonly preopen: Preopen;
  /** Canonical components relative to the preopen's root (the last one may be a symlink that was not followed). */
  readonly rel: readonly string[];
  /** The host path to give Deno. */
  readonly host: string;
  /** What is there (`lstat`, or `stat` when a symlink was followed), `undefined` if nothing. */
  readonly info: Deno.FileInfo | undefined;
  /** The path ended in `/`: it names a directory, or nothing that can be made a file. */
  readonly directoryOnly?: boolean;
  /**
   * The last component is a symlink followed only because the path ended in
   * `/`: a call on the entry itself (unlink, rmdir, rename) fails with
   * `ENOTDIR` there, as on Linux, instead of acting on the link's target.
   */
  readonly slashedLink?: boolean;
  /**
   * The path's last component is `.` or `..` (a trailing `/` aside): Linux
   * refuses to remove or rename such a name (`rmdir("sub/.")` is `EINVAL`),
   * where the resolved `rel` alone would name `sub` itself.
   */
  readonly dotted?: "." | "..";
}

/** The canonical components of `real` below `preopen`, or `ENOTCAPABLE` if it is outside. */
function below(preopen: Preopen, real: string): string[] {
  if (real === preopen.real) return [];
  const prefix = preopen.real.endsWith(SEPARATOR) ? preopen.real : preopen.real + SEPARATOR;
  if (!real.startsWith(prefix)) fail(Errno.NOTCAPABLE);
  return real.slice(prefix.length).split(SEPARATOR);
}

/** Fails with `EACCES` unless Deno already grants `name` access to `path` (no prompt). */
export function permit(name: "read" | "write", path: string): void {
  if (!denoGrants({ name, path })) fail(Errno.ACCES);
}

/**
 * Whether the program may change `place`: its grant (`allowedPaths.write`)
 * covers it and Deno already grants writing it.
 */
export function mayWrite(state: WasiState, place: Place): boolean {
  return state.writable.allows(place) && denoGrants({ name: "write", path: place.host });
}

/** Fails with `EACCES` unless the program may change `place` ({@linkcode mayWrite}). */
export function permitWrite(state: WasiState, place: Place): void {
  if (!mayWrite(state, place)) fail(Errno.ACCES);
}

/** Whether two stats describe the same file (device and inode). */
function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  // Without inode numbers (some platforms), identity cannot be told: refuse.
  return a.ino !== null && a.ino === b.ino && a.dev === b.dev;
}

/**
 * Checks that `opened`, the stat of a handle just opened through
 * `target.host`, is the file the confined path names: the path's real path
 * is still under the preopen, names the same device and inode, and resolves
 * the same afterwards. Fails with `ENOTCAPABLE` otherwise.
 */
export function confirmOpened(target: Resolved, opened: Deno.FileInfo): void {
  const { preopen } = target;
  try {
    const real = Deno.realPathSync(target.host);
    const rel = below(preopen, real);
    const named = Deno.lstatSync(real);
    // Each directory on the way must be one (a symlink swapped in for one
    // would have redirected the lstat above), and the path must resolve the
    // same again: the window to fool this is a few system calls wide.
    for (let depth = 1; depth < rel.length; depth++) {
      if (!Deno.lstatSync(hostPath(preopen, rel.slice(0, depth))).isDirectory) {
        fail(Errno.NOTCAPABLE);
      }
    }
    if (!sameFile(named, opened) || Deno.realPathSync(target.host) !== real) fail(Errno.NOTCAPABLE);
  } catch {
    fail(Errno.NOTCAPABLE);
  }
}

/**
 * Checks, after a call read something through `target.host` (metadata, a
 * link, a listing), that the path still resolves inside the preopen to the
 * same file `target.info` describes. Fails with `ENOTCAPABLE` otherwise.
 */
export function confirmNamed(target: Resolved): void {
  const { preopen, rel, info } = target;
  if (info === undefined) return;
  let now: Deno.FileInfo;
  try {
    const parent = below(preopen, Deno.realPathSync(hostPath(preopen, rel.slice(0, -1))));
    if (parent.join("/") !== rel.slice(0, -1).join("/")) fail(Errno.NOTCAPABLE);
    now = info.isSymlink ? Deno.lstatSync(target.host) : Deno.statSync(target.host);
  } catch {
    return fail(Errno.NOTCAPABLE);
  }
  if (!sameFile(now, info)) fail(Errno.NOTCAPABLE);
}

/** How many directories {@linkcode assertMovable} reads between checkpoints. */
const SCAN_SLICE = 16;

/**
 * Fails with `ENOTCAPABLE` unless what is at `host` is a regular file, or a
 * directory holding (at any depth) only regular files and directories: the
 * only things WASI may move (see the module's documentation for why).
 */
export function assertMovable(host: string, info: Deno.FileInfo, checkpoint: () => void): void {
  if (info.isFile) return;
  if (!info.isDirectory) fail(Errno.NOTCAPABLE);
  const pending = [host];
  for (let scanned = 0; pending.length > 0; scanned++) {
    if (scanned % SCAN_SLICE === 0) checkpoint();
    const dir = pending.pop()!;
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory) pending.push(`${dir}/${entry.name}`);
      else if (!entry.isFile) fail(Errno.NOTCAPABLE);
    }
  }
}

/** `lstat`, with `undefined` for a missing entry. */
function lstat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Resolves `path` against the directory `dir`.
 *
 * @param follow Whether a symlink in the last component is followed
 *   (`lookupflags.symlink_follow`); a trailing `/` always follows.
 */
export function resolvePath(
  dir: DirectoryDescriptor,
  path: string,
  follow: boolean,
): Resolved {
  if (path.length === 0) fail(Errno.NOENT);
  if (path.includes("\0")) fail(Errno.INVAL);
  if (path.startsWith("/")) fail(Errno.NOTCAPABLE);
  if (SEPARATOR === "\\" && /[\\:]/.test(path)) fail(Errno.NOTCAPABLE);
  const { preopen } = dir;
  // Every path below is lexically under the preopen's host path, which Deno
  // grants (or not) as a whole.
  permit("read", preopen.host);
  const trailingSlash = path.endsWith("/");
  const components = [...dir.rel];
  /** The path's last non-empty component. */
  let named = "";
  for (const component of path.split("/")) {
    if (component !== "") named = component;
    if (component === "" || component === ".") continue;
    if (component !== "..") {
      components.push(component);
    } else if (components.length > dir.rel.length) {
      components.pop();
    } else {
      fail(Errno.NOTCAPABLE);
    }
  }
  const dotted = named === "." || named === ".." ? named : undefined;
  const last = components.pop();
  // The parent's real path also re-checks the root itself, in case the
  // preopened directory was replaced by a symlink after start.
  const parent = below(preopen, Deno.realPathSync(hostPath(preopen, components)));
  if (last === undefined) {
    const host = hostPath(preopen, parent);
    return { preopen, rel: parent, host, info: Deno.statSync(host), ...(dotted && { dotted }) };
  }
  let rel = [...parent, last];
  let info = lstat(hostPath(preopen, rel));
  // A last `.` names the directory before it, which must be there (`unlink("file/.")`
  // deleted the file, `mkdir("new/.")` made `new`): Linux walks into it, a symlink too.
  const throughDot = dotted === ".";
  if (throughDot && info === undefined) fail(Errno.NOENT);
  const slashedLink = info?.isSymlink === true && trailingSlash && !follow && !throughDot;
  if (info?.isSymlink && (follow || trailingSlash || throughDot)) {
    rel = below(preopen, Deno.realPathSync(hostPath(preopen, rel)));
    info = Deno.statSync(hostPath(preopen, rel));
  }
  if ((trailingSlash || throughDot) && info !== undefined && !info.isDirectory) {
    fail(Errno.NOTDIR);
  }
  const host = hostPath(preopen, rel);
  return {
    preopen,
    rel,
    host,
    info,
    directoryOnly: trailingSlash || throughDot,
    slashedLink,
    ...(dotted && { dotted }),
  };
}

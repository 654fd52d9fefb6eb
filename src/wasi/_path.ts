/**
 * Path resolution confined to a preopened directory.
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
 * The guest cannot race these checks (it is blocked in the call), but
 * another host process that swaps a directory for a symlink between the
 * check and the use can; the worker's Deno permissions are the second line.
 *
 * @module
 */

import { Errno, fail } from "./_errno.ts";
import { type DirectoryDescriptor, hostPath, type Preopen } from "./_fd_table.ts";

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
}

/** The canonical components of `real` below `preopen`, or `ENOTCAPABLE` if it is outside. */
function below(preopen: Preopen, real: string): string[] {
  if (real === preopen.real) return [];
  const prefix = preopen.real.endsWith(SEPARATOR) ? preopen.real : preopen.real + SEPARATOR;
  if (!real.startsWith(prefix)) fail(Errno.NOTCAPABLE);
  return real.slice(prefix.length).split(SEPARATOR);
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
  const trailingSlash = path.endsWith("/");
  const components = [...dir.rel];
  for (const component of path.split("/")) {
    if (component === "" || component === ".") continue;
    if (component !== "..") {
      components.push(component);
    } else if (components.length > dir.rel.length) {
      components.pop();
    } else {
      fail(Errno.NOTCAPABLE);
    }
  }
  const last = components.pop();
  // The parent's real path also re-checks the root itself, in case the
  // preopened directory was replaced by a symlink after start.
  const parent = below(preopen, Deno.realPathSync(hostPath(preopen, components)));
  if (last === undefined) {
    const host = hostPath(preopen, parent);
    return { preopen, rel: parent, host, info: Deno.statSync(host) };
  }
  let rel = [...parent, last];
  let info = lstat(hostPath(preopen, rel));
  if (info?.isSymlink && (follow || trailingSlash)) {
    rel = below(preopen, Deno.realPathSync(hostPath(preopen, rel)));
    info = Deno.statSync(hostPath(preopen, rel));
  }
  if (trailingSlash && info !== undefined && !info.isDirectory) fail(Errno.NOTDIR);
  return { preopen, rel, host: hostPath(preopen, rel), info };
}

/**
 * The paths a WASI program may change, besides what Deno lets the process
 * write: a plugin's `allowedPaths.write`. In a worker, Deno's permissions are
 * the plugin's own and say the same; an inline plugin shares the host's, so
 * without this list it could change whatever the host may.
 *
 * A place is writable when it lies under a granted path both as named (as
 * Deno checks a permission) and once symlinks are resolved (where the write
 * lands): a preopen or a directory that is a symlink cannot carry writes
 * out of the grant, and the two isolations agree.
 *
 * @module
 */

import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import type { Preopen } from "./_fd_table.ts";
import { denoGrants } from "../host/mod.ts";

/** A place in a preopen: its canonical components below the preopen's root, and its host path. */
export interface Place {
  readonly preopen: Preopen;
  readonly rel: readonly string[];
  readonly host: string;
}

/** Which places a program may change: those under the listed paths. */
export class WriteGrant {
  readonly #roots: readonly string[] | null;
  #canonicalRoots: readonly string[] | undefined;

  /**
   * @param paths The paths, relative ones resolved against the current
   *   directory now (as Deno resolves a permission list); `null`: every
   *   place, as far as Deno allows.
   */
  constructor(paths: readonly string[] | null) {
    this.#roots = paths === null ? null : absolutePaths(paths);
  }

  /** Whether `place` lies under a granted path, as named and as resolved. */
  allows(place: Place): boolean {
    const roots = this.#roots;
    if (roots === null) return true;
    // Resolved once, when first needed: by then the preopens were opened.
    const canonicalRoots = this.#canonicalRoots ??= roots.map(canonicalPath);
    const real = join(place.preopen.real, ...place.rel);
    return roots.some((root) => below(root, resolve(place.host))) &&
      canonicalRoots.some((root) => below(root, real));
  }
}

/** `paths` made absolute against the current directory, as {@linkcode WriteGrant} keeps them. */
export function absolutePaths(paths: readonly string[]): string[] {
  return paths.map((path) => resolve(path));
}

/** Whether `path` is `root` or lies below it (both absolute and normalized). */
function below(root: string, path: string): boolean {
  const rest = relative(root, path);
  return rest === "" ||
    (rest !== ".." && !rest.startsWith("../") && !rest.startsWith("..\\") && !isAbsolute(rest));
}

/**
 * `path` with symlinks resolved: its nearest existing ancestor's real path
 * and the rest as named. Where Deno does not grant reading it, `path` as it
 * is (asked first: never a prompt).
 */
function canonicalPath(path: string): string {
  const missing: string[] = [];
  for (let at = path;;) {
    if (!denoGrants({ name: "read", path: at })) return path;
    try {
      return join(Deno.realPathSync(at), ...missing.reverse());
    } catch {
      const parent = dirname(at);
      if (parent === at) return path;
      missing.push(basename(at));
      at = parent;
    }
  }
}

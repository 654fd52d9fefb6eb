/**
 * The paths a WASI program may change, besides what Deno lets the process
 * write: a plugin's `allowedPaths.write`. In a worker, Deno's permissions are
 * the plugin's own and say the same; an inline plugin shares the host's, so
 * without this list it could change whatever the host may.
 *
 * @module
 */

import { isAbsolute, relative, resolve } from "node:path";

/** Which paths a program may change: those listed and everything below them. */
export class WriteGrant {
  readonly #roots: readonly string[] | null;

  /**
   * @param paths The paths, relative ones resolved against the current
   *   directory now (as Deno resolves a permission list); `null`: every
   *   path, as far as Deno allows.
   */
  constructor(paths: readonly string[] | null) {
    this.#roots = paths === null ? null : absolutePaths(paths);
  }

  /** Whether `path` is one of the granted paths or lies below one. */
  allows(path: string): boolean {
    const roots = this.#roots;
    if (roots === null) return true;
    const target = resolve(path);
    return roots.some((root) => {
      const below = relative(root, target);
      return below === "" ||
        (below !== ".." && !below.startsWith("../") && !below.startsWith("..\\") &&
          !isAbsolute(below));
    });
  }
}

/** `paths` made absolute against the current directory, as {@linkcode WriteGrant} keeps them. */
export function absolutePaths(paths: readonly string[]): string[] {
  return paths.map((path) => resolve(path));
}

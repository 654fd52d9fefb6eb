/**
 * The Deno permissions of a plugin's worker, derived from its capabilities:
 * nothing by default; `NetworkAccess` grants `net` for `allowedHosts`;
 * `FileSystem` grants `read` for `allowedPaths.read` and the WASI preopens,
 * and `write` for `allowedPaths.write`.
 * Nothing else, ever.
 *
 * Not granting is all Deno 2.9 lets a parent do: `false`, `"none"` and `[]`
 * all leave a worker's permission in the state `"prompt"` (there is no
 * `"denied"` for workers, and a worker inherits the process's prompting, so on
 * a terminal a check of an ungranted permission would ask the operator).
 * wasmplug's host functions therefore query before they use a permission and
 * refuse what is not granted (`src/host/_deno_permission.ts`).
 *
 * @module
 */

import { Capability } from "../capability.ts";
import { denoGrants } from "../host/mod.ts";

/** The parts of a plugin config that decide its worker's permissions. */
export interface PermissionSource {
  readonly capabilities: ReadonlySet<string>;
  readonly allowedHosts?: readonly string[] | undefined;
  readonly allowedPaths?:
    | { readonly read?: readonly string[]; readonly write?: readonly string[] }
    | undefined;
  readonly preopens?: Readonly<Record<string, string>> | undefined;
}

function listOrNone(items: readonly string[]): string[] | false {
  return items.length === 0 ? false : [...new Set(items)];
}

/**
 * `paths` and the real path of each that is a symlink or lies below one: a
 * preopen at `/tmp/data` (a symlink on macOS) is read as `/private/tmp/data`
 * once the WASI layer resolves it, and Deno checks that path. A real path is
 * added only where the host holds the same permission (`name`) for it: a
 * worker cannot be granted what its host lacks (a link out of the host's
 * grant stays a path the guest is refused, as inline). What does not exist
 * is kept as named (asked first: never a prompt).
 */
function withRealPaths(paths: readonly string[], name: "read" | "write"): string[] {
  const all = [...paths];
  for (const path of paths) {
    if (!denoGrants({ name: "read", path })) continue;
    let real: string;
    try {
      real = Deno.realPathSync(path);
    } catch {
      continue; // missing: nothing to resolve (the plugin's creation says so if it is a preopen)
    }
    if (real !== path && denoGrants({ name, path: real })) all.push(real);
  }
  return all;
}

/** Builds the worker's permission set. */
export function workerPermissions(source: PermissionSource): Deno.PermissionOptionsObject {
  const network = source.capabilities.has(Capability.NetworkAccess);
  const files = source.capabilities.has(Capability.FileSystem);
  const preopened = Object.values(source.preopens ?? {});
  return {
    env: false,
    ffi: false,
    import: false,
    net: network ? listOrNone(source.allowedHosts ?? []) : false,
    read: files
      ? listOrNone(withRealPaths([...(source.allowedPaths?.read ?? []), ...preopened], "read"))
      : false,
    run: false,
    sys: false,
    // Preopens are readable; writing needs the path in allowedPaths.write too.
    write: files ? listOrNone(withRealPaths(source.allowedPaths?.write ?? [], "write")) : false,
  };
}

/**
 * How a plugin's worker starts: the script it runs, the `Worker` with the
 * plugin's Deno permissions, the setup it is posted and the answer it
 * gives (or its death, or its silence), and how its clock relates to the
 * host's.
 *
 * @module
 */

import { InstantiationError, WorkerCrashedError } from "../errors.ts";
import { MAX_TIMER_MS } from "../common/mod.ts";
import type { InternalOptions } from "../backend/mod.ts";
import { bundledWorkerUrl } from "./_worker_bundle.ts";
import { denoGrants } from "../host/mod.ts";
import type { WorkerReady, WorkerSetup } from "./_protocol.ts";
import { ignoreWorker, onWorkerFailure } from "./_worker_failure.ts";

/** How long a worker may take to load and report ready, unless the internal options say. */
export const BOOT_TIMEOUT_MS = 30_000;

/**
 * The script a plugin's worker runs: the bundled entry (`_worker_bundle.ts`),
 * which loads nothing more, unless the runtime's internal options name another.
 */
export function workerScriptOf(internal: InternalOptions): URL {
  return internal.workerUrl ?? bundledWorkerUrl();
}

/**
 * Creates the worker of a plugin with the Deno permissions of its
 * capabilities. Without them (`null`), no `deno` option at all: without
 * `--unstable-worker-options`, Deno ends the process when it sees one.
 */
export function newWorker(
  script: URL,
  { pluginName, permissions }: {
    pluginName: string;
    permissions: Deno.PermissionOptionsObject | null;
  },
): Worker {
  try {
    // Without a prototype: Deno reads `deno` (and more) from these options, and a polluted
    // `Object.prototype` must not give the worker permissions.
    const options = Object.assign(Object.create(null), {
      type: "module",
      name: `wasmplug:${pluginName}`,
      ...(permissions === null
        ? {}
        : { deno: Object.assign(Object.create(null), { permissions }) }),
    });
    return new Worker(script, options as WorkerOptions);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable) || permissions === null) throw err;
    const missing = permissionsMissing(permissions);
    // If the host's permissions cannot say which (they changed meanwhile), all of them.
    const named = missing.length > 0 ? missing : describePermissions(permissions);
    throw new InstantiationError(
      `Cannot start the worker of plugin "${pluginName}": its capabilities grant Deno permissions the host does not have (${
        named.join("; ")
      }), and a worker cannot have more than its host`,
      { cause: err },
    );
  }
}

/** The field of a permission descriptor that names one item of a permission's list. */
const ITEM_FIELDS: Readonly<Record<string, string>> = {
  read: "path",
  write: "path",
  ffi: "path",
  net: "host",
  import: "host",
  env: "variable",
  run: "command",
  sys: "kind",
};

/** Each granted permission as `name: items` (or `name: true`). */
function describePermissions(permissions: Deno.PermissionOptionsObject): string[] {
  return Object.entries(permissions)
    .filter(([, value]) => value !== false && value !== undefined)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : value}`);
}

/** Which of `permissions` the host lacks, each as `name: items` (or `name: true`). */
function permissionsMissing(permissions: Deno.PermissionOptionsObject): string[] {
  const missing: string[] = [];
  for (const [name, value] of Object.entries(permissions)) {
    if (value === false || value === undefined || value === "inherit") continue;
    const field = ITEM_FIELDS[name];
    if (Array.isArray(value) && field !== undefined) {
      const lacking = value.filter((item) =>
        !denoGrants({ name, [field]: String(item) } as unknown as Deno.PermissionDescriptor)
      );
      if (lacking.length > 0) missing.push(`${name}: ${lacking.join(", ")}`);
    } else if (!denoGrants({ name } as Deno.PermissionDescriptor)) {
      missing.push(`${name}: ${value}`);
    }
  }
  return missing;
}

/** Posts the setup and waits for the worker's answer (or its death), at most `bootTimeoutMs`. */
export function startup(
  worker: Worker,
  setup: WorkerSetup,
  { bootTimeoutMs }: { bootTimeoutMs: number },
): Promise<WorkerReady> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ignoreWorker(worker);
      reject(
        new WorkerCrashedError(`The plugin's worker did not start within ${bootTimeoutMs} ms`),
      );
    }, Math.min(bootTimeoutMs, MAX_TIMER_MS));
    onWorkerFailure(worker, (description, cause) => {
      clearTimeout(timer);
      reject(
        new WorkerCrashedError(`The plugin's worker failed to start: ${description}`, { cause }),
      );
    }, (ready) => {
      clearTimeout(timer);
      resolve(ready as WorkerReady);
    });
    worker.postMessage(setup);
  });
}

/**
 * What to add to a time on the worker's clock for the host's: the
 * difference of the two clocks' origins, which is exact, unless it is not
 * within a second below what the ready message's own time gives (that one
 * is late by the message's way: about 0.4 ms on an idle machine, more on a
 * busy one). The origins come from the wall clock: one above that bound
 * means it stepped forward between the two starts, one far below it that
 * it stepped back; the message's bound is used then.
 *
 * @example
 * ```ts ignore
 * // A worker whose clock started 5 ms after the host's, and whose ready message took 0.4 ms:
 * const now = performance.now() - 5 - 0.4;
 * const ready = { ok: true, now, timeOrigin: performance.timeOrigin + 5 } as const;
 * clockOffsetOf({ ...ready, memoryBytes: 0, interrupt: new SharedArrayBuffer(4), hasStart: false }); // 5
 * ```
 */
export function clockOffsetOf(ready: WorkerReady & { ok: true }): number {
  const byMessage = performance.now() - ready.now;
  const byOrigin = ready.timeOrigin - performance.timeOrigin;
  return byOrigin <= byMessage && byOrigin > byMessage - 1000 ? byOrigin : byMessage;
}

/**
 * Whether a plugin's worker gets Deno permissions of its own
 * (`execution.workerPermissions`). Deno 2.9 gives a worker a permission
 * state of its own only with `--unstable-worker-options`; without the flag a
 * worker shares the host's state, and asking for worker permissions ends the
 * process (exit 70, uncatchable). So:
 *
 * - `"narrow"`: each worker gets exactly the permissions of its plugin's
 *   capabilities (`_permissions.ts`), everything else denied;
 * - `"inherit"`: workers are started without permissions of their own. A
 *   plugin that needs none still runs in its own worker (preemption, its own
 *   heap, nothing but its granted imports); one whose capabilities need Deno
 *   permissions in its worker is refused, since its worker would get all of
 *   the host's. wasmplug warns once per process that narrowing is off.
 *
 * The default is `"narrow"` when the flag is known to be on
 * (`_worker_options.ts`), else `"inherit"`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { InstantiationError } from "../errors.ts";
import { describeValue } from "../common/mod.ts";
import { type PermissionSource, workerPermissions } from "./_permissions.ts";
import { workerOptionsOfProcess, type WorkerOptionsState } from "./_worker_options.ts";

/** The values of `execution.workerPermissions`. */
export type WorkerPermissionMode = "narrow" | "inherit";

const FLAG_HINT =
  'Deno\'s --unstable-worker-options flag (or "unstable": ["worker-options"] in deno.json)';

/**
 * The mode a runtime uses: the one given, or the default.
 *
 * @param value `execution.workerPermissions` as given.
 * @param state Whether the flag is on (by default: as detected for this process).
 * @throws {TypeError} If `value` is neither mode, or is `"narrow"` while the flag is known to be off.
 */
export function resolveWorkerPermissions(
  value: unknown,
  state: () => WorkerOptionsState = workerOptionsOfProcess,
): WorkerPermissionMode {
  if (value === undefined) return state() === "enabled" ? "narrow" : "inherit";
  if (value !== "narrow" && value !== "inherit") {
    throw new TypeError(
      `Cannot use 'execution.workerPermissions': expected "narrow" or "inherit", received ${
        describeValue(value)
      }`,
    );
  }
  if (value === "narrow" && state() === "disabled") {
    throw new TypeError(
      `Cannot use 'execution.workerPermissions' = "narrow": it needs ${FLAG_HINT}, which this process runs without (Deno would end it at the first plugin worker); run with the flag, or use "inherit"`,
    );
  }
  return value;
}

let warned = false;

/**
 * The Deno permissions to start a plugin's worker with; `null` to start it
 * without permissions of its own (`"inherit"`).
 *
 * @param mode The runtime's `execution.workerPermissions`.
 * @param source The plugin's capabilities and paths.
 * @param pluginName For the message.
 * @throws {InstantiationError} In `"inherit"` mode, if the capabilities need Deno permissions in the worker.
 */
export function permissionsOfWorker(
  mode: WorkerPermissionMode,
  source: PermissionSource,
  pluginName: string,
): Deno.PermissionOptionsObject | null {
  const permissions = workerPermissions(source);
  if (mode === "narrow") return permissions;
  const needed = Object.entries(permissions)
    .filter(([, value]) => value !== false)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : value}`);
  if (needed.length > 0) {
    throw new InstantiationError(
      `Cannot create plugin "${pluginName}" in worker isolation: its capabilities need Deno permissions narrowed to its worker (${
        needed.join("; ")
      }), which needs ${FLAG_HINT} and execution.workerPermissions "narrow" (the default when the flag is detected); without them its worker would have all of the host's permissions. Run with the flag, or use isolation "inline" for trusted code`,
    );
  }
  if (!warned) {
    warned = true;
    getLogger(["wasmplug", "worker"]).warn(
      `Plugin workers run with the host's Deno permissions (execution.workerPermissions "inherit"): each plugin still has its own worker and reaches only its granted imports, but Deno narrows a worker's permissions only with ${FLAG_HINT}; run with it to give each worker just its capabilities' permissions`,
    );
  }
  return null;
}

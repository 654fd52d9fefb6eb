/**
 * Entry module of `src/worker/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * The worker isolation: a backend that runs each plugin's instance in its
 * own Deno Worker with its own permissions, and the shared-memory channel
 * its calls travel over.
 *
 * @module
 */

export { permissionsOfWorker, resolveWorkerPermissions } from "./_permission_mode.ts";
export { createWorkerBackend } from "./_worker_backend.ts";
export { WorkerPool, type WorkerPoolOptions } from "./_worker_pool.ts";

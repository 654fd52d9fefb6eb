/**
 * Idle plugin workers kept for the next plugin with the same Deno
 * permissions. `new Worker()` holds the calling thread while the new thread
 * sets up its isolate (about 19 ms on an idle machine here, hundreds under
 * load), so a plugin that stops or parks hands its worker back instead of
 * ending it, when its worker is known to be clean, and the next start takes
 * it. A kept worker ends after a short idle time, so a runtime's idle
 * threads stay few and short-lived.
 *
 * @module
 */

import { ignoreWorker, onWorkerFailure } from "./_worker_failure.ts";

/** How a runtime keeps idle workers. */
export interface WorkerPoolOptions {
  /**
   * Most idle workers kept at once, over every permission set.
   *
   * @default {4}
   */
  readonly maxIdle?: number | undefined;
  /**
   * How long an idle worker is kept before it is terminated, in
   * milliseconds.
   *
   * @default {2000}
   */
  readonly idleMs?: number | undefined;
  /**
   * How many bytes of linear memory and channel buffers the plugins a
   * worker served may add up to before it is ended instead of kept. A
   * stopped plugin's memory (and the buffer its large messages grew) is
   * freed only when its worker collects its garbage, which a worker with
   * little JavaScript work does rarely, so a worker kept without this bound
   * could hold the memories of many plugins that no longer exist.
   *
   * @default {67108864}
   */
  readonly maxServedBytes?: number | undefined;
}

/** The default of {@linkcode WorkerPoolOptions.maxServedBytes}: 64 MiB. */
export const DEFAULT_MAX_SERVED_BYTES = 64 * 1024 * 1024;

interface IdleWorker {
  readonly worker: Worker;
  /** The name it was started with (its first plugin's: a worker cannot be renamed). */
  readonly name: string;
  readonly key: string;
  readonly servedBytes: number;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** A kept worker, the name it was started with, and the memory its plugins had. */
export interface KeptWorker {
  readonly worker: Worker;
  readonly name: string;
  /** The bytes of linear memory and channel buffers of every plugin it served, added up. */
  readonly servedBytes: number;
}

/**
 * A runtime's idle workers, by the key of what they can run: the script and
 * the Deno permissions a worker was started with.
 *
 * @example
 * ```ts ignore
 * const pool = new WorkerPool({ maxIdle: 2, idleMs: 1000 });
 * const worker = pool.take(key, "my-plugin")?.worker ?? new Worker(script, { name: "my-plugin" });
 * // ... the plugin, whose memory had 65536 bytes, stops cleanly:
 * pool.give(key, { worker, name: "my-plugin", servedBytes: 65536 });
 * pool.close(); // terminates what it keeps
 * ```
 */
export class WorkerPool {
  readonly #maxIdle: number;
  readonly #idleMs: number;
  readonly #maxServedBytes: number;
  /** Oldest first. */
  readonly #idle: IdleWorker[] = [];
  #closed = false;

  /** Creates an empty pool. */
  constructor(
    { maxIdle = 4, idleMs = 2000, maxServedBytes = DEFAULT_MAX_SERVED_BYTES }: WorkerPoolOptions =
      {},
  ) {
    this.#maxIdle = maxIdle;
    this.#idleMs = idleMs;
    this.#maxServedBytes = maxServedBytes;
  }

  /** How many workers it keeps now. */
  get size(): number {
    return this.#idle.length;
  }

  /**
   * Takes a kept worker of `key`, if there is one: the most recent one
   * started with `name`, so that a restarted plugin runs in a worker named
   * for it (Deno names a worker in its own messages), else the most recent.
   */
  take(key: string, name?: string): KeptWorker | undefined {
    let found: IdleWorker | undefined;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const idle = this.#idle[i]!;
      if (idle.key !== key) continue;
      found ??= idle;
      if (idle.name === name) {
        found = idle;
        break;
      }
    }
    if (found === undefined) return undefined;
    this.#idle.splice(this.#idle.indexOf(found), 1);
    clearTimeout(found.timer);
    ignoreWorker(found.worker);
    return { worker: found.worker, name: found.name, servedBytes: found.servedBytes };
  }

  /**
   * Keeps a worker, which waits for its next setup, for the next start of
   * `key`; terminates it instead when the pool is closed or the memories of
   * the plugins it served exceed `maxServedBytes`, and makes room by
   * terminating the oldest kept worker when it is full.
   */
  give(key: string, { worker, name, servedBytes }: KeptWorker): void {
    if (this.#closed || this.#maxIdle <= 0 || servedBytes > this.#maxServedBytes) {
      worker.terminate();
      return;
    }
    if (this.#idle.length >= this.#maxIdle) this.#end(this.#idle[0]!);
    const timer = setTimeout(() => this.#end(idle), this.#idleMs);
    // Kept workers must not keep the process alive longer than this timer does.
    Deno.unrefTimer(timer);
    const idle: IdleWorker = { worker, name, key, servedBytes, timer };
    // A kept worker that fails has nothing to report to: it just goes.
    onWorkerFailure(worker, () => this.#end(idle));
    this.#idle.push(idle);
  }

  /** Terminates every kept worker; later ones are terminated as they come. */
  close(): void {
    this.#closed = true;
    while (this.#idle.length > 0) this.#end(this.#idle[0]!);
  }

  #end(idle: IdleWorker): void {
    const at = this.#idle.indexOf(idle);
    if (at >= 0) this.#idle.splice(at, 1);
    clearTimeout(idle.timer);
    ignoreWorker(idle.worker);
    idle.worker.terminate();
  }
}

/**
 * The pool key of a worker: what it runs and the permissions it has. Two
 * plugins whose keys are equal can share a worker in turn.
 *
 * @example
 * ```ts ignore
 * workerKey(new URL("file:///w.js"), null); // "file:///w.js\u0000null"
 * ```
 */
export function workerKey(script: URL, permissions: Deno.PermissionOptionsObject | null): string {
  return `${script.href}\u0000${JSON.stringify(permissions)}`;
}

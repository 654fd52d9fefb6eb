/**
 * Configuration of a {@linkcode WasmRuntime}.
 *
 * @module
 */

import type { ResourceLimits } from "./resource_limits.ts";

/**
 * Where a plugin's code runs: in its own Deno Worker, or on the host thread.
 *
 * @example
 * ```ts
 * import type { Isolation } from "@wasmplug/wasmplug";
 * const trusted: Isolation = "inline";
 * ```
 */
export type Isolation = "worker" | "inline";

/**
 * How plugins are executed.
 *
 * @example
 * ```ts
 * import type { ExecutionConfig } from "@wasmplug/wasmplug";
 * const execution: ExecutionConfig = { fuelMetering: false, isolation: "inline" };
 * ```
 */
export interface ExecutionConfig {
  /**
   * Instrument modules with a fuel counter so `maxFuel` is enforced and
   * `metrics().fuelConsumed` counts. With `false`, nothing is counted, the
   * effective `maxFuel` is `null`, and a numeric `maxFuel` (in the runtime's
   * or a plugin's `resourceLimits`) or a per-call `fuel` is a `RangeError`.
   *
   * @default {true}
   */
  fuelMetering?: boolean;
  /**
   * Instrument loop headers and function entries with a deadline check so
   * `maxExecutionTimeMs` stops running code. Worker plugins always get the
   * check (it is how a timeout stops a guest without killing its worker). With `false`, an inline
   * plugin's deadline still ends host calls, waits and WASI I/O, but a pure
   * wasm loop runs until it returns.
   *
   * @default {true}
   */
  epochInterruption?: boolean;
  /**
   * Where plugins run: `"worker"` gives each plugin its own Deno Worker
   * (with the Deno permissions of its capabilities, see
   * `workerPermissions`); `"inline"` runs trusted code on the host thread.
   *
   * @default {"worker"}
   */
  isolation?: Isolation;
  /**
   * Whether each plugin worker gets Deno permissions of its own.
   *
   * - `"narrow"`: exactly the permissions of its capabilities (`FileSystem`:
   *   its `allowedPaths` and preopens; `NetworkAccess`: its `allowedHosts`),
   *   everything else denied. Needs Deno's `--unstable-worker-options` flag
   *   (or `"unstable": ["worker-options"]` in deno.json); a runtime asked for
   *   `"narrow"` in a process known to lack the flag throws a `TypeError`
   *   (where the flag cannot be detected, Deno ends the process with exit
   *   code 70 at the first worker).
   * - `"inherit"`: workers share the host's permissions (all Deno 2.9 allows
   *   without the flag). A plugin whose capabilities need none still runs in
   *   its own worker, and wasmplug logs a warning once per process (category
   *   `["wasmplug", "worker"]`); creating one whose capabilities need Deno
   *   permissions in its worker fails with an `InstantiationError` naming
   *   the flag.
   *
   * The flag is detected from the command line (readable with
   * `--allow-all`) and the `unstable` list of the deno.json in use (where
   * it can be read).
   *
   * @example Narrow worker permissions, with the flag on
   * ```ts ignore
   * // deno run --unstable-worker-options main.ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { workerPermissions: "narrow" } });
   * ```
   *
   * @default {"narrow" when the flag is known to be on, else "inherit"}
   */
  workerPermissions?: "narrow" | "inherit";
}

/**
 * The compiled-module cache.
 *
 * @example
 * ```ts
 * import type { CacheOptions } from "@wasmplug/wasmplug";
 * const cache: CacheOptions = { maxEntries: 64, dir: "./.wasmplug-cache" };
 * ```
 */
export interface CacheOptions {
  /**
   * How many compiled modules to keep in memory (least recently used go first).
   *
   * @default {128}
   */
  maxEntries?: number;
  /**
   * How many bytes of modules the cache holds at most: each module's own
   * bytes and those of the instrumented modules prepared from it (the
   * engine's compiled code for them takes several times that again). The
   * least recently used go first; a module heavier than the whole bound is
   * not kept. `Infinity` bounds the cache by `maxEntries` alone.
   *
   * @default {268435456 (256 MiB)}
   */
  maxBytes?: number;
  /**
   * A directory where the binaries produced from WAT are kept across runs, so
   * `compileWat` skips the WAT compiler for text it has seen. Needs read and
   * write permission for that directory.
   */
  dir?: string;
}

/**
 * Options of `new WasmRuntime(config)`.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({
 *   execution: { fuelMetering: false, epochInterruption: false, isolation: "inline" },
 *   resourceLimits: { maxMemoryPages: 16, maxExecutionTimeMs: 1000 },
 *   cache: { maxEntries: 32 },
 * });
 * ```
 */
export interface RuntimeConfig {
  /** How plugins are executed. */
  execution?: ExecutionConfig;
  /**
   * Limits for every plugin of this runtime; a plugin's config may override them.
   *
   * @default {DEFAULT_LIMITS}
   */
  resourceLimits?: Partial<ResourceLimits>;
  /**
   * The module cache: `true` for the defaults, `false` to compile every time.
   *
   * @default {true}
   */
  cache?: boolean | CacheOptions;
  /**
   * How long a worker plugin may go without a call or memory access before
   * its worker is parked, in milliseconds: its memory and mutable globals
   * are handed to the host and the worker is let go (kept idle for the
   * runtime's next plugin start for 2 s at most, then terminated), so a
   * script that never closes its plugins can still exit. The next call
   * starts a new instance, in a kept worker or a new one, that carries on
   * from that state (the module's start function does not run again).
   * `Infinity` never parks.
   *
   * A plugin whose state is more than its memory and globals is never
   * parked, and only `close()` ends its worker: a module that imports a
   * memory, table or global; that exports a table; whose code changes a
   * table or drops a segment (`table.set`, `table.grow`, `table.fill`,
   * `table.copy`, `table.init`, `elem.drop`, `data.drop`); that has GC
   * types or a mutable global of a reference or vector type; or whose WASI
   * descriptors changed (a file opened, closed or renumbered).
   *
   * @default {2000}
   */
  idleTimeoutMs?: number;
  /**
   * How many idle workers the runtime keeps, and for how long: a worker
   * plugin that stops or parks leaves its worker (when nothing of its guest
   * can still run), and the next plugin with the same Deno permissions
   * starts in it instead of a new thread, whose start holds the host's
   * thread (about 20 ms, hundreds with busy plugins). `maxIdle` counts
   * every permission set together; each kept worker ends after `idleMs`
   * without a plugin, and all end with `close()`. `{ maxIdle: 0 }` keeps
   * none. A worker whose plugins' linear memories and channel buffers add
   * up to more than `maxServedBytes` (64 MiB by default) is ended instead: a stopped
   * plugin's memory is freed only when its worker collects its garbage,
   * so a kept worker could otherwise hold the memories of many plugins
   * that no longer exist.
   *
   * @example Keep up to 16 workers for 10 s, for a host that restarts many plugins at once
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ workerPool: { maxIdle: 16, idleMs: 10_000 } });
   * ```
   *
   * @default {{ maxIdle: 4, idleMs: 2000, maxServedBytes: 67108864 }}
   */
  workerPool?: {
    readonly maxIdle?: number;
    readonly idleMs?: number;
    readonly maxServedBytes?: number;
  };
}

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
   * Instrument modules with a fuel counter so `maxFuel` is enforced.
   *
   * @default {true}
   */
  fuelMetering?: boolean;
  /**
   * Instrument loop headers and function entries with a deadline check so
   * `maxExecutionTimeMs` stops running code.
   *
   * @default {true}
   */
  epochInterruption?: boolean;
  /**
   * Where plugins run: `"worker"` gives each plugin its own Deno Worker with
   * the Deno permissions of its capabilities (needs Deno's
   * `--unstable-worker-options`); `"inline"` runs trusted code on the host
   * thread.
   *
   * @default {"worker"}
   */
  isolation?: Isolation;
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
   * are handed to the host and the worker is terminated, so a script that
   * never closes its plugins can still exit. The next call starts a new
   * worker that carries on from that state (the module's start function
   * does not run again). `Infinity` never parks.
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
}

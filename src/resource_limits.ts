/**
 * Resource limits: how much memory, table space, time, fuel, call depth and
 * host-side storage a plugin may use, and how many plugins a runtime may host
 * at once.
 *
 * @module
 */

/**
 * Limits enforced on every plugin. None of them is advisory.
 *
 * @example Restrict a runtime, then loosen one plugin
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({
 *   execution: { isolation: "inline" },
 *   resourceLimits: { maxMemoryPages: 16, maxExecutionTimeMs: 1000 },
 * });
 * await using plugin = await runtime.createPluginFromWat("(module (memory 1))", {
 *   resourceLimits: { maxMemoryPages: 32 },
 * });
 * ```
 */
export interface ResourceLimits {
  /**
   * Maximum size of the plugin's linear memory, in 64 KiB pages: the sum
   * over all its memories. A module whose declared minimums add up to more
   * fails to load; `memory.grow` beyond returns -1.
   *
   * @default {256}
   */
  readonly maxMemoryPages: number;
  /**
   * Maximum number of table elements of the plugin: the sum over all its
   * tables. A module whose declared minimums add up to more fails to load;
   * `table.grow` beyond returns -1.
   *
   * @default {10_000}
   */
  readonly maxTableElements: number;
  /**
   * Maximum number of live plugin instances per runtime.
   *
   * @default {10}
   */
  readonly maxInstances: number;
  /**
   * Wall-clock budget of one call, in milliseconds.
   *
   * @default {30_000}
   */
  readonly maxExecutionTimeMs: number;
  /**
   * Instruction budget of one call (see the README's cost model); `null`
   * sets no budget. Fuel is counted (and `metrics().fuelConsumed` grows)
   * whenever `execution.fuelMetering` is on, whatever this limit; with
   * metering off this limit is `null` and a number here is a `RangeError`.
   *
   * @default {100_000_000}
   */
  readonly maxFuel: number | null;
  /**
   * Maximum depth of nested wasm calls.
   *
   * @default {1000}
   */
  readonly maxCallDepth: number;
  /**
   * Bytes the host may hold for one plugin on its behalf: the keys and values
   * of its `host_storage_set` records and of the config entries it wrote with
   * `host_set_config` (UTF-8 lengths), plus 256 bytes of bookkeeping per
   * record. A write beyond it fails the call with a `ResourceLimitError`
   * (`limit: "maxStorageBytes"`) and leaves the stored state as it was;
   * replacing a key gives back the old record's size first.
   *
   * @default {16_777_216}
   */
  readonly maxStorageBytes: number;
}

/**
 * The limits a runtime uses when none are given.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@wasmplug/wasmplug";
 * console.log(DEFAULT_LIMITS.maxMemoryPages); // 256
 * ```
 */
export const DEFAULT_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxMemoryPages: 256,
  maxTableElements: 10_000,
  maxInstances: 10,
  maxExecutionTimeMs: 30_000,
  maxFuel: 100_000_000,
  maxCallDepth: 1000,
  maxStorageBytes: 16 * 1024 * 1024,
});

/**
 * Tight limits for code that nobody trusts.
 *
 * @example
 * ```ts
 * import { RESTRICTIVE_LIMITS, WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({
 *   execution: { isolation: "inline" },
 *   resourceLimits: RESTRICTIVE_LIMITS,
 * });
 * ```
 */
export const RESTRICTIVE_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxMemoryPages: 16,
  maxTableElements: 1_000,
  maxInstances: 1,
  maxExecutionTimeMs: 5_000,
  maxFuel: 10_000_000,
  maxCallDepth: 100,
  maxStorageBytes: 1024 * 1024,
});

/**
 * No limits beyond what the engine itself imposes (trusted code only).
 *
 * @example
 * ```ts
 * import { UNLIMITED_LIMITS } from "@wasmplug/wasmplug";
 * console.log(UNLIMITED_LIMITS.maxFuel); // null
 * ```
 */
export const UNLIMITED_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxMemoryPages: 65_536,
  maxTableElements: 0xffff_ffff,
  maxInstances: Infinity,
  maxExecutionTimeMs: Infinity,
  maxFuel: null,
  maxCallDepth: Infinity,
  maxStorageBytes: Infinity,
});

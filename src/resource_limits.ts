/**
 * Resource limits: how much memory, table space, time, fuel, call depth and
 * host-side storage a plugin may use, and how many plugins a runtime may host
 * at once.
 *
 * @module
 */

import { describeValue } from "./_format.ts";
import { assertKnownKeys } from "./_known_keys.ts";

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
   * `host_set_config` (UTF-8 lengths), plus 64 bytes of bookkeeping per
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

const LIMIT_NAMES = [
  "maxMemoryPages",
  "maxTableElements",
  "maxInstances",
  "maxExecutionTimeMs",
  "maxFuel",
  "maxCallDepth",
  "maxStorageBytes",
] as const satisfies readonly (keyof ResourceLimits)[];

/** Upper bounds of the limits that cannot be infinite. */
const CEILINGS: Partial<Record<keyof ResourceLimits, number>> = {
  maxMemoryPages: 65_536,
  maxTableElements: 0xffff_ffff,
};

/**
 * Overlays partial limits on a base, validating every given value.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, resolveLimits } from "@wasmplug/wasmplug";
 * const limits = resolveLimits(DEFAULT_LIMITS, { maxFuel: null, maxCallDepth: 100 });
 * console.log(limits.maxCallDepth); // 100
 * ```
 *
 * @param base Complete limits to start from.
 * @param overrides Fields to replace; `undefined` fields are ignored.
 * @returns A frozen, complete set of limits.
 * @throws {TypeError} If a value is not a number (or `null` for `maxFuel`), or a field is unknown.
 * @throws {RangeError} If a value is not a positive integer within its bounds.
 */
export function resolveLimits(
  base: Readonly<ResourceLimits>,
  overrides: Partial<ResourceLimits> | undefined,
): Readonly<ResourceLimits> {
  if (overrides === undefined) return base;
  if (typeof overrides !== "object" || overrides === null) {
    throw new TypeError(
      `Cannot apply resource limits: expected an object, received ${describeValue(overrides)}`,
    );
  }
  assertKnownKeys("resource limits", overrides, LIMIT_NAMES);
  const merged: Record<string, number | null> = { ...base };
  for (const name of LIMIT_NAMES) {
    const value = overrides[name];
    if (value === undefined) continue;
    validateLimit(name, value);
    merged[name] = value;
  }
  return Object.freeze(merged as unknown as ResourceLimits);
}

function validateLimit(name: keyof ResourceLimits, value: unknown): void {
  if (name === "maxFuel" && value === null) return;
  if (typeof value !== "number" || Number.isNaN(value)) {
    const expected = name === "maxFuel" ? "a number or null" : "a number";
    throw new TypeError(
      `Cannot use '${name}' as a resource limit: expected ${expected}, received ${
        describeValue(value)
      }`,
    );
  }
  const ceiling = CEILINGS[name];
  const integral = Number.isInteger(value) || (value === Infinity && ceiling === undefined);
  if (!integral || value < 1) {
    throw new RangeError(
      `Cannot use '${name}' as a resource limit: it must be a positive integer, current value is ${value}`,
    );
  }
  if (ceiling !== undefined && value > ceiling) {
    throw new RangeError(
      `Cannot use '${name}' as a resource limit: it must be at most ${ceiling}, current value is ${value}`,
    );
  }
  if (name === "maxFuel" && value > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `Cannot use 'maxFuel' as a resource limit: it must be at most ${Number.MAX_SAFE_INTEGER} or null, current value is ${value}`,
    );
  }
}

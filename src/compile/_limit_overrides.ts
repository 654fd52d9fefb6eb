/**
 * Resource limits as a runtime or a plugin resolves them: partial limits
 * overlaid on complete ones, every value checked.
 *
 * @module
 */

import { describeValue } from "../common/mod.ts";
import { assertKnownKeys, optionFields } from "../common/mod.ts";
import type { ResourceLimits } from "../resource_limits.ts";

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
 * Upper bounds of finite values of limits that may also be `Infinity` (off):
 * the guest counts its call depth in an `i32`.
 */
const FINITE_CEILINGS: Partial<Record<keyof ResourceLimits, number>> = {
  maxCallDepth: 0x7fff_ffff,
};

/**
 * Overlays partial limits on a base, validating every given value.
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
  const fields = optionFields(overrides, LIMIT_NAMES);
  const merged: Record<string, number | null> = { ...base };
  for (const name of LIMIT_NAMES) {
    const value = fields[name];
    if (value === undefined) continue;
    validateLimit(name, value);
    merged[name] = value as number | null;
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
  const ceiling = Object.hasOwn(CEILINGS, name) ? CEILINGS[name] : undefined;
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
  const finiteCeiling = Object.hasOwn(FINITE_CEILINGS, name) ? FINITE_CEILINGS[name] : undefined;
  if (finiteCeiling !== undefined && value > finiteCeiling && value !== Infinity) {
    throw new RangeError(
      `Cannot use '${name}' as a resource limit: it must be at most ${finiteCeiling} or Infinity, current value is ${value}`,
    );
  }
  if (name === "maxFuel" && value > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `Cannot use 'maxFuel' as a resource limit: it must be at most ${Number.MAX_SAFE_INTEGER} or null, current value is ${value}`,
    );
  }
}

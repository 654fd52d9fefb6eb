/**
 * Unknown keys in an options object are a `TypeError` that names the key and,
 * when one is close, the key that was probably meant: a typo such as
 * `resourceLimit` must not silently do nothing.
 *
 * @module
 */

import { describeValue, shownName } from "./_format.ts";

/**
 * Throws a `TypeError` for the first own string key of `object` that is not
 * in `known`. Symbol keys are not looked at: a runtime config keeps its
 * internal options under one (see `_internal_options.ts`).
 *
 * @param what What the object is, for the message (e.g. `"the plugin config"`).
 * @param object The options object (already known to be an object).
 * @param known Every key it may have.
 * @throws {TypeError} Naming the unknown key, and the nearest known one when close.
 */
export function assertKnownKeys(
  what: string,
  object: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    // A key may come from a guest (an embedded manifest's limits): one no typo makes is shown
    // quoted, escaped and cut, and the search for the key it meant is skipped.
    const plain = key.length <= MAX_TYPO_LENGTH && /^[\w$.-]+$/.test(key);
    const nearest = plain ? nearestKey(key, known) : undefined;
    throw new TypeError(
      `Cannot use ${what}: unknown key ${plain ? `'${key}'` : shownName(key)}${
        nearest === undefined ? "" : ` (did you mean '${nearest}'?)`
      }; expected one of ${known.join(", ")}`,
    );
  }
}

/**
 * Throws a `TypeError` unless `options` is an object with only `known` keys
 * (see {@linkcode assertKnownKeys}).
 *
 * @param what What the object is, for the message (e.g. `"the stop options"`).
 * @throws {TypeError} If `options` is not an object, or has an unknown key.
 */
export function assertOptions(
  what: string,
  options: unknown,
  known: readonly string[],
): asserts options is object {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot use ${what}: expected an object { ${
        known.map((key) => `${key}?`).join(", ")
      } }, received ${describeValue(options)}`,
    );
  }
  assertKnownKeys(what, options, known);
}

/**
 * Reads an options object once: its own enumerable fields (unknown ones
 * included, for a typo check), and those of `known` that are its own but
 * not enumerable or that its class provides (a getter or method of an
 * options class), each read once, into an object with no prototype. What
 * only `Object.prototype` provides is not a field: a polluted prototype
 * sets no option.
 *
 * @param value The options object.
 * @param known Every key it may have.
 */
export function optionFields(value: object, known: readonly string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = Object.assign(Object.create(null), value);
  for (const key of known) {
    if (!(key in fields) && isField(value, key)) {
      fields[key] = (value as Record<string, unknown>)[key];
    }
  }
  return fields;
}

/**
 * One field of an options object, as {@linkcode optionFields} reads it:
 * `undefined` unless the object or its class has it.
 */
export function optionField(value: object, key: string): unknown {
  return isField(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

/** Whether `value` or a prototype of it below `Object.prototype` has `key`. */
function isField(value: object, key: string): boolean {
  for (
    let at: object | null = value;
    at !== null && at !== Object.prototype;
    at = Object.getPrototypeOf(at)
  ) {
    if (Object.hasOwn(at, key)) return true;
  }
  return false;
}

/**
 * {@linkcode assertOptions}, then the options' fields (see
 * {@linkcode optionFields}).
 *
 * @throws {TypeError} If `options` is not an object, or has an unknown key.
 */
export function readOptions(
  what: string,
  options: unknown,
  known: readonly string[],
): Record<string, unknown> {
  assertOptions(what, options, known);
  return optionFields(options, known);
}

/**
 * The longest key that may be a typo of a known one: a longer one is never
 * within the distance {@linkcode nearestKey} accepts of a known key (each is
 * shorter than 40 characters).
 */
const MAX_TYPO_LENGTH = 64;

/** The known key closest to `key`, if it is close enough to be a typo of it. */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  // A key cut short: `maxMemory` → `maxMemoryPages`.
  const extended = lower.length >= 3
    ? known.find((candidate) => candidate.toLowerCase().startsWith(lower))
    : undefined;
  if (extended !== undefined) return extended;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Up to two edits in five, at least one: `resourceLimit` → `resourceLimits`, `maxEntry` → `maxEntries`.
  return bestDistance <= Math.max(1, Math.ceil(key.length * 0.4)) ? best : undefined;
}

/** Levenshtein distance of two short strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

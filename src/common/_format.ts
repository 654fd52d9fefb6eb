/** Small formatting helpers for error messages. @module */

/** Renders a value for an error message: `string "x"`, `undefined`, `object`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "bigint") return `bigint ${value}n`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

/**
 * What a thrown value says, as text, whatever it is: an error's message (or
 * its string form when the message is not a string), any other value's
 * string form, or `a thrown <type>` when reading or converting it throws (a
 * host function may throw a `Proxy` whose traps throw, an error whose
 * `message` getter throws, a symbol). The same on both sides of a worker.
 *
 * @example
 * ```ts ignore
 * thrownText(new Error("boom")); // "boom"
 * thrownText(42); // "42"
 * ```
 */
export function thrownText(value: unknown): string {
  try {
    const text = value instanceof Error ? value.message : value;
    return typeof text === "string" ? text : String(text);
  } catch {
    return `a thrown ${typeof value}`;
  }
}

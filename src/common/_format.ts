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
 * `message` getter throws, a symbol), its first 16 Ki characters at most.
 * The same on both sides of a worker.
 *
 * @example
 * ```ts ignore
 * thrownText(new Error("boom")); // "boom"
 * thrownText(42); // "42"
 * ```
 */
export function thrownText(value: unknown): string {
  let text: string;
  try {
    const message = value instanceof Error ? value.message : value;
    text = typeof message === "string" ? message : String(message);
  } catch {
    return `a thrown ${typeof value}`;
  }
  // An error message is read by people and copied into logs, events and spans: bounded. (The
  // slack lets a text cut once, with its note, pass again unchanged: a worker cuts, the host
  // reads the cut text.)
  if (text.length <= MAX_THROWN_TEXT + 64) return text;
  return `${text.slice(0, MAX_THROWN_TEXT)}… (${text.length - MAX_THROWN_TEXT} more characters)`;
}

/** How much of a thrown value's text {@linkcode thrownText} keeps. */
export const MAX_THROWN_TEXT = 16 * 1024;

/**
 * A name a guest chose (an import, an export, a manifest field), as error
 * messages show it: quoted and escaped as JSON, so a control character
 * cannot forge a log line, and cut at 64 characters.
 *
 * @example
 * ```ts ignore
 * shownName("env"); // "\"env\""
 * ```
 */
export function shownName(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}

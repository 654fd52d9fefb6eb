/** Small formatting helpers for error messages. @module */

/**
 * Renders a value for an error message: `string "x"`, `undefined`,
 * `an object`, `a Uint8Array` (an object by its class).
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "bigint") return `bigint ${value}n`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  if (value === undefined) return "undefined";
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return "a symbol";
  let kind: string | undefined;
  try {
    if (Array.isArray(value)) return "an array";
    // Typed arrays, buffers, maps, class instances: their class says what was passed.
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)
      ?.constructor?.name;
    if (typeof name === "string" && /^[A-Za-z_$][\w$]{0,63}$/.test(name)) kind = name;
  } catch {
    // A revoked proxy, or one whose traps throw: an object all the same.
  }
  if (kind === undefined || kind === "Object") return "an object";
  return `${/^[AEIO]/.test(kind) ? "an" : "a"} ${kind}`; // "a Uint8Array"
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
  const kept = cutText(text, MAX_THROWN_TEXT);
  return `${kept}… (${text.length - kept.length} more characters)`;
}

/**
 * The first `length` UTF-16 units of `text`, one fewer when the last would
 * be the first half of a surrogate pair, so no character is cut in two.
 *
 * @example
 * ```ts ignore
 * cutText("ab😀", 3); // "ab"
 * ```
 */
export function cutText(text: string, length: number): string {
  if (text.length <= length) return text;
  const last = text.charCodeAt(length - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? length - 1 : length);
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
  const quoted = JSON.stringify(name.length > 64 ? `${cutText(name, 64)}…` : name);
  // JSON leaves these as they are: C1 controls (a terminal may take U+009B for CSI), and what
  // a log viewer may break a line at, turn the text around at, or not show.
  return quoted.replace(
    /[\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

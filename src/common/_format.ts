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
 * cannot forge a log line, what JSON leaves escaped too (see
 * {@linkcode visibleText}), and cut at 64 characters.
 *
 * @example
 * ```ts ignore
 * shownName("env"); // "\"env\""
 * ```
 */
export function shownName(name: string): string {
  return visibleText(JSON.stringify(name.length > 64 ? `${cutText(name, 64)}…` : name));
}

/**
 * Whether a code point (beyond ASCII) is one a reader does not see as what it
 * is: C1 controls, marks changing direction, line and paragraph separators,
 * U+FFFD, and Unicode's default-ignorable code points (soft hyphen, ALM,
 * zero-width characters and joiners, fillers, invisible operators, variation
 * selectors, BOM, tags, format controls); also the Egyptian hieroglyph format
 * controls and the interlinear annotations.
 */
export function isHiddenCode(code: number): boolean {
  return code <= 0x9f || code === 0xad || code === 0x34f || code === 0x61c ||
    code === 0x115f || code === 0x1160 || code === 0x17b4 || code === 0x17b5 ||
    (code >= 0x180b && code <= 0x180f) || (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) || (code >= 0x2060 && code <= 0x206f) ||
    code === 0x3164 || (code >= 0xfe00 && code <= 0xfe0f) || code === 0xfeff ||
    code === 0xffa0 || (code >= 0xfff0 && code <= 0xfffd) ||
    (code >= 0x13430 && code <= 0x1343f) || (code >= 0x1bca0 && code <= 0x1bca3) ||
    (code >= 0x1d173 && code <= 0x1d17a) || (code >= 0xe0000 && code <= 0xe0fff);
}

/**
 * `text` with every character a reader would not see as what it is (ASCII
 * controls, and those of {@linkcode isHiddenCode}) escaped as `\uXXXX`: for
 * engine messages that quote a guest's names.
 *
 * @example
 * ```ts ignore
 * visibleText("a\nb"); // "a\\u000ab"
 * ```
 */
export function visibleText(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    out += code < 0x20 || code === 0x7f || (code >= 0x80 && isHiddenCode(code))
      ? escapeCode(code)
      : char;
  }
  return out;
}

function escapeCode(code: number): string {
  const hex = (unit: number) => `\\u${unit.toString(16).padStart(4, "0")}`;
  if (code <= 0xffff) return hex(code);
  const high = 0xd800 + ((code - 0x10000) >> 10);
  return hex(high) + hex(0xdc00 + ((code - 0x10000) & 0x3ff));
}

/**
 * Text without a leading byte order mark: JSON, which a parser may ignore it
 * in (RFC 8259) and `JSON.parse` refuses (a guest's tool arguments and
 * requests are read as `callJson` reads its output; the decoders keep the
 * mark, since in other text it is the text's), and WAT source.
 *
 * @example
 * ```ts ignore
 * JSON.parse(withoutBom("\ufeff[1]")); // [1]
 * ```
 */
export function withoutBom(json: string): string {
  return json.charCodeAt(0) === 0xfeff ? json.slice(1) : json;
}

/**
 * A module's `name` sections, hidden from the engine when a guest put
 * unprintable names in them. The engine prints a function's name in every
 * stack frame of a trap's `RuntimeError` (which an inline plugin's
 * `TrapError` keeps as its cause) and in its compile errors: a name with a
 * line break forged host frames (`\n    at host_check (file:///etc/passwd:1:1)`),
 * and a 4 MiB name made a 40-million-character stack. The engine reads these
 * sections leniently (the names before a malformed byte still count), so
 * rewriting them is not enough; a section is instead renamed `NAME` (the same
 * length: nothing moves) unless it reads whole and every module and function
 * name in it is at most {@linkcode MAX_GUEST_NAME_BYTES} bytes of UTF-8 without
 * control, line-breaking or direction-changing characters. The engine ignores
 * a section of another name, so its frames then show function indices. The
 * check reads the section once and allocates nothing.
 *
 * @module
 */

/** The most bytes of a module or function name the engine is shown. */
export const MAX_GUEST_NAME_BYTES = 256;

const CUSTOM_SECTION = 0;
const MODULE_NAME = 0;
const FUNCTION_NAMES = 1;
/** `name` and what a hidden section is called instead (the same length). */
const NAME = [0x6e, 0x61, 0x6d, 0x65];
const HIDDEN = [0x4e, 0x41, 0x4d, 0x45]; // "NAME"

/**
 * `bytes`, or a copy with every `name` section whose names a guest could
 * forge text with renamed `NAME` (see the module doc).
 *
 * @example
 * ```ts ignore
 * bytes = hideUnprintableNames(bytes); // before the engine reads them
 * ```
 */
export function hideUnprintableNames(bytes: Uint8Array): Uint8Array {
  let out = bytes;
  let pos = 8;
  try {
    while (pos < bytes.length) {
      const id = bytes[pos++]!;
      const size = leb(bytes, pos, bytes.length);
      const next = lebEnd;
      const end = next + size;
      if (end > bytes.length) break; // the parser reports it
      if (id === CUSTOM_SECTION && isNameSection(bytes, next, end)) {
        const content = next + 5; // the name "name": its length (4) and bytes
        if (!printableNames(bytes, content, end)) {
          if (out === bytes) out = bytes.slice();
          out.set(HIDDEN, next + 1);
        }
      }
      pos = end;
    }
  } catch (err) {
    if (!(err instanceof Unreadable)) throw err;
  }
  return out;
}

/** Whether the custom section whose contents are `[start, end)` is called `name`. */
function isNameSection(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start < 5 || bytes[start] !== 4) return false;
  for (let i = 0; i < 4; i++) if (bytes[start + 1 + i] !== NAME[i]) return false;
  return true;
}

/** Whether the subsections in `[pos, end)` read whole, with printable module and function names. */
function printableNames(bytes: Uint8Array, pos: number, end: number): boolean {
  try {
    while (pos < end) {
      const id = bytes[pos++]!;
      const size = leb(bytes, pos, end);
      const stop = lebEnd + size;
      const start = lebEnd;
      if (stop > end) return false;
      if (id === MODULE_NAME) {
        if (printableName(bytes, start, stop) !== stop) return false;
      } else if (id === FUNCTION_NAMES) {
        let count = leb(bytes, start, stop);
        let at = lebEnd;
        for (; count > 0; count--) {
          leb(bytes, at, stop); // the function's index
          at = lebEnd;
          const after = printableName(bytes, at, stop);
          if (after < 0) return false;
          at = after;
        }
        if (at !== stop) return false;
      }
      pos = stop;
    }
    return true;
  } catch (err) {
    if (err instanceof Unreadable) return false;
    throw err;
  }
}

/** Reads a name at `pos`; returns where it ends, or -1 if it is too long or not printable. */
function printableName(bytes: Uint8Array, pos: number, end: number): number {
  const length = leb(bytes, pos, end);
  const start = lebEnd;
  const stop = start + length;
  if (length > MAX_GUEST_NAME_BYTES || stop > end) return -1;
  return printableUtf8(bytes, start, stop) ? stop : -1;
}

/**
 * Whether `[start, end)` is UTF-8 with no C0 or C1 control, DEL, ALM (U+061C),
 * LRM/RLM, line or paragraph separator, bidirectional embedding, override or
 * isolate (U+2028-202E, U+2066-2069), nor U+FFFD.
 */
function printableUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end;) {
    const b = bytes[i]!;
    if (b < 0x80) {
      if (b < 0x20 || b === 0x7f) return false;
      i++;
      continue;
    }
    const length = b >= 0xc2 && b <= 0xdf
      ? 2
      : b >= 0xe0 && b <= 0xef
      ? 3
      : b >= 0xf0 && b <= 0xf4
      ? 4
      : 0;
    if (length === 0) return false;
    let code = b & (0xff >> (length + 1));
    const min = length === 2 ? 0x80 : length === 3 ? 0x800 : 0x10000;
    if (i + length > end) return false;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return false;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    if (
      code <= 0x9f || code === 0x61c || code === 0x200e || code === 0x200f ||
      (code >= 0x2028 && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) ||
      code === 0xfffd
    ) {
      return false;
    }
    i += length;
  }
  return true;
}

/** Thrown on bytes that cannot be read. */
class Unreadable extends Error {}

/** Where the last {@linkcode leb} read ended (no pair allocated per name). */
let lebEnd = 0;

/** An unsigned LEB128 at `pos` (before `end`); where it ends goes to {@linkcode lebEnd}. */
function leb(bytes: Uint8Array, pos: number, end: number): number {
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= end) throw new Unreadable();
    const byte = bytes[pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) {
      lebEnd = pos;
      return result;
    }
  }
  throw new Unreadable();
}

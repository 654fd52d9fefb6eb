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

import { isHiddenCode } from "../common/mod.ts";
import { Cursor, Malformed } from "./_cursor.ts";

/**
 * The most bytes of a module or function name the engine is shown: Rust's
 * mangled names reach 1 200 bytes (biome), and V8 prints ten frames.
 */
export const MAX_GUEST_NAME_BYTES = 2048;

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
  const cursor = new Cursor(bytes, 8, bytes.length);
  try {
    while (cursor.pos < cursor.end) {
      const id = cursor.u8();
      const size = cursor.leb();
      const end = cursor.pos + size;
      if (end > bytes.length) break; // the parser reports it
      const content = id === CUSTOM_SECTION ? nameSectionContent(bytes, cursor.pos, end) : -1;
      if (content >= 0 && !printableNames(new Cursor(bytes, content, end))) {
        if (out === bytes) out = bytes.slice();
        out.set(HIDDEN, content - 4);
      }
      cursor.pos = end;
    }
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
  }
  return out;
}

/**
 * Where the contents of the custom section in `[start, end)` begin if it is
 * called `name` (its length read as the engine reads it, in any LEB128 form),
 * else -1.
 */
function nameSectionContent(bytes: Uint8Array, start: number, end: number): number {
  const cursor = new Cursor(bytes, start, end);
  if (cursor.leb() !== 4 || cursor.pos + 4 > end) return -1;
  for (let i = 0; i < 4; i++) if (bytes[cursor.pos + i] !== NAME[i]) return -1;
  return cursor.pos + 4;
}

/** Whether the subsections at `cursor` read whole, with printable module and function names. */
function printableNames(cursor: Cursor): boolean {
  try {
    while (cursor.pos < cursor.end) {
      const id = cursor.u8();
      const stop = cursor.leb() + cursor.pos;
      if (stop > cursor.end) return false;
      const subsection = new Cursor(cursor.bytes, cursor.pos, stop);
      if (id === MODULE_NAME) {
        if (!printableName(subsection)) return false;
      } else if (id === FUNCTION_NAMES) {
        for (let count = subsection.leb(); count > 0; count--) {
          subsection.leb(); // the function's index
          if (!printableName(subsection)) return false;
        }
      } else {
        subsection.pos = stop;
      }
      if (subsection.pos !== stop) return false;
      cursor.pos = stop;
    }
    return true;
  } catch (err) {
    if (err instanceof Malformed) return false;
    throw err;
  }
}

/** Reads a name at `cursor`; whether it is short and printable. */
function printableName(cursor: Cursor): boolean {
  const length = cursor.leb();
  const start = cursor.pos;
  cursor.pos += length;
  if (length > MAX_GUEST_NAME_BYTES || cursor.pos > cursor.end) return false;
  return printableUtf8(cursor.bytes, start, cursor.pos);
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
    if (isHiddenCode(code)) return false;
    i += length;
  }
  return true;
}

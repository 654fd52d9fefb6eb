/**
 * The names of a module's `name` section, made printable before the engine
 * sees them. The engine prints a function's name in every stack frame of a
 * trap's `RuntimeError` (which an inline plugin's `TrapError` keeps as its
 * cause, and Deno prints with uncaught errors): a name with a line break
 * forged host frames (`\n    at host_check (file:///etc/passwd:1:1)`), and a
 * 4 MiB name made a 40-million-character stack. So the module and function
 * names that hold a control, line-breaking or direction-changing character,
 * invalid UTF-8, or more than {@linkcode MAX_GUEST_NAME_BYTES} bytes are
 * rewritten: escaped as `\uXXXX` and cut. Other names, and the other
 * subsections (local names and the like, which stacks do not show), stay.
 *
 * @module
 */

import { cutText } from "../common/mod.ts";
import type { CustomSection, ModuleInfo } from "../instrument/mod.ts";

/** The most bytes of a module or function name the engine is given. */
export const MAX_GUEST_NAME_BYTES = 256;

const MODULE_NAME = 0;
const FUNCTION_NAMES = 1;
/** What a log line or a terminal would take for something else than text. */
// deno-lint-ignore no-control-regex -- control characters are what it finds
const NONTEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufffd]/g;

const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD, escaped in turn
const encoder = new TextEncoder();

/**
 * `bytes` with the names of its `name` sections made printable, or `null`
 * when every name is printable already (the usual case), or a section cannot
 * be read (the engine ignores what it cannot read there, and so do stacks).
 *
 * @example
 * ```ts ignore
 * const printable = withPrintableNames(bytes, parseModule(bytes)) ?? bytes;
 * ```
 */
export function withPrintableNames(bytes: Uint8Array, info: ModuleInfo): Uint8Array | null {
  const rewritten = new Map<CustomSection, Uint8Array>();
  for (const section of info.customSections) {
    if (section.name !== "name") continue;
    const named = printableNameSection(bytes, section);
    if (named !== null) rewritten.set(section, named);
  }
  if (rewritten.size === 0) return null;
  const out = new Parts();
  let at = 0;
  for (const [section, named] of rewritten) {
    out.add(bytes.subarray(at, section.start));
    out.add(named);
    at = section.end;
  }
  out.add(bytes.subarray(at));
  return out.join();
}

/** The whole section (id and size included) with printable names, or `null` to keep it. */
function printableNameSection(bytes: Uint8Array, section: CustomSection): Uint8Array | null {
  const reader = new Reader(bytes, section.contentStart, section.end);
  const out = new Parts();
  out.add(bytes.subarray(section.payloadStart, section.contentStart));
  let changed = false;
  try {
    while (reader.pos < section.end) {
      const subsection = reader.pos;
      const id = reader.u8();
      const size = reader.u32();
      const end = reader.pos + size;
      if (end > section.end) return null;
      const names = id === MODULE_NAME || id === FUNCTION_NAMES
        ? printableNames(new Reader(bytes, reader.pos, end), id)
        : null;
      if (names === null) {
        out.add(bytes.subarray(subsection, end));
      } else {
        changed = true;
        out.add(new Uint8Array([id, ...leb(names.length)]));
        out.add(names);
      }
      reader.pos = end;
    }
  } catch (err) {
    if (err instanceof Unreadable) return null;
    throw err;
  }
  if (!changed) return null;
  const whole = new Parts();
  whole.add(new Uint8Array([0, ...leb(out.length)]));
  whole.add(out.join());
  return whole.join();
}

/** A module name (`MODULE_NAME`) or a function name map, rewritten, or `null` if all are printable. */
function printableNames(reader: Reader, id: number): Uint8Array | null {
  if (allPrintable(new Reader(reader.bytes, reader.pos, reader.end), id)) return null;
  const out = new Parts();
  let changed = false;
  const addName = (name: Uint8Array): void => {
    const shown = printable(name);
    if (shown !== null) changed = true;
    out.add(new Uint8Array(leb((shown ?? name).length)));
    out.add(shown ?? name);
  };
  if (id === MODULE_NAME) {
    addName(reader.name());
  } else {
    const count = reader.u32();
    out.add(new Uint8Array(leb(count)));
    for (let i = 0; i < count; i++) {
      out.add(new Uint8Array(leb(reader.u32())));
      addName(reader.name());
    }
  }
  return changed ? out.join() : null;
}

/** Whether every name of the subsection is printable as it is: the usual case, read with no copy. */
function allPrintable(reader: Reader, id: number): boolean {
  if (id === MODULE_NAME) return isPrintable(reader.name());
  for (let count = reader.u32(); count > 0; count--) {
    reader.u32();
    if (!isPrintable(reader.name())) return false;
  }
  return true;
}

/** Whether `name` needs no rewriting: short, and ASCII without controls (or text without them). */
function isPrintable(name: Uint8Array): boolean {
  if (name.length > MAX_GUEST_NAME_BYTES) return false;
  for (const byte of name) {
    if (byte < 0x20 || byte === 0x7f) return false;
    if (byte >= 0x80) return printable(name) === null;
  }
  return true;
}

/** `name` escaped and cut, or `null` when it is printable as it is. */
function printable(name: Uint8Array): Uint8Array | null {
  const text = decoder.decode(name);
  NONTEXT.lastIndex = 0;
  if (name.length <= MAX_GUEST_NAME_BYTES && !NONTEXT.test(text)) return null;
  const escaped = text.replace(
    NONTEXT,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  let shown = encoder.encode(escaped);
  // Cut by characters until it fits (each is at most 4 bytes).
  for (let keep = MAX_GUEST_NAME_BYTES - 1; shown.length > MAX_GUEST_NAME_BYTES; keep -= 4) {
    shown = encoder.encode(`${cutText(escaped, keep)}…`);
  }
  return shown;
}

/** Unsigned LEB128 of `value`. */
function leb(value: number): number[] {
  const out: number[] = [];
  do {
    const byte = value & 0x7f;
    value >>>= 7;
    out.push(value === 0 ? byte : byte | 0x80);
  } while (value !== 0);
  return out;
}

/** Bytes written in pieces, joined once. */
class Parts {
  readonly #parts: Uint8Array[] = [];
  length = 0;

  add(part: Uint8Array): void {
    this.#parts.push(part);
    this.length += part.length;
  }

  join(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** Thrown by the reader on bytes it cannot read: the section is then left as it is. */
class Unreadable extends Error {}

class Reader {
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end: number) {}

  u8(): number {
    if (this.pos >= this.end) throw new Unreadable();
    return this.bytes[this.pos++]!;
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Unreadable();
  }

  name(): Uint8Array {
    const length = this.u32();
    if (this.pos + length > this.end) throw new Unreadable();
    this.pos += length;
    return this.bytes.subarray(this.pos - length, this.pos);
  }
}

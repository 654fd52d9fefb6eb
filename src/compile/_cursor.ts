/**
 * A minimal reader of module bytes for the checks made before the module's
 * parser and the engine read it (`_module_features.ts`, `_guest_names.ts`):
 * bytes and unsigned LEB128s, nothing allocated per read.
 *
 * @module
 */

/** Thrown on bytes a cursor cannot read; the caller's parser reports those. */
export class Malformed extends Error {}

/**
 * Reads `bytes` from `pos` up to `end`.
 *
 * @example
 * ```ts ignore
 * const cursor = new Cursor(bytes, 8, bytes.length);
 * const id = cursor.u8();
 * const size = cursor.leb();
 * ```
 */
export class Cursor {
  pos: number;
  constructor(readonly bytes: Uint8Array, pos: number, readonly end: number) {
    this.pos = pos;
  }

  /** One byte. */
  u8(): number {
    if (this.pos >= this.end) throw new Malformed();
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128, in any of its forms (also skips a signed one: only the length matters). */
  leb(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Malformed();
  }
}

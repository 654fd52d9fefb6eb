/**
 * Byte-level reading and writing of the WebAssembly binary format: LEB128
 * integers, fixed-width little-endian values, names and raw byte ranges.
 *
 * Every read is bounds-checked; malformed input throws {@linkcode BinaryFormatError}
 * with the absolute byte offset where decoding failed.
 *
 * @module
 */

import { strictUtf8 } from "../common/mod.ts";

/** A decoding failure at a known byte offset of a WebAssembly binary. */
export class BinaryFormatError extends Error {
  /** Absolute offset, in bytes from the start of the module, of the failure. */
  readonly offset: number;

  /**
   * Creates the error.
   *
   * @param message What was expected and what was found.
   * @param offset Absolute byte offset of the failure.
   */
  constructor(message: string, offset: number) {
    super(`${message} at byte offset ${offset}`);
    this.name = "BinaryFormatError";
    this.offset = offset;
  }
}

const utf8Encoder = new TextEncoder();
/** Names up to this many bytes are decoded without `TextDecoder` when they are ASCII. */
const SHORT_NAME = 32;

/** A cursor over a byte array that decodes WebAssembly binary primitives. */
export class ByteReader {
  /** The underlying bytes, of which `[pos, end)` remain to be read. */
  readonly bytes: Uint8Array;
  /** Current position, relative to `bytes`. */
  pos: number;
  /** Exclusive end of the readable range, relative to `bytes`. */
  readonly end: number;
  /** Offset of `bytes[0]` within the whole module, for error messages. */
  readonly base: number;

  /**
   * Creates a reader over `bytes[start, end)`.
   *
   * @param bytes The underlying bytes.
   * @param options `start`/`end` bound the range; `base` is the absolute offset of `bytes[0]`.
   */
  constructor(
    bytes: Uint8Array,
    options: { start?: number; end?: number; base?: number } = {},
  ) {
    const start = options.start ?? 0;
    const end = options.end ?? bytes.length;
    if (!(0 <= start && start <= end && end <= bytes.length)) {
      throw new RangeError(
        `Cannot read bytes [${start}, ${end}): the buffer holds ${bytes.length} bytes`,
      );
    }
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.base = options.base ?? 0;
  }

  /** Absolute offset of the cursor in the module. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Whether the cursor reached the end of the range. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Throws a {@linkcode BinaryFormatError} at the current offset. */
  fail(message: string, at: number = this.pos): never {
    throw new BinaryFormatError(message, this.base + at);
  }

  /** Reads one byte. */
  u8(): number {
    if (this.pos >= this.end) this.fail("Unexpected end of input");
    return this.bytes[this.pos++]!;
  }

  /** Reads `n` bytes as a subarray view (no copy). */
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) {
      this.fail(`Expected ${n} bytes, ${this.end - this.pos} remain`);
    }
    const view = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  /** Reads an unsigned LEB128 integer of at most 32 bits. */
  u32(): number {
    const start = this.pos;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const byte = this.u8();
      if (i === 4 && (byte & 0x70) !== 0) this.fail("Integer too large", start);
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    return this.fail("Integer representation too long", start);
  }

  /** Reads a signed LEB128 integer of at most 32 bits. */
  s32(): number {
    const start = this.pos;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const byte = this.u8();
      result |= (byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) === 0) {
        if (i === 4) {
          // The unused bits of the last byte must all equal the sign bit.
          const extra = byte & 0x70;
          const sign = byte & 0x08;
          if ((sign === 0 && extra !== 0) || (sign !== 0 && extra !== 0x70)) {
            this.fail("Integer too large", start);
          }
          return result | 0;
        }
        if (shift < 32 && (byte & 0x40) !== 0) result |= -1 << shift;
        return result | 0;
      }
    }
    return this.fail("Integer representation too long", start);
  }

  /** Reads an unsigned LEB128 integer of at most 64 bits. */
  u64(): bigint {
    return this.#leb64(false);
  }

  /** Reads a signed LEB128 integer of at most 64 bits. */
  s64(): bigint {
    return this.#leb64(true);
  }

  /** Reads a signed LEB128 integer of at most 33 bits (block types). */
  s33(): number {
    const start = this.pos;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 5; i++) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) {
        if (i === 4) {
          const extra = byte & 0x60;
          const sign = byte & 0x10;
          if ((sign === 0 && extra !== 0) || (sign !== 0 && extra !== 0x60)) {
            this.fail("Integer too large", start);
          }
        } else if ((byte & 0x40) !== 0) {
          result -= 1n << shift; // sign-extend a short encoding
        }
        return Number(BigInt.asIntN(33, result));
      }
    }
    return this.fail("Integer representation too long", start);
  }

  #leb64(signed: boolean): bigint {
    const start = this.pos;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8();
      if (i === 9) {
        const ok = signed ? byte === 0x00 || byte === 0x7f : (byte & 0x7e) === 0;
        if (!ok) this.fail("Integer too large", start);
      }
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) {
        if (!signed) return BigInt.asUintN(64, result);
        if (i < 9 && (byte & 0x40) !== 0) result -= 1n << shift; // sign-extend a short encoding
        return BigInt.asIntN(64, result);
      }
    }
    return this.fail("Integer representation too long", start);
  }

  /** Reads a little-endian 32-bit float's raw bytes. */
  f32Bytes(): Uint8Array {
    return this.take(4);
  }

  /** Reads a little-endian 64-bit float's raw bytes. */
  f64Bytes(): Uint8Array {
    return this.take(8);
  }

  /** Reads a length-prefixed UTF-8 name. */
  name(): string {
    const len = this.u32();
    const start = this.pos;
    if (len <= SHORT_NAME && start + len <= this.end) {
      // Decoding short ASCII names by hand avoids a view and a TextDecoder call per name.
      const bytes = this.bytes;
      let text = "";
      for (let i = start; i < start + len; i++) {
        const byte = bytes[i]!;
        if (byte >= 0x80) break;
        text += String.fromCharCode(byte);
      }
      if (text.length === len) {
        this.pos = start + len;
        return text;
      }
    }
    const raw = this.take(len);
    try {
      return strictUtf8.decode(raw);
    } catch {
      return this.fail("Malformed UTF-8 encoding", start);
    }
  }
}

/** Emits the bytes of the minimal signed LEB128 encoding of a 64-bit value. */
export function encodeS64(value: bigint, emit: (byte: number) => void): void {
  let v = BigInt.asIntN(64, value);
  while (true) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0)) {
      emit(byte);
      return;
    }
    emit(byte | 0x80);
  }
}

/** A growable byte buffer that encodes WebAssembly binary primitives. */
export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  /** Creates an empty writer with an initial capacity. */
  constructor(capacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Writes one byte. */
  u8(value: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = value & 0xff;
    return this;
  }

  /** Writes raw bytes. */
  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
    return this;
  }

  /** Writes an unsigned LEB128 integer (up to 32 bits). */
  u32(value: number): this {
    let v = value >>> 0;
    do {
      let byte = v & 0x7f;
      v >>>= 7;
      if (v !== 0) byte |= 0x80;
      this.u8(byte);
    } while (v !== 0);
    return this;
  }

  /** Writes a signed LEB128 integer (up to 32 bits). */
  s32(value: number): this {
    let v = value | 0;
    while (true) {
      const byte = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
        this.u8(byte);
        return this;
      }
      this.u8(byte | 0x80);
    }
  }

  /** Writes a signed LEB128 integer (up to 64 bits). */
  s64(value: bigint): this {
    encodeS64(value, (byte) => this.u8(byte));
    return this;
  }

  /** Writes an unsigned LEB128 integer (up to 64 bits). */
  u64(value: bigint): this {
    let v = BigInt.asUintN(64, value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.u8(byte);
    } while (v !== 0n);
    return this;
  }

  /** Writes a length-prefixed UTF-8 name. */
  name(value: string): this {
    const encoded = utf8Encoder.encode(value);
    return this.u32(encoded.length).bytes(encoded);
  }

  /** Returns a copy of the bytes written. */
  finish(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#len);
  }
}

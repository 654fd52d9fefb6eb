/**
 * Bounds-checked access to the guest's linear memory for one system call.
 * A pointer or length outside memory ends the call with `EFAULT` before
 * anything is read, written or done.
 *
 * @module
 */

import { strictUtf8 } from "../common/mod.ts";
import { Errno, fail } from "./_errno.ts";

/**
 * The most iovecs one call takes (Linux takes 1024): more is `EINVAL`, so a
 * guest cannot make the host build arrays as large as its memory.
 */
const MAX_IOVECS = 65_536;

/** The most bytes one call's iovecs may add up to: the result is a u32. */
const MAX_IO_BYTES = 0xffff_ffff;

const utf8 = new TextEncoder();

/** A guest buffer: `len` bytes at `ptr`. */
export interface Span {
  readonly ptr: number;
  readonly len: number;
}

/**
 * The guest's memory as seen by one system call. Make a new one per call:
 * `memory.grow` replaces the buffer between calls.
 */
export class Guest {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /** Views `memory`; without one, every access is `EFAULT`. */
  constructor(memory: WebAssembly.Memory | undefined) {
    const buffer = memory?.buffer ?? new ArrayBuffer(0);
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
  }

  /** Fails with `EFAULT` unless `[ptr, ptr + len)` is inside memory. */
  check(ptr: number, len: number): void {
    if (ptr + len > this.#bytes.length) fail(Errno.FAULT);
  }

  /** Reads a u8. */
  u8(ptr: number): number {
    this.check(ptr, 1);
    return this.#view.getUint8(ptr);
  }

  /** Reads a little-endian u16. */
  u16(ptr: number): number {
    this.check(ptr, 2);
    return this.#view.getUint16(ptr, true);
  }

  /** Reads a little-endian u32. */
  u32(ptr: number): number {
    this.check(ptr, 4);
    return this.#view.getUint32(ptr, true);
  }

  /** Reads a little-endian u64. */
  u64(ptr: number): bigint {
    this.check(ptr, 8);
    return this.#view.getBigUint64(ptr, true);
  }

  /** Writes a u8. */
  setU8(ptr: number, value: number): void {
    this.check(ptr, 1);
    this.#view.setUint8(ptr, value);
  }

  /** Writes a little-endian u16. */
  setU16(ptr: number, value: number): void {
    this.check(ptr, 2);
    this.#view.setUint16(ptr, value, true);
  }

  /** Writes a little-endian u32. */
  setU32(ptr: number, value: number): void {
    this.check(ptr, 4);
    this.#view.setUint32(ptr, value, true);
  }

  /** Writes a little-endian u64 (numbers must be non-negative integers). */
  setU64(ptr: number, value: bigint | number): void {
    this.check(ptr, 8);
    this.#view.setBigUint64(ptr, BigInt.asUintN(64, BigInt(value)), true);
  }

  /** A live view of `[ptr, ptr + len)`. */
  bytes(ptr: number, len: number): Uint8Array {
    this.check(ptr, len);
    return this.#bytes.subarray(ptr, ptr + len);
  }

  /** Copies `data` to `ptr`. */
  write(ptr: number, data: Uint8Array): void {
    this.check(ptr, data.length);
    this.#bytes.set(data, ptr);
  }

  /** Decodes `len` bytes at `ptr` as UTF-8; invalid UTF-8 is `EILSEQ`. */
  text(ptr: number, len: number): string {
    // A copy, because TextDecoder rejects views of shared memory.
    const bytes = this.bytes(ptr, len).slice();
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return fail(Errno.ILSEQ);
    }
  }

  /**
   * Reads an array of `count` iovecs at `ptr` and checks that each buffer
   * is inside memory, so that an I/O call fails before it starts: `EFAULT`
   * outside memory, `EINVAL` for more than 65 536 iovecs or more than
   * 4 GiB in all (what was moved could not be reported).
   */
  iovecs(ptr: number, count: number): Span[] {
    this.check(ptr, count * 8);
    if (count > MAX_IOVECS) fail(Errno.INVAL);
    const spans: Span[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      const span = { ptr: this.u32(ptr + i * 8), len: this.u32(ptr + i * 8 + 4) };
      this.check(span.ptr, span.len);
      total += span.len;
      spans.push(span);
    }
    if (total > MAX_IO_BYTES) fail(Errno.INVAL);
    return spans;
  }
}

/** UTF-8 encodes `text`. */
export function encode(text: string): Uint8Array {
  return utf8.encode(text);
}

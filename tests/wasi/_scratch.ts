/**
 * A guest memory for calling WASI imports directly from a test: a bump
 * allocator over a 4-page `WebAssembly.Memory`, and readers for results.
 *
 * @module
 */

/** WASI errno values, written out from the preview 1 spec (not imported, so a wrong constant fails). */
export const E = {
  SUCCESS: 0,
  ACCES: 2,
  BADF: 8,
  BUSY: 10,
  EXIST: 20,
  FAULT: 21,
  INVAL: 28,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  NOENT: 44,
  NOSYS: 52,
  NOTDIR: 54,
  NOTEMPTY: 55,
  SPIPE: 70,
  NOTCAPABLE: 76,
} as const;

/** `oflags`, `rights` and friends that the tests pass. */
export const O_CREAT = 1, O_DIRECTORY = 2, O_EXCL = 4, O_TRUNC = 8;
export const FD_READ = 1n << 1n, FD_WRITE = 1n << 6n;
export const FOLLOW = 1;

const utf8 = new TextEncoder();

/** Guest memory that tests fill and read by hand. */
export class Scratch {
  readonly memory: WebAssembly.Memory = new WebAssembly.Memory({ initial: 4 });
  #next = 1024;

  /** Bytes of memory. */
  get size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Reserves `len` zeroed bytes, 8-aligned. */
  alloc(len: number): number {
    const ptr = this.#next;
    this.#next = (this.#next + len + 7) & ~7;
    new Uint8Array(this.memory.buffer, ptr, len).fill(0);
    return ptr;
  }

  /** Copies `data` (a string is UTF-8 encoded) in; returns `[ptr, len]`. */
  put(data: string | Uint8Array): [number, number] {
    const bytes = typeof data === "string" ? utf8.encode(data) : data;
    const ptr = this.alloc(bytes.length);
    new Uint8Array(this.memory.buffer).set(bytes, ptr);
    return [ptr, bytes.length];
  }

  /** An iovec array over the given buffers; returns its pointer. */
  iovecs(...spans: [number, number][]): number {
    const ptr = this.alloc(spans.length * 8);
    spans.forEach(([p, len], i) => {
      this.view.setUint32(ptr + i * 8, p, true);
      this.view.setUint32(ptr + i * 8 + 4, len, true);
    });
    return ptr;
  }

  /** A DataView of the whole memory. */
  get view(): DataView {
    return new DataView(this.memory.buffer);
  }

  u8(ptr: number): number {
    return this.view.getUint8(ptr);
  }

  u16(ptr: number): number {
    return this.view.getUint16(ptr, true);
  }

  u32(ptr: number): number {
    return this.view.getUint32(ptr, true);
  }

  u64(ptr: number): bigint {
    return this.view.getBigUint64(ptr, true);
  }

  /** A copy of `len` bytes at `ptr`. */
  bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, len).slice();
  }

  /** `len` bytes at `ptr` as UTF-8. */
  text(ptr: number, len: number): string {
    return new TextDecoder().decode(this.bytes(ptr, len));
  }
}

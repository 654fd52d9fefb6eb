/**
 * A captured output stream (stdout or stderr) that keeps at most a fixed
 * number of bytes.
 *
 * @module
 */

/** The first buffer a stream that writes gets; it doubles as needed, up to the limit. */
const FIRST_BUFFER_BYTES = 4096;

/**
 * Collects what the guest writes, up to `limit` bytes; the rest is dropped.
 * The bytes go into one buffer that doubles as it fills, so the host holds
 * about what was kept however the guest cuts its writes (a chunk per write
 * cost hundreds of bytes a byte written one at a time).
 */
export class CapturedOutput {
  readonly #limit: number;
  #buffer = new Uint8Array(0);
  #length = 0;
  #truncated = false;

  /** Keeps at most `limit` bytes. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Whether bytes were dropped because the limit was reached. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Appends (a copy of) `data`, as much of it as the limit allows. */
  write(data: Uint8Array): void {
    const room = this.#limit - this.#length;
    if (data.length > room) this.#truncated = true;
    const kept = Math.min(data.length, Math.max(0, room));
    if (kept === 0) return;
    const needed = this.#length + kept;
    if (needed > this.#buffer.length) {
      let size = Math.max(FIRST_BUFFER_BYTES, this.#buffer.length * 2);
      while (size < needed) size *= 2;
      const grown = new Uint8Array(Math.min(size, this.#limit));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(data.subarray(0, kept), this.#length);
    this.#length = needed;
  }

  /** Everything kept so far, as a new array. */
  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

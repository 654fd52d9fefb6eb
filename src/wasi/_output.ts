/**
 * A captured output stream (stdout or stderr) that keeps at most a fixed
 * number of bytes.
 *
 * @module
 */

/** Collects what the guest writes, up to `limit` bytes; the rest is dropped. */
export class CapturedOutput {
  readonly #limit: number;
  #chunks: Uint8Array[] = [];
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
    const kept = data.subarray(0, Math.max(0, room));
    if (kept.length === 0) return;
    this.#chunks.push(kept.slice());
    this.#length += kept.length;
  }

  /** Everything kept so far, as one array. */
  bytes(): Uint8Array {
    if (this.#chunks.length !== 1) {
      const all = new Uint8Array(this.#length);
      let at = 0;
      for (const chunk of this.#chunks) {
        all.set(chunk, at);
        at += chunk.length;
      }
      this.#chunks = [all];
    }
    return this.#chunks[0]!.slice();
  }
}

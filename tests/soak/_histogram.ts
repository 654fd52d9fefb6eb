/**
 * A latency histogram of fixed size, whatever the number of samples: a soak
 * of millions of calls keeps its memory flat, so its RSS check measures the
 * runtime, not the harness.
 *
 * @module
 */

/** Relative width of a bucket: quantiles are exact to within 1 %. */
const GROWTH = 1.01;
/** The smallest latency told apart from zero, in milliseconds (0.1 µs). */
const FLOOR_MS = 1e-4;
/** Buckets from {@linkcode FLOOR_MS} up to about 10 minutes. */
const BUCKETS = Math.ceil(Math.log(600_000 / FLOOR_MS) / Math.log(GROWTH)) + 1;

/** Latencies in logarithmic buckets, plus the exact count and maximum. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const index = ms <= FLOOR_MS
      ? 0
      : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / FLOOR_MS) / Math.log(GROWTH)));
    this.#counts[index]!++;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  /** Samples recorded. */
  get count(): number {
    return this.#count;
  }

  /** The largest sample, in milliseconds (0 when empty). */
  get max(): number {
    return this.#max;
  }

  /**
   * The `q` quantile (0 < q ≤ 1) in milliseconds: the upper edge of the
   * bucket it falls in, capped by the maximum; 0 when empty.
   */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#max, FLOOR_MS * GROWTH ** i);
    }
    return this.#max;
  }
}

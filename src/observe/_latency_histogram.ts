/**
 * A fixed-size, log-bucketed latency histogram: constant memory per plugin,
 * O(1) allocation-free `record`, percentiles within 1 % relative error.
 *
 * Each power of two is split into 64 equal sub-buckets (the HdrHistogram
 * layout), found from the bits of the value's float64 encoding: its exponent
 * and the top six bits of its mantissa, with no logarithm on the call path.
 * A bucket `[lower, lower * (1 + 1/64))` reports its midpoint, which is
 * within 1/128 (0.8 %) of every value it holds.
 *
 * @module
 */

/** Relative accuracy of {@linkcode LatencyHistogram.percentile}. */
export const LATENCY_RELATIVE_ACCURACY = 0.01;

/** Sub-buckets per power of two: `2 ** SUB_BITS`. */
const SUB_BITS = 6;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Values up to 1 ns land in a bucket that reports 1 ns. */
const MIN_TRACKED_NS = 1;
/** Powers of two tracked above 1 ns: up to 2^44 ns ≈ 4.9 h (`maxNs` stays exact beyond). */
const OCTAVES = 44;
const MAX_TRACKED_NS = 2 ** OCTAVES;
/** Bucket 0 holds `(0, 1]`; buckets 1… the sub-buckets of each octave; the last, the rest. */
const BUCKETS = 1 + OCTAVES * SUB_BUCKETS + 1;

/** A float64 and its two 32-bit halves (little-endian: `[1]` holds sign, exponent, top mantissa). */
const scratch = new Float64Array(1);
const scratchWords = new Uint32Array(scratch.buffer);

function bucketOf(valueNs: number): number {
  if (valueNs <= MIN_TRACKED_NS) return 0;
  if (valueNs >= MAX_TRACKED_NS) return BUCKETS - 1;
  scratch[0] = valueNs;
  const high = scratchWords[1]!;
  const exponent = (high >>> 20) - 1023;
  const sub = (high >>> (20 - SUB_BITS)) & (SUB_BUCKETS - 1);
  return 1 + exponent * SUB_BUCKETS + sub;
}

function representativeOf(bucket: number): number {
  if (bucket === 0) return MIN_TRACKED_NS;
  if (bucket === BUCKETS - 1) return MAX_TRACKED_NS;
  const index = bucket - 1;
  const exponent = Math.floor(index / SUB_BUCKETS);
  const sub = index % SUB_BUCKETS;
  return 2 ** exponent * (1 + (sub + 0.5) / SUB_BUCKETS);
}

/**
 * Durations of a plugin's calls in nanoseconds, as a log-bucket histogram of
 * 2 818 counters (22 KiB), whatever the number of calls. The counters are
 * allocated at the first non-zero duration: a plugin created and stopped
 * without a call costs nothing here (creating and dropping many plugins
 * would otherwise pile up 22 KiB buffers outside the JS heap until a full
 * collection, each creation slower than the last).
 *
 * Negative values are clamped to 0 and `NaN` is ignored, so a bad clock
 * reading never throws on the call path.
 */
export class LatencyHistogram {
  #counts: Float64Array | null = null;
  #zeroCount = 0;
  #count = 0;
  #sumNs = 0;
  #minNs = Infinity;
  #maxNs = 0;

  /** Records one duration in nanoseconds. */
  record(valueNs: number): void {
    // `!(x >= 0)` is true for NaN and negatives: NaN is dropped, negatives clamp to 0.
    if (!(valueNs >= 0)) {
      if (valueNs !== valueNs) return;
      valueNs = 0;
    }
    if (valueNs === Infinity) valueNs = MAX_TRACKED_NS;
    this.#count++;
    this.#sumNs += valueNs;
    if (valueNs < this.#minNs) this.#minNs = valueNs;
    if (valueNs > this.#maxNs) this.#maxNs = valueNs;
    if (valueNs === 0) this.#zeroCount++;
    else (this.#counts ??= new Float64Array(BUCKETS))[bucketOf(valueNs)]!++;
  }

  /** How many values were recorded. */
  get count(): number {
    return this.#count;
  }

  /** The sum of the recorded values, in nanoseconds. */
  get sumNs(): number {
    return this.#sumNs;
  }

  /** The largest recorded value (exact), or 0 when empty. */
  get maxNs(): number {
    return this.#maxNs;
  }

  /** The smallest recorded value (exact), or 0 when empty. */
  get minNs(): number {
    return this.#count === 0 ? 0 : this.#minNs;
  }

  /**
   * The nearest-rank `q`-quantile, within 1 % of the exact value; 0 when empty.
   *
   * @param q A fraction in `[0, 1]` (0.5 for the median, 0.99 for p99).
   * @throws {RangeError} When `q` is outside `[0, 1]`.
   */
  percentile(q: number): number {
    if (!(q >= 0 && q <= 1)) {
      throw new RangeError(`Cannot compute a percentile: expected q in [0, 1], received ${q}`);
    }
    if (this.#count === 0) return 0;
    if (q === 0) return this.#minNs;
    if (q === 1) return this.#maxNs;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = this.#zeroCount;
    if (seen >= rank) return 0;
    const counts = this.#counts;
    if (counts === null) return this.#maxNs;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i]!;
      if (seen >= rank) {
        const value = representativeOf(i);
        return Math.min(this.#maxNs, Math.max(this.#minNs, value));
      }
    }
    return this.#maxNs;
  }

  /**
   * Cumulative counts of the values at or below each upper bound (ns), for
   * Prometheus `le` buckets. A value counts towards a bound when it shares the
   * bound's bucket, so a boundary may be off by the 1 % bucket width.
   * `Infinity` yields {@linkcode LatencyHistogram.count}.
   */
  cumulativeCounts(upperBoundsNs: readonly number[]): number[] {
    const prefix = new Float64Array(BUCKETS);
    let running = this.#zeroCount;
    for (let i = 0; i < BUCKETS; i++) {
      running += this.#counts?.[i] ?? 0;
      prefix[i] = running;
    }
    return upperBoundsNs.map((bound) => {
      if (Number.isNaN(bound) || bound < 0) return 0;
      if (bound === Infinity || bound >= this.#maxNs) return this.#count;
      if (bound === 0) return this.#zeroCount;
      return prefix[bucketOf(bound)]!;
    });
  }

  /** Forgets every recorded value. */
  reset(): void {
    this.#counts?.fill(0);
    this.#zeroCount = 0;
    this.#count = 0;
    this.#sumNs = 0;
    this.#minNs = Infinity;
    this.#maxNs = 0;
  }

  /** Adds every value recorded by `other` (e.g. a worker's histogram) to this one. */
  merge(other: LatencyHistogram): void {
    if (other.#count === 0) return;
    if (other.#counts !== null) {
      const counts = this.#counts ??= new Float64Array(BUCKETS);
      for (let i = 0; i < BUCKETS; i++) counts[i]! += other.#counts[i]!;
    }
    this.#zeroCount += other.#zeroCount;
    this.#count += other.#count;
    this.#sumNs += other.#sumNs;
    if (other.#minNs < this.#minNs) this.#minNs = other.#minNs;
    if (other.#maxNs > this.#maxNs) this.#maxNs = other.#maxNs;
  }

  /** The number of buckets, the same for every histogram (constant memory). */
  static get bucketCount(): number {
    return BUCKETS;
  }
}

/**
 * A fixed-size, log-bucketed latency histogram: constant memory per plugin,
 * O(1) allocation-free `record`, percentiles within 1 % relative error.
 *
 * Buckets grow geometrically by `γ = (1 + α) / (1 - α)` with `α = 0.01`
 * (the DDSketch layout): bucket `i` holds the values in `(γ^(i-1), γ^i]` and
 * reports `2γ^i / (γ + 1)`, which is within `α` of every value it holds.
 *
 * @module
 */

/** Relative accuracy of {@linkcode LatencyHistogram.percentile}. */
export const LATENCY_RELATIVE_ACCURACY = 0.01;

const GAMMA = (1 + LATENCY_RELATIVE_ACCURACY) / (1 - LATENCY_RELATIVE_ACCURACY);
const INV_LOG_GAMMA = 1 / Math.log(GAMMA);
/** Values below 1 ns land in a zero bucket that reports 0. */
const MIN_TRACKED_NS = 1;
/** 2^44 ns ≈ 4.9 h; larger values share the last bucket (`maxNs` stays exact). */
const MAX_TRACKED_NS = 2 ** 44;
/** Buckets 1…BUCKETS-1 cover `(1, MAX_TRACKED_NS]`; bucket 0 holds `(0, 1]`. */
const BUCKETS = Math.ceil(Math.log(MAX_TRACKED_NS) * INV_LOG_GAMMA) + 1;

function bucketOf(valueNs: number): number {
  if (valueNs <= MIN_TRACKED_NS) return 0;
  if (valueNs >= MAX_TRACKED_NS) return BUCKETS - 1;
  return Math.ceil(Math.log(valueNs) * INV_LOG_GAMMA);
}

function representativeOf(bucket: number): number {
  return (2 * GAMMA ** bucket) / (GAMMA + 1);
}

/**
 * Durations of a plugin's calls in nanoseconds, as a log-bucket histogram of
 * about 1 500 counters (12 KiB), whatever the number of calls.
 *
 * Negative values are clamped to 0 and `NaN` is ignored, so a bad clock
 * reading never throws on the call path.
 */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
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
    else this.#counts[bucketOf(valueNs)]!++;
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
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i]!;
      if (seen >= rank) {
        const value = i === 0 ? MIN_TRACKED_NS : representativeOf(i);
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
      running += this.#counts[i]!;
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
    this.#counts.fill(0);
    this.#zeroCount = 0;
    this.#count = 0;
    this.#sumNs = 0;
    this.#minNs = Infinity;
    this.#maxNs = 0;
  }

  /** Adds every value recorded by `other` (e.g. a worker's histogram) to this one. */
  merge(other: LatencyHistogram): void {
    if (other.#count === 0) return;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
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

import assert from "node:assert/strict";
import {
  LATENCY_RELATIVE_ACCURACY,
  LatencyHistogram,
} from "../../src/observe/_latency_histogram.ts";

/** A seeded PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal durations around `medianNs` (Box–Muller). */
function logNormal(next: () => number, medianNs: number, sigma: number): number {
  const u = 1 - next();
  const v = next();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return medianNs * Math.exp(sigma * z);
}

function exactPercentile(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

Deno.test("LatencyHistogram.percentile() stays within 1 % of the exact percentile", async (t) => {
  for (const [median, sigma] of [[20_000, 0.5], [1_500, 2], [5e8, 1.2]] as const) {
    await t.step(`log-normal, median ${median} ns, sigma ${sigma}`, () => {
      const next = random(median);
      const histogram = new LatencyHistogram();
      const values: number[] = [];
      for (let i = 0; i < 50_000; i++) {
        const value = logNormal(next, median, sigma);
        values.push(value);
        histogram.record(value);
      }
      values.sort((a, b) => a - b);
      for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999]) {
        const exact = exactPercentile(values, q);
        const estimate = histogram.percentile(q);
        const error = Math.abs(estimate - exact) / exact;
        assert.ok(
          error <= LATENCY_RELATIVE_ACCURACY,
          `q=${q}: estimate ${estimate}, exact ${exact}, relative error ${error}`,
        );
      }
      assert.equal(histogram.count, values.length);
      assert.equal(histogram.maxNs, values.at(-1));
      assert.equal(histogram.percentile(1), values.at(-1));
      assert.equal(histogram.percentile(0), values[0]);
      const sum = values.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(histogram.sumNs - sum) / sum < 1e-9);
    });
  }
});

Deno.test("LatencyHistogram keeps constant memory whatever the number of values", () => {
  const buckets = LatencyHistogram.bucketCount;
  assert.ok(buckets > 100 && buckets < 4_000, `bucket count ${buckets}`);
  const histogram = new LatencyHistogram();
  const next = random(7);
  for (let i = 0; i < 200_000; i++) histogram.record(next() * 1e12);
  // The only storage is the fixed bucket array: the count of buckets is a class constant.
  assert.equal(LatencyHistogram.bucketCount, buckets);
  assert.equal(histogram.count, 200_000);
});

Deno.test("LatencyHistogram handles edge values", async (t) => {
  await t.step("an empty histogram reports 0", () => {
    const histogram = new LatencyHistogram();
    assert.equal(histogram.percentile(0.5), 0);
    assert.equal(histogram.percentile(0.99), 0);
    assert.equal(histogram.maxNs, 0);
    assert.equal(histogram.minNs, 0);
    assert.equal(histogram.sumNs, 0);
    assert.deepEqual(histogram.cumulativeCounts([1, Infinity]), [0, 0]);
  });

  await t.step("zero durations are counted and report 0", () => {
    const histogram = new LatencyHistogram();
    for (let i = 0; i < 10; i++) histogram.record(0);
    histogram.record(1_000);
    assert.equal(histogram.count, 11);
    assert.equal(histogram.percentile(0.5), 0);
    assert.equal(histogram.percentile(0.99), 1_000);
    assert.deepEqual(histogram.cumulativeCounts([0, 900, 1_000]), [10, 10, 11]);
  });

  await t.step("NaN is ignored and negatives are clamped to 0", () => {
    const histogram = new LatencyHistogram();
    histogram.record(Number.NaN);
    assert.equal(histogram.count, 0);
    histogram.record(-5);
    assert.equal(histogram.count, 1);
    assert.equal(histogram.sumNs, 0);
    assert.equal(histogram.percentile(0.5), 0);
  });

  await t.step("huge values and Infinity keep an exact, finite max", () => {
    const histogram = new LatencyHistogram();
    histogram.record(1e18);
    assert.equal(histogram.maxNs, 1e18);
    assert.equal(histogram.percentile(0.5), 1e18);
    histogram.record(Infinity);
    assert.ok(Number.isFinite(histogram.maxNs));
    assert.ok(Number.isFinite(histogram.sumNs));
    assert.equal(histogram.count, 2);
  });

  await t.step("sub-nanosecond values stay within their bucket", () => {
    const histogram = new LatencyHistogram();
    histogram.record(0.25);
    histogram.record(0.5);
    histogram.record(0.75);
    const median = histogram.percentile(0.5);
    assert.ok(median >= 0.25 && median <= 0.75, `median ${median}`);
  });

  await t.step("q outside [0, 1] is a RangeError", () => {
    const histogram = new LatencyHistogram();
    assert.throws(() => histogram.percentile(1.5), RangeError);
    assert.throws(() => histogram.percentile(-0.1), RangeError);
    assert.throws(() => histogram.percentile(Number.NaN), RangeError);
  });
});

Deno.test("LatencyHistogram.cumulativeCounts() gives monotonic Prometheus buckets", () => {
  const histogram = new LatencyHistogram();
  const values = [500, 2_000, 2_000, 40_000, 900_000, 3e9];
  for (const value of values) histogram.record(value);
  const bounds = [100, 1_000, 10_000, 100_000, 1e6, 1e9, Infinity];
  const counts = histogram.cumulativeCounts(bounds);
  assert.deepEqual(counts, bounds.map((bound) => values.filter((v) => v <= bound).length));
  for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!);
});

Deno.test("LatencyHistogram.merge() and reset() combine and forget values", () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) a.record(i * 1_000);
  for (let i = 101; i <= 200; i++) b.record(i * 1_000);
  a.merge(b);
  assert.equal(a.count, 200);
  assert.equal(a.maxNs, 200_000);
  assert.equal(a.minNs, 1_000);
  const median = a.percentile(0.5);
  assert.ok(Math.abs(median - 100_000) / 100_000 <= LATENCY_RELATIVE_ACCURACY, `median ${median}`);
  a.reset();
  assert.equal(a.count, 0);
  assert.equal(a.percentile(0.5), 0);
});

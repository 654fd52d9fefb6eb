import assert from "node:assert/strict";
import {
  AnomalyDetector,
  type AnomalySettings,
  MAX_REPORT_GAP,
  NEW_NORMAL_WARMUPS,
  resolveAnomalySettings,
} from "../../src/observe/_anomaly_detector.ts";
import type { AnomalyDetail } from "../../src/observe/anomaly.ts";

const SETTINGS: AnomalySettings = resolveAnomalySettings(undefined)!;
const PAGE = 65_536;

/** A seeded PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/**
 * Durations of a steady plugin on a noisy machine: log-normal jitter, 2 %
 * scheduler spikes of 10–200x, and stretches of a few hundred calls 2–3x
 * slower (another process taking the CPU).
 */
function noisyDuration(next: () => number, medianMs: number, call: number): number {
  const loaded = Math.floor(call / 300) % 4 === 3 ? 2 + next() : 1;
  const spike = next() < 0.02 ? 10 + next() * 190 : 1;
  return medianMs * loaded * spike * Math.exp(0.4 * gaussian(next));
}

interface Call {
  readonly fn?: string;
  readonly durationMs: number;
  readonly ok?: boolean;
  readonly fuel?: number;
  readonly memoryBytes?: number;
}

function feed(detector: AnomalyDetector, calls: Iterable<Call>): AnomalyDetail[][] {
  const found: AnomalyDetail[][] = [];
  for (const call of calls) {
    found.push(
      detector.observe(
        call.fn ?? "f",
        call.durationMs,
        call.ok ?? true,
        call.fuel ?? 0,
        call.memoryBytes ?? PAGE,
      ) ?? [],
    );
  }
  return found;
}

function* steady(count: number, seed: number, medianMs = 0.05): Generator<Call> {
  const next = random(seed);
  for (let i = 0; i < count; i++) {
    yield { durationMs: noisyDuration(next, medianMs, i), fuel: 12_345, ok: next() > 0.002 };
  }
}

/** The index (0-based) of the first call that reported `metric`, or -1. */
function firstReport(found: readonly AnomalyDetail[][], metric: string): number {
  return found.findIndex((anomalies) => anomalies.some((a) => a.metric === metric));
}

Deno.test("AnomalyDetector reports nothing for steady calls on a noisy machine", async (t) => {
  for (const medianMs of [0.002, 0.05, 3]) {
    await t.step(`100 000 calls of about ${medianMs} ms`, () => {
      const detector = new AnomalyDetector(SETTINGS, PAGE);
      const found = feed(detector, steady(100_000, medianMs * 1000, medianMs)).flat();
      assert.deepEqual(found, []);
      assert.equal(detector.count, 0);
    });
  }

  await t.step("two functions of very different cost keep separate baselines", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    const next = random(3);
    const calls = Array.from({ length: 20_000 }, (_, i) => {
      const slow = next() < 0.5;
      return {
        fn: slow ? "slow" : "fast",
        durationMs: noisyDuration(next, slow ? 5 : 0.005, i),
        fuel: slow ? 1_000_000 : 50,
      };
    });
    assert.deepEqual(feed(detector, calls).flat(), []);
  });
});

Deno.test("AnomalyDetector reports a departure within 20 calls", async (t) => {
  const warm = (detector: AnomalyDetector): void => {
    assert.deepEqual(feed(detector, steady(2_000, 11)).flat(), []);
  };

  await t.step("a plugin 20x slower", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const next = random(5);
    const slower = Array.from({ length: 20 }, (_, i) => ({
      durationMs: 20 * noisyDuration(next, 0.05, i),
      fuel: 12_345,
    }));
    const found = feed(detector, slower);
    const at = firstReport(found, "duration");
    assert.ok(at >= 0 && at < 20, `first duration anomaly at call ${at}`);
    const anomaly = found[at]!.find((a) => a.metric === "duration")!;
    assert.equal(anomaly.function, "f");
    assert.ok(anomaly.value > 4 * anomaly.baseline, JSON.stringify(anomaly));
    assert.ok(anomaly.score >= SETTINGS.threshold);
  });

  await t.step("a plugin that burns 20x the fuel", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const found = feed(detector, Array(20).fill({ durationMs: 0.05, fuel: 20 * 12_345 }));
    const at = firstReport(found, "fuel");
    assert.ok(at >= 0 && at < 5, `first fuel anomaly at call ${at}`);
    const anomaly = found[at]!.find((a) => a.metric === "fuel")!;
    assert.equal(anomaly.value, 20 * 12_345);
    assert.ok(Math.abs(anomaly.baseline - 12_345) < 1, `baseline ${anomaly.baseline}`);
  });

  await t.step("a plugin whose memory grows on every call", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const found = feed(
      detector,
      Array.from({ length: 20 }, (_, i) => ({ durationMs: 0.05, memoryBytes: (i + 2) * PAGE })),
    );
    const at = firstReport(found, "memory");
    assert.ok(at >= 0 && at < 20, `first memory anomaly at call ${at}`);
    const anomaly = found[at]!.find((a) => a.metric === "memory")!;
    assert.ok(anomaly.value > 0.3 * PAGE, JSON.stringify(anomaly));
    assert.ok(anomaly.baseline < 0.05 * PAGE, JSON.stringify(anomaly));
  });

  await t.step("a plugin that starts failing", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const found = feed(detector, Array(20).fill({ durationMs: 0.01, ok: false }));
    const at = firstReport(found, "error_rate");
    assert.ok(at >= 0 && at < 20, `first error-rate anomaly at call ${at}`);
    const anomaly = found[at]!.find((a) => a.metric === "error_rate")!;
    assert.ok(anomaly.value >= 0.3, `value ${anomaly.value}`);
    assert.ok(anomaly.baseline < 0.05, `baseline ${anomaly.baseline}`);
  });

  await t.step("nothing during the warm-up", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    const calls = Array.from({ length: SETTINGS.warmupCalls }, (_, i) => ({
      durationMs: i % 2 === 0 ? 0.01 : 50,
      ok: i % 3 !== 0,
      memoryBytes: (i + 2) * PAGE,
    }));
    assert.deepEqual(feed(detector, calls).flat(), []);
  });

  await t.step("a lasting change becomes the new normal", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const slower = Array(500).fill({ durationMs: 5, fuel: 12_345 });
    const found = feed(detector, slower);
    const reports = found.filter((anomalies) => anomalies.length > 0).length;
    assert.ok(reports >= 2, "the change is reported, and again while it lasts");
    assert.ok(reports <= 5, `reported ${reports} times`);
    assert.deepEqual(
      found.slice(NEW_NORMAL_WARMUPS * SETTINGS.warmupCalls).flat(),
      [],
      "then learned",
    );
  });

  await t.step("lasting failures are reported again, less and less often", () => {
    const detector = new AnomalyDetector(SETTINGS, PAGE);
    warm(detector);
    const found = feed(detector, Array(2_000).fill({ durationMs: 0.01, ok: false }));
    const at = found.flatMap((anomalies, i) => anomalies.length > 0 ? [i] : []);
    assert.ok(at.length >= 5 && at.length <= 12, `reports at ${at}`);
    const gaps = at.slice(1).map((call, i) => call - at[i]!);
    for (let i = 1; i < gaps.length; i++) {
      assert.ok(gaps[i]! >= gaps[i - 1]!, `gaps ${gaps}`);
    }
    assert.ok(gaps.at(-1)! <= MAX_REPORT_GAP);
  });
});

Deno.test("resolveAnomalySettings() checks the manager's options", () => {
  assert.equal(resolveAnomalySettings({ anomaly: false }), null);
  assert.deepEqual(resolveAnomalySettings({ anomaly: true }), SETTINGS);
  assert.deepEqual(
    resolveAnomalySettings({
      anomaly: { threshold: 3, warmupCalls: 10, actions: { pauseAfter: 2 } },
    }),
    { threshold: 3, warmupCalls: 10, pauseAfter: 2, unloadAfter: Infinity },
  );
  assert.throws(
    () => resolveAnomalySettings({ anomoly: false } as never),
    { name: "TypeError", message: /unknown key 'anomoly' \(did you mean 'anomaly'\?\)/ },
  );
  assert.throws(
    () => resolveAnomalySettings({ anomaly: { treshold: 3 } as never }),
    { name: "TypeError", message: /unknown key 'treshold' \(did you mean 'threshold'\?\)/ },
  );
  assert.throws(
    () => resolveAnomalySettings({ anomaly: { actions: { pauseAftr: 1 } as never } }),
    { name: "TypeError", message: /did you mean 'pauseAfter'/ },
  );
  assert.throws(() => resolveAnomalySettings({ anomaly: { threshold: 0 } }), RangeError);
  assert.throws(() => resolveAnomalySettings({ anomaly: { threshold: NaN } }), RangeError);
  assert.throws(() => resolveAnomalySettings({ anomaly: { warmupCalls: 1.5 } }), RangeError);
  assert.throws(
    () => resolveAnomalySettings({ anomaly: { actions: { unloadAfter: 0 } } }),
    /'anomaly.actions.unloadAfter' must be a positive integer: current value is number 0/,
  );
  assert.throws(() => resolveAnomalySettings({ anomaly: "yes" as never }), TypeError);
  assert.throws(() => resolveAnomalySettings(42 as never), TypeError);
});

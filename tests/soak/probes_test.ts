/**
 * The soak's instruments see what they are meant to see: a soak whose
 * probes counted nothing would pass its checks whatever the runtime leaked.
 */
import assert from "node:assert/strict";
import { LatencyHistogram } from "./_histogram.ts";
import { CallLedger } from "./_ledger.ts";
import { ListenerProbe } from "./_listener_probe.ts";
import { TimerProbe } from "./_timer_probe.ts";
import { WorkerProbe } from "./_worker_probe.ts";

Deno.test("TimerProbe counts a timer live until it fires or is cleared", {
  permissions: "none",
}, async () => {
  using probe = TimerProbe.install();
  const cleared = setTimeout(() => {}, 60_000);
  const interval = setInterval(() => {}, 60_000);
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(probe.counts(), { created: 3, live: 2, peak: 3 });
  clearTimeout(cleared);
  clearInterval(interval);
  assert.equal(probe.counts().live, 0);
});

Deno.test("WorkerProbe counts a worker live until it is terminated", {
  permissions: "none",
}, () => {
  using probe = WorkerProbe.install();
  const url = URL.createObjectURL(new Blob([""], { type: "text/javascript" }));
  try {
    const worker = new Worker(url, { type: "module" });
    assert.deepEqual(probe.counts(), { spawned: 1, terminated: 0, live: 1, peak: 1 });
    worker.terminate();
    worker.terminate();
    assert.deepEqual(probe.counts(), { spawned: 1, terminated: 1, live: 0, peak: 1 });
  } finally {
    URL.revokeObjectURL(url);
  }
});

Deno.test("ListenerProbe sees listeners pile up on one target", {
  permissions: "none",
}, async (t) => {
  using probe = ListenerProbe.install();
  const target = new AbortController().signal;
  const listeners = Array.from({ length: 5 }, () => () => {});

  await t.step("each distinct listener counts once, as the DOM registers it", () => {
    for (const listener of listeners) target.addEventListener("abort", listener);
    target.addEventListener("abort", listeners[0]!);
    assert.equal(probe.countOn(target), 5);
    assert.equal(probe.counts().peak, 5);
  });

  await t.step("a removed listener no longer counts", () => {
    for (const listener of listeners) target.removeEventListener("abort", listener);
    assert.equal(probe.countOn(target), 0);
    assert.equal(probe.counts().peak, 5);
  });

  await t.step("a `once` listener stops counting when it fires, and still runs", () => {
    const events = new EventTarget();
    let calls = 0;
    events.addEventListener("ping", () => calls++, { once: true });
    assert.equal(probe.countOn(events), 1);
    events.dispatchEvent(new Event("ping"));
    events.dispatchEvent(new Event("ping"));
    assert.equal(calls, 1);
    assert.equal(probe.countOn(events), 0);
  });

  await t.step("a listener added with an aborted `signal` stops counting", () => {
    const controller = new AbortController();
    target.addEventListener("abort", listeners[0]!, { signal: controller.signal });
    assert.equal(probe.countOn(target), 1);
    controller.abort();
    assert.equal(probe.countOn(target), 0);
  });
});

Deno.test("CallLedger keeps a call that never settles pending", {
  permissions: "none",
}, async () => {
  const ledger = new CallLedger();
  const settled = await ledger.track("p", "ok", () => Promise.resolve(1));
  const failed = await ledger.track("p", "fail", () => Promise.reject(new Error("no")));
  const threw = await ledger.track("p", "throw", () => {
    throw new Error("sync");
  });
  void ledger.track("p", "hang", () => new Promise(() => {}));
  assert.deepEqual([settled.ok, failed.ok, threw.ok], [true, false, false]);
  assert.equal(!threw.ok && threw.threw, true);
  assert.deepEqual(ledger.counts(), { issued: 4, settled: 3, pending: 1 });
  assert.deepEqual(ledger.pending().map((call) => call.action), ["hang"]);
});

Deno.test("LatencyHistogram quantiles are within 1 % of the exact ones", {
  permissions: "none",
}, () => {
  const histogram = new LatencyHistogram();
  const samples = Array.from({ length: 10_000 }, (_, i) => 0.001 * 1.001 ** i);
  for (const sample of samples) histogram.record(sample);
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = samples[Math.ceil(q * samples.length) - 1]!;
    const found = histogram.quantile(q);
    assert.ok(Math.abs(found - exact) / exact <= 0.01, `q${q}: ${found} vs ${exact}`);
  }
  assert.equal(histogram.max, samples.at(-1));
  assert.equal(histogram.count, samples.length);
});

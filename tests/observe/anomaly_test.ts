import assert from "node:assert/strict";
import {
  type AnomalyDetail,
  type AnomalyMetric,
  type PluginEvent,
  type PluginHandle,
  PluginManager,
  type PluginManagerOptions,
  type RuntimeConfig,
} from "../../mod.ts";
import { isolatedRuntime, ISOLATIONS, WORKER_SOURCES } from "../_helpers.ts";

/**
 * `work` sums 0…n-1; `set(n, leak, fail)` changes n, makes `work` grow
 * memory by a page, or trap. A steady plugin until a test flips it.
 */
const WORKER_WAT = `
  (module
    (memory (export "memory") 1)
    (global $n (mut i32) (i32.const 100))
    (global $leak (mut i32) (i32.const 0))
    (global $fail (mut i32) (i32.const 0))
    (func (export "set") (param i32 i32 i32)
      local.get 0 global.set $n
      local.get 1 global.set $leak
      local.get 2 global.set $fail)
    (func (export "keep") (param externref))
    (func (export "quick") (result i32) (i32.const 1))
    (func (export "spin") (result i32) (loop $l (br $l)) (i32.const 0))
    (func (export "work") (result i32) (local $i i32) (local $acc i32)
      global.get $fail
      if unreachable end
      global.get $leak
      if i32.const 1 memory.grow drop end
      block $done
        loop $loop
          local.get $i global.get $n i32.ge_u br_if $done
          local.get $acc local.get $i i32.add local.set $acc
          local.get $i i32.const 1 i32.add local.set $i
          br $loop
        end
      end
      local.get $acc))
`;

interface Setup extends AsyncDisposable {
  readonly manager: PluginManager;
  readonly handle: PluginHandle;
  /** Every anomaly event so far. */
  readonly anomalies: PluginEvent<"anomaly">[];
  /** Calls `work` `count` times (failures allowed); returns how many calls until the first new `metric` anomaly, or -1. */
  work(count: number, metric?: AnomalyMetric): Promise<number>;
  set(n: number, options?: { leak?: boolean; fail?: boolean }): Promise<void>;
}

/** {@linkcode setUp} in worker isolation. */
function setUpWorker(
  runtimeConfig: RuntimeConfig,
  options?: PluginManagerOptions,
): Promise<Setup> {
  return setUp(runtimeConfig, options, "worker");
}

async function setUp(
  runtimeConfig: RuntimeConfig,
  options?: PluginManagerOptions,
  isolation: "inline" | "worker" = "inline",
): Promise<Setup> {
  const runtime = isolatedRuntime(isolation, runtimeConfig);
  const manager = new PluginManager(runtime, options);
  const anomalies: PluginEvent<"anomaly">[] = [];
  manager.addEventListener("anomaly", (event) => anomalies.push(event));
  const handle = await manager.loadWat(WORKER_WAT, { id: "worker-wat", name: "steady" });
  return {
    manager,
    handle,
    anomalies,
    async work(count, metric) {
      const before = anomalies.length;
      let first = -1;
      for (let i = 0; i < count; i++) {
        await manager.callI32(handle, "work").catch(() => {});
        const found = anomalies.slice(before).some((a) =>
          metric === undefined || a.detail.metric === metric
        );
        if (first < 0 && found) first = i;
      }
      return first;
    },
    async set(n, { leak = false, fail = false } = {}) {
      await manager.callVoid(handle, "set", [n, leak ? 1 : 0, fail ? 1 : 0]);
    },
    async [Symbol.asyncDispose]() {
      await manager.close();
      await runtime.close();
    },
  };
}

function describe(anomalies: readonly PluginEvent<"anomaly">[]): string {
  return JSON.stringify(anomalies.map((a) => a.detail));
}

function firstOf(
  anomalies: readonly PluginEvent<"anomaly">[],
  metric: AnomalyMetric,
): AnomalyDetail {
  const found = anomalies.find((a) => a.detail.metric === metric);
  assert.ok(found !== undefined, `no ${metric} anomaly in ${describe(anomalies)}`);
  assert.equal(found.pluginId, "worker-wat");
  assert.equal(found.type, "anomaly");
  return found.detail;
}

Deno.test("PluginManager reports no anomaly for 10 000 steady calls", async () => {
  await using setup = await setUp({});
  assert.equal(await setup.work(10_000), -1, describe(setup.anomalies));
  assert.deepEqual(setup.anomalies, []);
  assert.equal((await setup.manager.getInfo(setup.handle)).metrics.callCount, 10_000);
});

for (const isolation of ISOLATIONS) {
  Deno.test(`PluginManager reports a changed plugin within 20 calls (${isolation})`, {
    permissions: isolation === "worker" ? { read: [WORKER_SOURCES] } : "none",
  }, async (t) => {
    const runtimeConfig: RuntimeConfig = { execution: { isolation } };

    await t.step("20x the work: a fuel anomaly", async () => {
      await using setup = await setUp(runtimeConfig);
      await setup.set(1_000);
      await setup.work(100);
      // Steady work, steady fuel. (Not steady durations on a loaded machine: five slow calls in
      // eight, a worker waiting for a core behind the parallel suite, are a duration anomaly.)
      assert.deepEqual(setup.anomalies.filter((a) => a.detail.metric !== "duration"), []);
      await setup.set(20_000);
      const at = await setup.work(20, "fuel");
      assert.ok(at >= 0 && at < 20, `first fuel anomaly after ${at} calls`);
      const detail = firstOf(setup.anomalies, "fuel");
      assert.equal(detail.function, "work");
      assert.ok(detail.value > 15 * detail.baseline, JSON.stringify(detail));
      assert.ok(detail.score >= 5);
    });

    await t.step("memory that grows on every call: a memory anomaly", async () => {
      await using setup = await setUp(runtimeConfig);
      await setup.work(100);
      await setup.set(100, { leak: true });
      const at = await setup.work(20, "memory");
      assert.ok(at >= 0 && at < 20, `first memory anomaly after ${at} calls`);
      const detail = firstOf(setup.anomalies, "memory");
      assert.ok(detail.value >= 65_536 / 4, JSON.stringify(detail));
      assert.ok(detail.baseline < detail.value / 10, JSON.stringify(detail));
    });

    await t.step("calls that start failing: an error-rate anomaly", async () => {
      await using setup = await setUp(runtimeConfig);
      await setup.work(100);
      await setup.set(100, { fail: true });
      const at = await setup.work(20, "error_rate");
      assert.ok(at >= 0 && at < 20, `first error-rate anomaly after ${at} calls`);
      const detail = firstOf(setup.anomalies, "error_rate");
      assert.ok(detail.value > 0.3, JSON.stringify(detail));
      assert.ok(detail.baseline < 0.05, JSON.stringify(detail));
    });
  });
}

Deno.test("PluginManager reports a plugin that turns 20x slower (wall time, fuel off)", async () => {
  await using setup = await setUp({ execution: { fuelMetering: false } });
  // About 0.3 ms per call, then 20 times that: far above any scheduler noise.
  await setup.set(300_000);
  await setup.work(60);
  assert.deepEqual(setup.anomalies, []);
  await setup.set(6_000_000);
  const at = await setup.work(20, "duration");
  assert.ok(at >= 0 && at < 20, `first duration anomaly after ${at} calls`);
  const detail = firstOf(setup.anomalies, "duration");
  assert.equal(detail.function, "work");
  assert.ok(detail.value > 4 * detail.baseline, JSON.stringify(detail));
});

Deno.test("PluginManager acts on repeated anomalies", async (t) => {
  await t.step("pauseAfter pauses the plugin", async () => {
    await using setup = await setUp({}, { anomaly: { actions: { pauseAfter: 1 } } });
    await setup.work(40);
    await setup.set(100, { fail: true });
    for (let i = 0; i < 20 && setup.anomalies.length === 0; i++) {
      await assert.rejects(setup.manager.callI32(setup.handle, "work"));
    }
    assert.equal(setup.anomalies.length, 1);
    const plugin = setup.manager.get(setup.handle);
    assert.equal(plugin.state, "paused");
    plugin.resume();
    assert.notEqual(plugin.state, "paused");
  });

  await t.step("unloadAfter unloads it", async () => {
    await using setup = await setUp({}, {
      anomaly: { warmupCalls: 10, actions: { unloadAfter: 2 } },
    });
    const unloaded = new Promise<string>((resolve) => {
      setup.manager.addEventListener("unloaded", (event) => resolve(event.pluginId));
    });
    await setup.work(20);
    await setup.set(100, { fail: true });
    for (let i = 0; i < 40 && setup.anomalies.length < 2; i++) {
      await setup.manager.callI32(setup.handle, "work").catch(() => {});
    }
    assert.equal(setup.anomalies.length, 2, describe(setup.anomalies));
    assert.equal(await unloaded, "worker-wat");
    assert.deepEqual(setup.manager.listPlugins(), []);
  });
});

Deno.test("Calls that ran no guest code tell the detector nothing", async (t) => {
  // A caller's already-aborted signal, a missing export or a wrong argument count failed the
  // call before the plugin ran: 3 in 8 such calls made an error_rate anomaly, and a healthy
  // plugin shared by other callers was paused.
  const aborted = AbortSignal.abort(new Error("the client went"));
  const both = ["inline", "worker"] as const;
  const callerFaults: [string, readonly ("inline" | "worker")[], (s: Setup) => Promise<unknown>][] =
    [
      [
        "an aborted signal",
        both,
        (s) => s.manager.callI32(s.handle, "work", [], { signal: aborted }),
      ],
      ["a missing export", both, (s) => s.manager.callI32(s.handle, "nope")],
      ["a wrong argument count", both, (s) => s.manager.callI32(s.handle, "work", [1])],
      // A worker checked what crosses its channel once the call ran; and a signal aborted
      // while the call ran (a parked worker starting, the guest spinning) is the caller's too.
      [
        "an argument a worker cannot carry",
        ["worker"],
        (s) => s.manager.call(s.handle, "keep", [{}]),
      ],
      [
        "a signal aborted as it runs",
        ["worker"],
        (s) => s.manager.callI32(s.handle, "spin", [], { signal: AbortSignal.timeout(2) }),
      ],
    ];
  for (const [fault, isolations, call] of callerFaults) {
    for (const isolation of isolations) {
      await t.step(`${fault} (${isolation})`, async () => {
        // (Durations aside: a worker's calls around interrupted ones may run cold.)
        await using setup = await setUp({}, {}, isolation);
        await setup.work(40);
        for (let i = 0; i < 240; i++) {
          if (i % 8 < 3) await assert.rejects(call(setup));
          else await setup.manager.callI32(setup.handle, "work");
        }
        const failures = setup.anomalies.filter((a) => a.detail.metric === "error_rate");
        assert.deepEqual(failures, [], describe(failures));
      });
    }
  }
});

Deno.test("A worker call posted ahead is judged by its own signal", {
  permissions: { read: [WORKER_SOURCES] },
}, async () => {
  // It was judged by the signal of the call before it: a quick call whose signal aborted
  // after it ended made the failures of the calls queued behind it the caller's (unseen).
  const runtime = isolatedRuntime("worker");
  await using manager = new PluginManager(runtime, { anomaly: { warmupCalls: 10 } });
  const anomalies: string[] = [];
  manager.addEventListener("anomaly", (event) => anomalies.push(event.detail.metric));
  const handle = await manager.loadWat(
    `(module
      (func (export "quick") (result i32) (i32.const 1))
      (func (export "work") (param $n i32) (param $trap i32) (result i32) (local $i i32)
        (loop $l (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
          (local.get $n))))
        (if (local.get $trap) (then unreachable))
        (local.get $i)))`,
    { resourceLimits: { maxFuel: null } },
  );
  const n = 30_000_000; // some 10-40 ms
  for (let i = 0; i < 30; i++) await manager.callI32(handle, "work", [n, 0]);
  for (let i = 0; i < 30 && !anomalies.includes("error_rate"); i++) {
    const quick = manager.callI32(handle, "quick", [], { signal: AbortSignal.timeout(3) });
    const failing = manager.callI32(handle, "work", [n, 1]); // posted ahead: traps
    await Promise.allSettled([quick, failing]);
  }
  assert.ok(anomalies.includes("error_rate"), JSON.stringify(anomalies));
  await runtime.close();
});

Deno.test("The first call into a worker started for it tells the detector no duration", {
  permissions: { read: [WORKER_SOURCES] },
}, async () => {
  // Its code runs cold (0.4-6 ms against 0.03-0.1 ms): a plugin called in bursts further
  // apart than the idle timeout got duration anomalies for every burst, and was paused.
  await using setup = await setUpWorker({ idleTimeoutMs: 20 }, {
    anomaly: { actions: { pauseAfter: 1 } },
  });
  await setup.work(100);
  for (let burst = 0; burst < 12; burst++) {
    await new Promise((resolve) => setTimeout(resolve, 80)); // parked meanwhile
    await setup.work(1);
  }
  assert.deepEqual(
    setup.anomalies.filter((a) => a.detail.metric === "duration"),
    [],
    describe(setup.anomalies),
  );
  assert.notEqual(setup.manager.get(setup.handle).state, "paused");
});

Deno.test("PluginManager with { anomaly: false } reports nothing", async () => {
  await using setup = await setUp({}, { anomaly: false });
  await setup.work(50);
  await setup.set(100, { fail: true, leak: true });
  await setup.work(50);
  assert.deepEqual(setup.anomalies, []);
});

Deno.test("PluginManager rejects unknown or invalid options", async () => {
  await using runtime = isolatedRuntime("inline");
  assert.throws(() => new PluginManager(runtime, { anomally: false } as never), {
    name: "TypeError",
    message: /unknown key 'anomally' \(did you mean 'anomaly'\?\)/,
  });
  assert.throws(
    () => new PluginManager(runtime, { anomaly: { warmupCall: 5 } as never }),
    /did you mean 'warmupCalls'/,
  );
  assert.throws(
    () => new PluginManager(runtime, { anomaly: { actions: { pauseAfter: -1 } } }),
    RangeError,
  );
});

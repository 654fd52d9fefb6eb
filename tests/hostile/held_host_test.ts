/**
 * A worker plugin's time limit holds while the host's thread is held up (a
 * long synchronous task, a worker start under load): the worker checks its
 * call's deadline on its own clock, so the guest stops on time, and the call
 * ends in a `TimeoutError`, even though the host's timer cannot fire.
 */
import assert from "node:assert/strict";
import { Capability, HostFunctionError, TimeoutError } from "../../mod.ts";
import {
  allowingWorkers,
  assertRejectsWith,
  delay,
  loadPlugin,
  testEachIsolation,
  workerRuntime,
} from "../_helpers.ts";

/** `count(n)` counts to `n` in memory, so what a stopped call did is left to read. */
const COUNTER_WAT = `(module
  (memory (export "memory") 1)
  (func $count (export "count") (param $n i32) (result i32)
    (i32.store (i32.const 0) (i32.const 0))
    (loop $more
      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
      (br_if $more (i32.ne (i32.load (i32.const 0)) (local.get $n))))
    (i32.load (i32.const 0)))
  ;; The bytes ABI: a bytes call that counts for ever.
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "count_bytes") (param i32 i32) (result i64)
    (drop (call $count (i32.const -1)))
    (i64.const 0)))`;

const TIMEOUT_MS = 50;
/** How long the host's thread is held up right after the calls are sent. */
const HELD_MS = 800;

/** Keeps the host's thread busy for `ms`: no timer fires, no message is taken meanwhile. */
function holdHostThread(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

Deno.test("Hostile: a worker plugin's deadline holds while the host's thread is held up", {
  permissions: allowingWorkers("none"),
}, async (t) => {
  await using loaded = await loadPlugin(COUNTER_WAT, {
    resourceLimits: { maxFuel: null, maxExecutionTimeMs: 10_000 },
  }, { execution: { isolation: "worker" } });
  const { plugin } = loaded;

  // Iterations of `count` per millisecond; the fastest of a few tries, so a slow moment only
  // makes the guests below run longer.
  let perMs = 0;
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    await plugin.callI32("count", [20_000_000]);
    perMs = Math.max(perMs, 20_000_000 / (performance.now() - start));
  }
  /** Iterations that take the guest about `ms` at its fastest. */
  const iterationsFor = (ms: number) => Math.min(2 ** 31 - 1, Math.round(perMs * ms));

  await t.step("a call whose guest needs 8x its timeout ends in a TimeoutError", async () => {
    const call = plugin.callI32("count", [iterationsFor(8 * TIMEOUT_MS)], {
      timeoutMs: TIMEOUT_MS,
    });
    await delay(5);
    holdHostThread(HELD_MS);
    await assertRejectsWith(() => call, TimeoutError, { kind: "timeout", timeoutMs: TIMEOUT_MS });
    assert.equal(await plugin.callI32("count", [3]), 3);
  });

  await t.step("so do calls posted ahead behind it", async () => {
    const n = iterationsFor(8 * TIMEOUT_MS);
    const calls = [0, 1, 2].map(() => plugin.callI32("count", [n], { timeoutMs: TIMEOUT_MS }));
    await delay(5);
    holdHostThread(HELD_MS);
    for (const call of calls) {
      await assertRejectsWith(() => call, TimeoutError, { kind: "timeout", timeoutMs: TIMEOUT_MS });
    }
    assert.equal(await plugin.callI32("count", [3]), 3);
  });

  // Stopped at its deadline a guest counts for about 50 ms; running until the host comes back,
  // for about 800 ms. The bound halves that: a loaded machine may have slowed the calibration.
  const bound = iterationsFor(HELD_MS / 2);

  /** Runs `call` with the host's thread held up, and checks how long its guest counted. */
  async function assertStoppedNearDeadline(call: () => Promise<unknown>): Promise<void> {
    const running = call();
    await delay(5);
    holdHostThread(HELD_MS);
    await assertRejectsWith(() => running, TimeoutError, { kind: "timeout" });
    const counted = new DataView((await plugin.readMemory(0, 4)).buffer).getUint32(0, true);
    assert.ok(counted < bound, `counted ${counted}, expected under ${bound}`);
    assert.ok(counted > 0, "the guest ran");
  }

  await t.step("the guest stops near its deadline, not when the host comes back", async () => {
    await assertStoppedNearDeadline(() => plugin.callI32("count", [-1], { timeoutMs: TIMEOUT_MS }));
  });

  await t.step("so does a bytes call's", async () => {
    await assertStoppedNearDeadline(() =>
      plugin.callBytes("count_bytes", new Uint8Array(16), { timeoutMs: TIMEOUT_MS })
    );
  });
});

Deno.test({
  name: "A worker call its guest ends in time succeeds while the host thread is busy",
  permissions: allowingWorkers({}),
}, async () => {
  // Its answer, read after the deadline because the host ran 60 ms of other work, was a
  // TimeoutError (62-69 of 100 calls with a 50 ms deadline): the deadline is the guest's.
  // So did one whose host function the host served late (44-47 of 60), busy with that work.
  await using runtime = workerRuntime();
  const compiled = await runtime.compileWat(
    "adds",
    `(module (import "env" "nop" (func $nop))
      (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
      (func (export "addCalling") (param i32 i32) (result i32)
        call $nop local.get 0 local.get 1 i32.add))`,
  );
  const linker = runtime.createLinker().funcWrap("env", "nop", () => {});
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction],
  }, linker);
  assert.equal(await plugin.callI32("add", [1, 2]), 3);
  const busy = setInterval(() => {
    const until = performance.now() + 60;
    while (performance.now() < until);
  }, 35);
  try {
    for (let i = 0; i < 40; i++) {
      const fn = i % 2 === 0 ? "add" : "addCalling";
      assert.equal(await plugin.callI32(fn, [i, 1], { timeoutMs: 50 }), i + 1);
      await new Promise((resolve) => setTimeout(resolve, i % 7));
    }
  } finally {
    clearInterval(busy);
  }
  assert.equal((await plugin.metrics()).failureCount, 0);
});

testEachIsolation(
  "A host function served after the deadline that holds the thread itself is late",
  {
    permissions: "none",
  },
  async (_t, { createRuntime }) => {
    // A worker gave the guest a grace from when the host function ended: one that ran 300 ms
    // (the host having been busy past the 50 ms deadline before it served it) was a success.
    await using runtime = createRuntime();
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const linker = runtime.createLinker().funcWrap("env", "hold", () => busy(150));
    const compiled = await runtime.compileWat(
      "holding",
      `(module (import "env" "hold" (func $hold)) (func (export "call") call $hold))`,
    );
    await using plugin = await runtime.createPluginWithLinker(compiled, {
      capabilities: [Capability.CallHostFunction],
    }, linker);
    for (let round = 0; round < 3; round++) {
      const calling = plugin.callVoid("call", [], { timeoutMs: 50 });
      busy(70); // busy past the deadline before a worker's host call is served
      await assertRejectsWith(() => calling, TimeoutError);
    }
  },
);

Deno.test({
  name: "A worker guest served late gets one grace, not one per host call",
  permissions: allowingWorkers({}),
}, async () => {
  // Each host call the busy host served late renewed the 100 ms grace: a guest calling one
  // every few milliseconds ran a whole second timeout past its deadline (2.2 s for 1 s).
  await using runtime = workerRuntime({ resourceLimits: { maxFuel: null } });
  const compiled = await runtime.compileWat(
    "chain",
    `(module (import "env" "nop" (func $nop))
      (func (export "run") (local $i i32)
        (call $nop)
        (loop $more
          (local.set $i (i32.const 200000))
          (loop $spin (br_if $spin (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
          (call $nop)
          (br $more))))`,
  );
  const linker = runtime.createLinker().funcWrap("env", "nop", () => {});
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction],
  }, linker);
  const start = performance.now();
  const running = plugin.callVoid("run", [], { timeoutMs: 600 });
  const until = performance.now() + 700; // busy past the deadline before the first host call
  while (performance.now() < until);
  await assertRejectsWith(() => running, TimeoutError);
  // One grace (100 ms) after the host came back, not the guest's own 600 ms more.
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 700 + 400, `ended after ${elapsed} ms`);
});

Deno.test({
  name: "A worker host function's error the busy host reads late is its error, not a timeout",
  permissions: allowingWorkers({}),
}, async () => {
  // The host served it after the deadline (busy), it threw at once: a TimeoutError, while
  // the same host function returning was a success.
  await using runtime = workerRuntime();
  const compiled = await runtime.compileWat(
    "failing",
    `(module (import "env" "bad" (func $bad)) (func (export "call") call $bad))`,
  );
  const linker = runtime.createLinker().funcWrap("env", "bad", () => {
    throw new Error("bad input");
  });
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction],
  }, linker);
  for (let round = 0; round < 3; round++) {
    const calling = plugin.callVoid("call", [], { timeoutMs: 50 });
    const until = performance.now() + 120;
    while (performance.now() < until);
    await assertRejectsWith(() => calling, HostFunctionError);
  }
});

Deno.test({
  name: "A worker guest's own clock does not count the busy host's wait for a late-served call",
  permissions: allowingWorkers({}),
}, async (t) => {
  // The host gave the guest a grace for a host call it served late, but the worker's own
  // clock (read before the call), its async wait's timer (a tool) or the host's rule for a
  // host function answering with a promise ended the call at its deadline: 16 of 16 timed out.
  await using runtime = workerRuntime({ resourceLimits: { maxFuel: null } });
  /** When the host began serving the last host call or tool. */
  let servedAt = NaN;
  const served = <T>(value: () => T) => () => {
    servedAt = performance.now();
    return value();
  };
  runtime.registerTool("later", served(() => "{}"));
  runtime.registerTool("never", served(() => new Promise(() => {})));
  const compiled = await runtime.compileWat(
    "clocked",
    `(module
      (import "env" "host" (func $host))
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "later{}never")
      ;; Some 10 ms of work before the host call (the worker reads its clock) and after (it reads
      ;; it again).
      (func $work (local $i i32)
        (local.set $i (i32.const 20000000))
        (loop $spin (br_if $spin (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))
      (func (export "host") (call $work) (call $host) (call $work))
      (func (export "twice") (call $work) (call $host) (call $host) (call $work))
      (func (export "tool") (param $at i32) (result i32)
        (call $work)
        (call $tool (local.get $at) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64)
          (i32.const 64))
        (call $work)))`,
  );
  let answer: () => unknown = () => {};
  const linker = runtime.createLinker().funcWrap("env", "host", served(() => answer()));
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction, Capability.CallTool],
  }, linker);

  // The guest sends its host call after some 10 ms; the deadline leaves its worker room for
  // that on a loaded machine (a call sent after the deadline gets no grace).
  const timeoutMs = 150;
  /**
   * Runs `call` `rounds` times with the host busy past the deadline right after sending it,
   * and checks how each ended. A round whose host call the host served before it was busy
   * (its spin for the answer outlasted the guest's work: descheduled on a loaded machine) is
   * not this case: it runs again.
   */
  async function servedLate(
    call: () => Promise<unknown>,
    check: (ended: Promise<unknown>, busyFrom: number) => Promise<unknown>,
    rounds = 3,
  ): Promise<void> {
    for (let tries = 0; rounds > 0; tries++) {
      assert.ok(tries < 10 * rounds, "the host served the host call before it was busy");
      servedAt = NaN;
      const calling = call();
      const busyFrom = performance.now();
      while (performance.now() < busyFrom + 300);
      const ended = calling.then((value) => value);
      ended.catch(() => {});
      await ended.catch(() => {});
      if (!(servedAt >= busyFrom)) continue;
      await check(ended, busyFrom);
      rounds--;
    }
  }
  const succeeds = (expected?: unknown) => async (ended: Promise<unknown>) =>
    assert.equal(await ended, expected);

  await t.step("a sync host function", async () => {
    answer = () => {};
    await servedLate(() => plugin.callVoid("host", [], { timeoutMs }), succeeds());
  });

  await t.step("later host calls in the grace", async () => {
    // The second, sent after the deadline, ended the call: the grace went with the first.
    answer = () => {};
    await servedLate(() => plugin.callVoid("twice", [], { timeoutMs }), succeeds());
  });

  await t.step("one that answers with a promise, or rejects", async () => {
    answer = () => Promise.resolve();
    await servedLate(() => plugin.callVoid("host", [], { timeoutMs }), succeeds());
    answer = () => Promise.reject(new Error("bad input"));
    await servedLate(
      () => plugin.callVoid("host", [], { timeoutMs }),
      (ended) => assertRejectsWith(() => ended, HostFunctionError),
    );
  });

  await t.step("a tool", async () => {
    await servedLate(() => plugin.callI32("tool", [0], { timeoutMs }), succeeds(4));
  });

  await t.step("one that does not answer in the grace times out", async () => {
    answer = () => delay(800);
    const timedOut = async (ended: Promise<unknown>, busyFrom: number) => {
      await assertRejectsWith(() => ended, TimeoutError);
      // About 300 ms busy + 100 ms grace, not the 800 ms wait or for ever.
      const elapsed = performance.now() - busyFrom;
      assert.ok(elapsed < 300 + 100 + 300, `ended after ${elapsed} ms`);
    };
    await servedLate(() => plugin.callVoid("host", [], { timeoutMs }), timedOut, 1);
    await servedLate(() => plugin.callI32("tool", [7], { timeoutMs }), timedOut, 1);
  });
});

Deno.test({
  name: "A worker guest whose first act is a host call has the grace, not a new timeout",
  permissions: allowingWorkers({}),
}, async () => {
  // Its deadline, not read before the host call, was read after the late answer as now plus
  // the whole timeout: held up again, the host could not stop it for 1 s more, not 100 ms.
  await using runtime = workerRuntime({ resourceLimits: { maxFuel: null } });
  const compiled = await runtime.compileWat(
    "hostfirst",
    `(module (import "env" "host" (func $host))
      (memory (export "memory") 1)
      (func $count (loop $more
        (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
        (br $more)))
      (func (export "count") (call $count))
      (func (export "hostFirst") (call $host) (call $count)))`,
  );
  let holdAfter = 0;
  const hold = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  let servedAt = NaN;
  const linker = runtime.createLinker().funcWrap("env", "host", () => {
    servedAt = performance.now();
    // The host is held up again right after it answers.
    if (holdAfter > 0) queueMicrotask(() => hold(holdAfter));
  });
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction],
  }, linker);
  // How far the guest counts in a millisecond (counting for 200 ms, the host idle).
  await assertRejectsWith(() => plugin.callVoid("count", [], { timeoutMs: 200 }), TimeoutError);
  const perMs = new DataView((await plugin.readMemory(0, 4)).buffer).getUint32(0, true) / 200;
  for (let tries = 0; tries < 5; tries++) {
    await plugin.writeMemory(0, new Uint8Array(4));
    servedAt = NaN;
    holdAfter = 1_500;
    const start = performance.now();
    const calling = plugin.callVoid("hostFirst", [], { timeoutMs: 1_000 });
    hold(1_100); // busy past the deadline: the host call is served late
    await assertRejectsWith(() => calling, TimeoutError);
    holdAfter = 0;
    if (!(servedAt - start >= 1_000)) continue; // served before the host was busy: not this case
    const ranMs = new DataView((await plugin.readMemory(0, 4)).buffer).getUint32(0, true) / perMs;
    // About the grace (100 ms); a whole timeout (1 s) before.
    assert.ok(ranMs < 500, `the guest ran ${ranMs.toFixed(0)} ms after the answer`);
    return;
  }
  assert.fail("the host served the host call before it was busy, every time");
});

/**
 * Hostile bulk instructions: `memory.fill` and the like do work in
 * proportion to their length operand, so one instruction can run for
 * milliseconds. A loop of them still ends at the deadline, with fuel metering
 * on or off, in both isolations; and each pays fuel for its length, the same
 * in both.
 */
import assert from "node:assert/strict";
import {
  Capability,
  FuelExhaustedError,
  InstantiationError,
  Linker,
  TimeoutError,
} from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";

/** `fills(n)` fills all 16 MiB of memory `n` times; `fill(n)` fills `n` bytes once. */
const FILL_WAT = `(module
  (memory (export "memory") 256 256)
  (table 10000 funcref)
  (func (export "fills") (param $n i32)
    (loop $l
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 16777216))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "fill") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 1) (local.get $n)))
  (func (export "table_fill") (param $n i32)
    (table.fill (i32.const 0) (ref.null func) (local.get $n)))
  (func (export "ok") (result i32) i32.const 1))`;

const LIMIT_MS = 200;
/** How far past its limit a call may end (generous: the machines running tests share cores). */
const MARGIN_MS = 400;

testEachIsolation("Hostile: a loop of 16 MiB fills ends at its deadline", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  for (const fuelMetering of [false, true]) {
    await t.step(`with fuel metering ${fuelMetering ? "on" : "off"}`, async () => {
      await using loaded = await loadPlugin(FILL_WAT, {
        resourceLimits: { maxFuel: null, maxExecutionTimeMs: LIMIT_MS },
      }, { execution: { fuelMetering } });
      const { plugin } = loaded;
      for (let i = 0; i < 2; i++) {
        const start = performance.now();
        await within(() =>
          assertRejectsWith(() => plugin.callVoid("fills", [1_000_000]), TimeoutError, {
            kind: "timeout",
            timeoutMs: LIMIT_MS,
          })
        );
        const elapsed = performance.now() - start;
        assert.ok(elapsed < LIMIT_MS + MARGIN_MS, `ended after ${elapsed.toFixed(0)} ms`);
        assert.equal(await plugin.callI32("ok"), 1);
      }
    });
  }
});

testEachIsolation("Hostile: bulk instructions pay fuel for their length", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await t.step("one 16 MiB fill exhausts a budget of 100 000 units", async () => {
    await using loaded = await loadPlugin(FILL_WAT, { resourceLimits: { maxFuel: 100_000 } });
    const { plugin } = loaded;
    await within(() =>
      assertRejectsWith(() => plugin.callVoid("fill", [16 * 1024 * 1024]), FuelExhaustedError, {
        kind: "fuel_exhausted",
        fuelLimit: 100_000,
      })
    );
    assert.equal(await plugin.callI32("ok"), 1);
  });

  await t.step("a fill costs a unit per 64 bytes, a table fill a unit per element", async () => {
    await using loaded = await loadPlugin(FILL_WAT);
    const { plugin } = loaded;
    const cost = async (fn: string, n: number): Promise<number> => {
      const before = (await plugin.metrics()).fuelConsumed;
      await plugin.callVoid(fn, [n]);
      return (await plugin.metrics()).fuelConsumed - before;
    };
    // local.get/i32.const, then the instruction and its length.
    assert.equal(await cost("fill", 64 * 1000), 4 + 1000);
    assert.equal(await cost("fill", 63), 4);
    assert.equal(await cost("table_fill", 5000), 4 + 5000);
  });
});

/** `fill()` fills 512 MiB of fresh memory in one instruction; `bump()` counts its calls. */
const ONE_FILL_WAT = `(module
  (memory 8192 8192)
  (global $calls (mut i32) (i32.const 0))
  (func (export "fill") (memory.fill (i32.const 0) (i32.const 1) (i32.const 536870912)))
  (func (export "bump") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls)))`;

testEachIsolation("Hostile: one fill of 512 MiB ends at its deadline, not after it", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // Checked only before it, one instruction ran whole: inline the call succeeded after 0.4-6 s
  // (fresh pages cost most), and a worker was terminated, its plugin's state lost.
  await using loaded = await loadPlugin(ONE_FILL_WAT, {
    resourceLimits: { maxMemoryPages: 8192, maxExecutionTimeMs: 50 },
  });
  const { plugin } = loaded;
  assert.equal(await plugin.callI32("bump"), 1);
  await within(() => assertRejectsWith(() => plugin.callVoid("fill"), TimeoutError));
  assert.equal(await plugin.callI32("bump"), 2, "the plugin's state was kept");
});

testEachIsolation("Hostile: one table.fill of 10 million elements ends at its deadline", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // Checked only before it, it ran whole: 0.1 s past a 20 ms deadline, and the call succeeded.
  await using loaded = await loadPlugin(
    `(module (table 10000000 10000000 externref)
      (func (export "fill") (table.fill (i32.const 0) (ref.null extern) (i32.const 10000000))))`,
    { resourceLimits: { maxTableElements: 10_000_000, maxExecutionTimeMs: 20 } },
  );
  await within(() => assertRejectsWith(() => loaded.plugin.callVoid("fill"), TimeoutError));
});

testEachIsolation("Hostile: a call that ends after its deadline is a TimeoutError in both", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // One table.grow of 10 million elements runs 0.1 s, past a 20 ms deadline, with no check
  // after it: inline the call succeeded, a worker's host said TimeoutError.
  await using loaded = await loadPlugin(
    `(module (table 1 10000000 externref)
      (func (export "grow") (result i32) (table.grow (ref.null extern) (i32.const 9999999))))`,
    { resourceLimits: { maxTableElements: 10_000_000, maxExecutionTimeMs: 20 } },
  );
  await within(() => assertRejectsWith(() => loaded.plugin.callI32("grow"), TimeoutError));
});

/** Each export runs one 10-million-element `table.grow` (0.1 s), then fails its own way. */
const LATE_FAILURES_WAT = `(module
  (import "env" "host_set_error" (func $err (param i32 i32)))
  (memory (export "memory") 1) (table 1 10000000 externref)
  (data (i32.const 100) "boom")
  (func $grow (drop (table.grow (ref.null extern) (i32.const 9999999))))
  (func (export "init") (call $grow))
  (func (export "trap") (call $grow) unreachable)
  (func (export "guest_error") (call $grow) (call $err (i32.const 100) (i32.const 4))))`;

testEachIsolation(
  "Hostile: a call or initializer that fails after its deadline is a TimeoutError",
  {
    permissions: "none",
  },
  async (t, { loadPlugin }) => {
    // Inline they ended with their own error (or, for init, succeeded): a worker's host said
    // TimeoutError.
    const limits = { maxTableElements: 10_000_000, maxExecutionTimeMs: 20 };
    for (const call of ["trap", "guest_error", "init"] as const) {
      await t.step(call, async () => {
        await using loaded = await loadPlugin(LATE_FAILURES_WAT, { resourceLimits: limits });
        const { plugin } = loaded;
        const run = call === "init" ? () => plugin.initialize() : () => plugin.callVoid(call);
        await within(() => assertRejectsWith(run, TimeoutError));
      });
    }
  },
);

testEachIsolation("Hostile: a start function that ends after its deadline fails the load", {
  permissions: "none",
}, async (t, { createRuntime, loadPlugin }) => {
  await using runtime = createRuntime();
  const limits = { maxTableElements: 10_000_000, maxExecutionTimeMs: 20 };
  for (const end of ["", "unreachable"]) {
    await t.step(end === "" ? "returning" : "trapping", async () => {
      const error = await within(() =>
        assertRejectsWith(
          () =>
            runtime.createPluginFromWat(
              `(module (table 1 10000000 externref)
                (func $s (drop (table.grow (ref.null extern) (i32.const 9999999))) ${end})
                (start $s))`,
              { resourceLimits: limits },
            ),
          InstantiationError,
        )
      );
      assert.ok(error.cause instanceof TimeoutError, String(error.cause));
    });
  }
  await t.step("an init that traps late", async () => {
    // It ended with its own trap inline, a TimeoutError in a worker.
    await using loaded = await loadPlugin(
      `(module (table 1 10000000 externref)
        (func (export "init") (drop (table.grow (ref.null extern) (i32.const 9999999))) unreachable))`,
      { resourceLimits: limits },
    );
    await within(() => assertRejectsWith(() => loaded.plugin.initialize(), TimeoutError));
    assert.equal(loaded.plugin.state, "error");
  });
  await t.step("a command whose start function ends late: one TimeoutError", async () => {
    // Inline it came wrapped twice: TimeoutError(InstantiationError(TimeoutError)).
    await using loaded = await loadPlugin(
      `(module (memory (export "memory") 1) (table 1 10000000 externref)
        (func $s (drop (table.grow (ref.null extern) (i32.const 9999999)))) (start $s)
        (func (export "_start")))`,
      { resourceLimits: { ...limits, maxExecutionTimeMs: 5_000 } },
    );
    const error = await within(() =>
      assertRejectsWith(() => loaded.plugin.run({ timeoutMs: 20 }), TimeoutError)
    );
    assert.ok(!(error.cause instanceof InstantiationError), String(error.cause));
  });
});

testEachIsolation("Hostile: callJson's parsing on the host is not its call's time", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // 24 MB of JSON take the host longer to parse (≈ 0.5 s) than the call's 150 ms; the call itself
  // (a copy out) takes a few: inline the parse was counted, and the call said TimeoutError.
  const size = 24_000_000;
  await using loaded = await loadPlugin(
    `(module (memory (export "memory") 400)
      (func (export "alloc") (param i32) (result i32) (i32.const 16))
      (func (export "get") (param i32 i32) (result i64)
        (i64.or (i64.shl (i64.const 65536) (i64.const 32)) (i64.const ${size}))))`,
    { resourceLimits: { maxMemoryPages: 400, maxExecutionTimeMs: 150 } },
  );
  const item = '{"a":[1,2]},';
  const json = `[${item.repeat(Math.floor((size - 10) / item.length)).slice(0, -1)}]`;
  await loaded.plugin.writeMemory(65536, new TextEncoder().encode(json.padEnd(size, " ")));
  const items = await loaded.plugin.callJson("get", 1) as unknown[];
  assert.equal(items.length, Math.floor((size - 10) / item.length));
  assert.equal((await loaded.plugin.metrics()).failureCount, 0);
});

testEachIsolation(
  "Hostile: run() whose start function its own host function aborts ends with the reason",
  {
    permissions: "none",
  },
  async (_t, { createRuntime }) => {
    // Inline it was an InstantiationError wrapping a HostFunctionError of the reason; a worker,
    // and an abort from `_start`, end with the reason itself.
    await using runtime = createRuntime();
    const controller = new AbortController();
    const reason = new Error("caller aborted");
    // Armed for the run only: the plugin's own instance runs the start function as it loads.
    let armed = false;
    const linker = new Linker().funcWrap("env", "act", () => {
      if (armed) controller.abort(reason);
    });
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "command",
        `(module (import "env" "act" (func $act)) (memory (export "memory") 1)
        (func $s (call $act)) (start $s) (func (export "_start")))`,
      ),
      { capabilities: [Capability.CallHostFunction, Capability.Wasi] },
      linker,
    );
    armed = true;
    await within(() =>
      assert.rejects(plugin.run({ signal: controller.signal }), (err) => err === reason)
    );
  },
);

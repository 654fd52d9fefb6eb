/**
 * Hostile guests that reach for what they were not given: every gated host
 * function without its capability, imports nobody provides, and a flood of
 * `host_log` calls. Each ends in its documented error and the same plugin
 * answers the next call.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  ImportNotFoundError,
  InstantiationError,
  type PluginLogEntry,
} from "../../mod.ts";
import { LOG_BURST } from "../../src/host/_env.ts";
import { assertRejectsWith, delay, testEachIsolation } from "../_helpers.ts";
import { HOST_FUNCTIONS, type HostFunctionName, hostFunctionsWat } from "../fixtures/wat.ts";

const OK = `(func (export "ok") (result i32) i32.const 1)`;

/** The capability each gated built-in needs, and arguments that would otherwise be valid. */
const GATED: readonly [HostFunctionName, Capability, number[]][] = [
  ["host_get_config", Capability.ReadConfig, [0, 1, 64, 16]],
  ["host_set_config", Capability.WriteConfig, [0, 1, 0, 1]],
  ["host_storage_get", Capability.ReadState, [0, 1, 64, 16]],
  ["host_storage_set", Capability.WriteState, [0, 1, 0, 1]],
  ["host_send_message", Capability.SendMessage, [0, 1, 0, 1]],
  ["host_call_tool", Capability.CallTool, [0, 1, 0, 2, 64, 16]],
  ["host_http_fetch", Capability.NetworkAccess, [0, 2, 64, 16]],
  ["host_now_ms", Capability.Timer, []],
  ["host_sleep_ms", Capability.Timer, [60_000]],
  ["host_random_bytes", Capability.Random, [0, 16]],
];

/** Every built-in, re-exported, plus `ok`. */
function allHostFunctionsWat(): string {
  const names = Object.keys(HOST_FUNCTIONS) as HostFunctionName[];
  return hostFunctionsWat(...names).replace(/\)$/, `\n  ${OK})`);
}

testEachIsolation("Hostile: gated host functions without their capability", {
  permissions: "none",
}, async (t, { createRuntime, loadPlugin }) => {
  await t.step("with no capabilities, every gated call is denied", async () => {
    await using loaded = await loadPlugin(allHostFunctionsWat());
    const { plugin } = loaded;
    for (const [fn, capability, args] of GATED) {
      await assertRejectsWith(() => plugin.call(fn, args), CapabilityDeniedError, {
        kind: "capability_denied",
        capability,
      });
      assert.equal(await plugin.callI32("ok"), 1);
    }
    const metrics = await plugin.metrics();
    assert.equal(metrics.failureCount, GATED.length);
  });

  await t.step("with every other capability, each gated call is still denied", async () => {
    for (const [fn, capability, args] of GATED) {
      const others = Object.values(Capability).filter((c) => c !== capability);
      await using loaded = await loadPlugin(allHostFunctionsWat(), { capabilities: others });
      await assertRejectsWith(() => loaded.plugin.call(fn, args), CapabilityDeniedError, {
        capability,
      });
      assert.equal(await loaded.plugin.callI32("ok"), 1);
    }
  });

  await t.step("a denied call in a loop is denied on the first attempt", async () => {
    await using loaded = await loadPlugin(
      `(module
        (import "env" "host_random_bytes" (func $rnd (param i32 i32) (result i32)))
        (memory 1)
        (func (export "hammer") (loop $l (drop (call $rnd (i32.const 0) (i32.const 8))) (br $l)))
        ${OK})`,
      { resourceLimits: { maxExecutionTimeMs: 2_000 } },
    );
    await assertRejectsWith(() => loaded.plugin.callVoid("hammer"), CapabilityDeniedError, {
      capability: Capability.Random,
    });
    assert.equal(await loaded.plugin.callI32("ok"), 1);
  });

  await t.step("a denied call from the start function fails the load", async () => {
    await using runtime = createRuntime();
    const error = await assertRejectsWith(
      () =>
        runtime.createPluginFromWat(
          `(module
            (import "env" "host_now_ms" (func $now (result i64)))
            (func $start (drop (call $now))) (start $start) ${OK})`,
        ),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.ok(error.cause instanceof CapabilityDeniedError, `cause: ${error.cause}`);
    assert.equal(runtime.pluginCount, 0);
  });
});

testEachIsolation("Hostile: a plugin importing something unknown fails to load", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using survivor = await runtime.createPluginFromWat(`(module ${OK})`);
  const cases: readonly [string, string, string, string][] = [
    [
      "an unknown env function",
      `(import "env" "host_exec" (func (param i32 i32)))`,
      "env",
      "host_exec",
    ],
    [
      "a built-in with the wrong module",
      `(import "wasi_snapshot_preview1" "host_log" (func (param i32 i32 i32)))`,
      "wasi_snapshot_preview1",
      "host_log",
    ],
    [
      "a Deno-looking module",
      `(import "Deno" "readFile" (func (param i32 i32) (result i32)))`,
      "Deno",
      "readFile",
    ],
    // A plain memory import is made by the runtime (memory_table_imports_test.ts): a shared one is not.
    ["a shared host memory", `(import "env" "memory" (memory 1 1 shared))`, "env", "memory"],
    ["a 64-bit host table", `(import "env" "table" (table i64 1 funcref))`, "env", "table"],
    ["a host global", `(import "env" "secret" (global i32))`, "env", "secret"],
  ];
  for (const [what, decl, module, importName] of cases) {
    await t.step(`${what}: ImportNotFoundError`, async () => {
      await assertRejectsWith(
        () => runtime.createPluginFromWat(`(module ${decl} ${OK})`),
        ImportNotFoundError,
        { kind: "import_not_found", module, importName },
      );
      assert.equal(runtime.pluginCount, 1);
      assert.equal(await survivor.callI32("ok"), 1);
    });
  }
});

testEachIsolation("Hostile: a host_log flood finishes without blocking the host", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  const entries: PluginLogEntry[] = [];
  await using loaded = await loadPlugin(
    `(module
      (import "env" "host_log" (func $log (param i32 i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "spam")
      (func (export "flood") (param $n i32)
        (block $done
          (loop $l
            (br_if $done (i32.eqz (local.get $n)))
            (call $log (i32.const 1) (i32.const 0) (i32.const 4))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $l))))
      ${OK})`,
    { onLog: (entry) => void entries.push(entry) },
  );
  const { plugin } = loaded;

  await t.step("10 000 log calls in one call settle within 2 s, rate-limited", async () => {
    const start = performance.now();
    await plugin.callVoid("flood", [10_000]);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 2_000);
    assert.equal(await plugin.callI32("ok"), 1);
    // A burst gets through, then about one record per millisecond.
    const admitted = entries.filter((entry) => entry.message === "spam").length;
    assert.ok(
      admitted >= LOG_BURST && admitted <= LOG_BURST + 2 * elapsed + 20,
      `${admitted} records in ${elapsed} ms`,
    );
    assert.equal(entries[0]?.message, "spam");
    // What did not get through is counted by the time the call returns.
    const metrics = await plugin.metrics();
    assert.equal(metrics.droppedLogRecords, 10_000 - admitted);
    // The last notice came at the end of the call, with what was dropped since the one before.
    assert.match(entries.at(-1)?.message ?? "", /^\d+ log records dropped: over the rate limit$/);
  });

  await t.step("every record is either delivered or counted as dropped", async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    await plugin.callVoid("flood", [1]);
    const delivered = entries.filter((entry) => entry.message === "spam").length;
    const notices = entries.filter((entry) => entry.level === "warning");
    const dropped = notices
      .map((entry) =>
        Number(/^(\d+) log records dropped: over the rate limit$/.exec(entry.message)?.[1])
      )
      .reduce((sum, count) => sum + count, 0);
    assert.ok(notices.length > 0);
    // The host's notices say so (a guest's record of the same text would not).
    for (const notice of notices) {
      assert.equal(notice.droppedRecords, Number(/^(\d+) /.exec(notice.message)?.[1]));
    }
    assert.equal(delivered + dropped, 10_001);
    assert.equal((await plugin.metrics()).droppedLogRecords, dropped);
    assert.equal(entries.at(-1)?.message, "spam");
  });
});

testEachIsolation("Hostile: host_log's budget is the plugin's, across parks and runs", {
  permissions: "none",
}, async (t, kit) => {
  // In a worker, an idle plugin is parked after 20 ms and its next call starts a new worker.
  await using runtime = kit.createRuntime({ idleTimeoutMs: 20 });
  const entries: PluginLogEntry[] = [];
  const plugin = await runtime.createPluginFromWat(
    `(module
      (import "env" "host_log" (func $log (param i32 i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "spam")
      (func $flood (export "flood") (param $n i32)
        (loop $l
          (call $log (i32.const 1) (i32.const 0) (i32.const 4))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (func (export "_start") (call $flood (i32.const 2000))))`,
    { capabilities: [Capability.Wasi], onLog: (entry) => void entries.push(entry) },
  );
  const spam = (): number => entries.filter((entry) => entry.message === "spam").length;
  await plugin.callVoid("flood", [2_000]); // the burst is spent
  // The budget refills from when the last flood drained it (on a loaded machine, well before
  // the next step begins).
  let drained = performance.now();

  for (
    const [name, flood] of [
      ["a park", () => plugin.callVoid("flood", [2_000])],
      ["a run", () => plugin.run()],
    ] as const
  ) {
    await t.step(`${name} does not give the burst back`, async () => {
      const before = spam();
      await delay(150);
      await flood();
      // About one record a millisecond since the budget was drained, no more.
      const elapsed = performance.now() - drained;
      drained = performance.now();
      const admitted = spam() - before;
      assert.ok(admitted <= elapsed + 20, `${admitted} records admitted in ${elapsed} ms`);
    });
  }
});

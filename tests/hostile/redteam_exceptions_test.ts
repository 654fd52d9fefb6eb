/**
 * Red team: exception handling across the host boundary. A guest catches
 * (`try_table` `catch_all`/`catch_all_ref` + `throw_ref`, legacy `try`
 * `catch_all`/`rethrow`) what host functions throw, what a cancelled async
 * host call rejects with, and replays caught exceptions in later calls. The
 * call must still fail with the host's typed error (the ErrorSlot), a
 * timeout or abort must not be swallowed, and the plugin answers afterwards.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  HostFunctionError,
  ImportNotFoundError,
  TimeoutError,
  TrapError,
  WasmError,
} from "../../mod.ts";
import { assertRejectsWith } from "../_helpers.ts";
import { within } from "./_within.ts";
import { describe, outcome, redteamTest } from "./_redteam.ts";

const TOOL =
  `(import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))`;

/** Every way to catch what `$boom` (a throwing linker function) throws. */
const CATCHING_WAT = `(module
  (import "env" "boom" (func $boom))
  (import "env" "host_get_config" (func $cfg (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "catch_all") (result i32)
    (block $h
      (try_table (catch_all $h) (call $boom))
      (return (i32.const 1)))
    (i32.const 42))
  (func (export "catch_all_ref_rethrow_caught") (result i32) (local $e exnref)
    (block $outer
      (block $h (result exnref)
        (try_table (catch_all_ref $h) (call $boom))
        (return (i32.const 1)))
      (local.set $e)
      ;; rethrow, then catch the rethrown one too
      (try_table (catch_all $outer) (throw_ref (local.get $e)))
      (return (i32.const 2)))
    (i32.const 42))
  (func (export "catch_denied") (result i32)
    (block $h
      (try_table (catch_all $h)
        (drop (call $cfg (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))))
      (return (i32.const 1)))
    (i32.const 42))
  (func (export "catch_many") (result i32) (local $i i32)
    (loop $l
      (block $h
        (try_table (catch_all $h) (call $boom)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (i32.const 42))
  (func (export "ok") (result i32) (i32.const 7)))`;

const LEGACY_WAT = `(module
  (import "env" "boom" (func $boom))
  (func (export "catch_all") (result i32)
    (try (result i32) (do (call $boom) (i32.const 1)) (catch_all (i32.const 42))))
  (func (export "rethrow_then_catch") (result i32)
    (try (result i32)
      (do
        (try (do (call $boom)) (catch_all (rethrow 0)))
        (i32.const 1))
      (catch_all (i32.const 42))))
  (func (export "ok") (result i32) (i32.const 7)))`;

redteamTest(
  "Red team: a guest that catches a host function's exception still fails the call",
  {},
  async (t, { createRuntime }) => {
    for (
      const [label, wat, fns] of [
        ["try_table", CATCHING_WAT, ["catch_all", "catch_all_ref_rethrow_caught", "catch_many"]],
        ["legacy try", LEGACY_WAT, ["catch_all", "rethrow_then_catch"]],
      ] as const
    ) {
      await t.step(label, async () => {
        await using runtime = createRuntime({ resourceLimits: { maxExecutionTimeMs: 1_000 } });
        const linker = runtime.createLinker();
        let calls = 0;
        linker.funcWrap("env", "boom", () => {
          calls++;
          throw new Error("host boom");
        });
        const plugin = await runtime.createPluginWithLinker(
          await runtime.compileWat("catching", wat),
          { capabilities: [Capability.CallHostFunction] },
          linker,
        );
        for (const fn of fns) {
          const error = await within(() =>
            assertRejectsWith(() => plugin.callI32(fn), HostFunctionError, {
              kind: "host_function",
              functionName: "boom",
            })
          );
          assert.equal((error.cause as Error).message, "host boom");
          assert.equal(await plugin.callI32("ok"), 7);
        }
        assert.ok(calls >= fns.length);
      });
    }

    await t.step("a gated built-in without its capability", async () => {
      await using runtime = createRuntime();
      const linker = runtime.createLinker().funcWrap("env", "boom", () => {});
      const plugin = await runtime.createPluginWithLinker(
        await runtime.compileWat("catching", CATCHING_WAT),
        { capabilities: [Capability.CallHostFunction] },
        linker,
      );
      await assertRejectsWith(() => plugin.callI32("catch_denied"), CapabilityDeniedError, {
        capability: Capability.ReadConfig,
      });
      assert.equal(await plugin.callI32("ok"), 7);
    });
  },
);

redteamTest(
  "Red team: a guest that catches a stuck linker function's cancellation still times out",
  {
    only: ["worker"],
  },
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime({ resourceLimits: { maxExecutionTimeMs: 200 } });
    const linker = runtime.createLinker().funcWrap("env", "hang", () => new Promise(() => {}));
    const plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "hang",
        `(module (import "env" "hang" (func $hang))
        (func (export "swallow") (result i32)
          (block $h (try_table (catch_all $h) (call $hang)) (return (i32.const 1)))
          (i32.const 42))
        (func (export "ok") (result i32) (i32.const 7)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await within(() => assertRejectsWith(() => plugin.callI32("swallow"), TimeoutError));
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

const SWALLOW_TOOL_WAT = `(module
  ${TOOL}
  (memory (export "memory") 1)
  (data (i32.const 0) "never")
  (data (i32.const 16) "{}")
  (func (export "swallow") (result i32)
    (block $h
      (try_table (catch_all $h)
        (drop (call $tool (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 2) (i32.const 64) (i32.const 16))))
      (return (i32.const 1)))
    (i32.const 42))
  (func (export "ok") (result i32) (i32.const 7)))`;

// BREAK: the cancellation of an async built-in (host_call_tool, host_http_fetch) rejects the
// guest's suspended call through `Promise.race` in `PluginInstance.#builtin` (src/backend/_instance.ts),
// outside the ErrorSlot; a guest that catches it returns normally and the call *succeeds* after
// its deadline (42 after 200 ms). In a worker, `#converse` (src/worker/_worker_backend.ts) returns
// any non-Failure reply even while `stopping` is set. Fix: record the cancellation reason (slot /
// a `#cancelled` field) and throw it after the guest returns; the host must throw
// `stopping.reason` for a Result too.
redteamTest(
  "Red team: a guest cannot swallow the timeout of an async tool call",
  {},
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime({ resourceLimits: { maxExecutionTimeMs: 200 } });
    runtime.registerTool("never", () => new Promise(() => {}));
    const plugin = await runtime.createPlugin(
      await runtime.compileWat("swallow", SWALLOW_TOOL_WAT),
      {
        capabilities: [Capability.CallTool],
      },
    );
    const o = await outcome(plugin.callI32("swallow"));
    assert.ok(!o.ok && o.error instanceof TimeoutError, describe(o));
    assert.ok(o.ms < 1_500, describe(o));
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

// BREAK: same root cause as above: an aborted call resolves with the guest's value (42).
redteamTest(
  "Red team: a guest cannot swallow the abort of an async tool call",
  {},
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime({ resourceLimits: { maxExecutionTimeMs: 5_000 } });
    runtime.registerTool("never", () => new Promise(() => {}));
    const plugin = await runtime.createPlugin(
      await runtime.compileWat("swallow", SWALLOW_TOOL_WAT),
      {
        capabilities: [Capability.CallTool],
      },
    );
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    setTimeout(() => controller.abort(reason), 50);
    const o = await outcome(plugin.callI32("swallow", [], { signal: controller.signal }));
    assert.ok(!o.ok && o.error === reason, describe(o));
    assert.ok(o.ms < 1_500, describe(o));
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

const STASH_WAT = `(module
  (import "env" "boom" (func $boom))
  (import "env" "host_get_config" (func $cfg (param i32 i32 i32 i32) (result i32)))
  (global $ex (mut exnref) (ref.null exn))
  (table $t 4 exnref)
  (memory (export "memory") 1)
  (func (export "stash_boom") (result i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (call $boom))
      (return (i32.const 1)))
    (global.set $ex)
    (i32.const 42))
  (func (export "stash_denied") (result i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h)
        (drop (call $cfg (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))
      (return (i32.const 1)))
    (global.set $ex)
    (i32.const 42))
  (func (export "to_table") (result i32)
    (table.set $t (i32.const 3) (global.get $ex))
    (table.grow $t (global.get $ex) (i32.const 1000000)))
  (func (export "replay") (result i32)
    (throw_ref (global.get $ex)))
  (func (export "replay_from_table") (result i32)
    (throw_ref (table.get $t (i32.const 3))))
  (func (export "ok") (result i32) (i32.const 7)))`;

redteamTest(
  "Red team: exnrefs of host errors kept in globals and tables",
  {},
  async (t, { createRuntime }) => {
    await using runtime = createRuntime({ resourceLimits: { maxTableElements: 100 } });
    const linker = runtime.createLinker().funcWrap("env", "boom", () => {
      throw new Error("host boom");
    });
    const plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat("stash", STASH_WAT),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );

    await t.step("the catching call still fails, a table of exnrefs is bounded", async () => {
      await assertRejectsWith(() => plugin.callI32("stash_boom"), HostFunctionError);
      // table.grow beyond maxTableElements returns -1, as the spec says.
      assert.equal(await plugin.callI32("to_table"), -1);
      assert.equal(await plugin.callI32("ok"), 7);
    });

    await t.step("a replayed exception fails the call with a typed error", async () => {
      const o = await outcome(plugin.callI32("replay_from_table"));
      assert.ok(!o.ok && o.error instanceof WasmError, describe(o));
      assert.equal(await plugin.callI32("ok"), 7);
    });
  },
);

// BREAK: `classifyCallError` (src/backend/_trap.ts) passes any `WasmError` that comes out of wasm through
// as it is, so a guest that stashed a caught exception (catch_all_ref) rethrows it in a later
// call: that call fails with a `CapabilityDeniedError` (or `HostFunctionError`, or a
// `TimeoutError` caught from a cancellation) that nothing in it raised — the host is told a
// capability was denied, or a limit hit, that was not. Fix (src/backend/_instance.ts `#failure`): an error
// that is not this call's (not in the slot, not this call's cancellation reason) is a
// `TrapError("uncaught wasm exception …")`; e.g. keep a WeakSet of errors already reported.
redteamTest(
  "Red team: a guest cannot replay an earlier call's host error",
  {},
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime();
    const linker = runtime.createLinker().funcWrap("env", "boom", () => {
      throw new Error("host boom");
    });
    const plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat("stash", STASH_WAT),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    const first = await assertRejectsWith(
      () => plugin.callI32("stash_denied"),
      CapabilityDeniedError,
    );
    const replayed = await outcome(plugin.callI32("replay"));
    assert.ok(!replayed.ok, describe(replayed));
    assert.notEqual(replayed.error, first, "the replay reported the first call's error again");
    assert.ok(replayed.error instanceof TrapError, describe(replayed));
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

redteamTest(
  "Red team: an uncaught guest exception and non-function imports",
  {},
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    await t.step("a guest tag thrown out of the call is a TrapError", async () => {
      const plugin = await runtime.createPluginFromWat(`(module
      (tag $e (export "e") (param i32))
      (func (export "throw") (result i32) (throw $e (i32.const 5)))
      (func (export "ok") (result i32) (i32.const 7)))`);
      await assertRejectsWith(() => plugin.callI32("throw"), TrapError, { kind: "trap" });
      assert.equal(await plugin.callI32("ok"), 7);
      await plugin.stop();
    });
    for (
      const [what, decl] of [
        ["tag", `(tag (param i32))`],
        ["64-bit table", `(table i64 1 funcref)`],
        ["global", `(global (mut i32))`],
        // A plain memory import is made by the runtime (memory_table_imports_test.ts); these are not.
        ["shared memory", `(memory 1 1 shared)`],
        ["64-bit memory", `(memory i64 1)`],
      ]
    ) {
      await t.step(`importing a host ${what} fails the load with ImportNotFoundError`, async () => {
        await assertRejectsWith(
          () => runtime.createPluginFromWat(`(module (import "env" "x" ${decl}))`),
          ImportNotFoundError,
          { module: "env", importName: "x" },
        );
        assert.equal(runtime.pluginCount, 0);
      });
    }
  },
);

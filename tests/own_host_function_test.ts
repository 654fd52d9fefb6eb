/**
 * What a plugin's own host functions (its tools, its linker functions) may
 * do to it while its call waits for them, in both isolations: nothing that
 * would wait for that call. A call back into the plugin, a `stop()` or an
 * unload is refused at once; `stop({ abort: true })` and closing the
 * runtime end the call instead.
 */

import assert from "node:assert/strict";
import { Capability, PluginManager, PluginStateError, type WasmPlugin } from "../mod.ts";
import { testEachIsolation } from "./_helpers.ts";
import { toolCallWat } from "./fixtures/wat.ts";
import { READ_WORKERS } from "./worker/_worker_helpers.ts";

/** `call()` calls the tool `inner` (an async host function, suspending the guest in both isolations). */
const TOOL_WAT = toolCallWat("inner");
const PERMISSIONS = { permissions: { read: READ_WORKERS } };

testEachIsolation(
  "A plugin's own tool may not wait for the plugin's call",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 10_000 } });
    await using manager = new PluginManager(runtime);
    let inner: () => Promise<unknown> = () => Promise.resolve(0);
    runtime.registerTool("inner", () => inner());
    const handle = await manager.loadWat(TOOL_WAT, { capabilities: [Capability.CallTool] });
    const plugin = manager.get(handle) as WasmPlugin;

    /** Runs `call()` with `inner` as the tool; returns what the tool saw and the call's result. */
    async function fromTool(action: () => Promise<unknown>): Promise<unknown> {
      let seen: unknown = "nothing";
      inner = async () => {
        const started = performance.now();
        await action().then(() => seen = "done", (err) => seen = err);
        // At once: not after the call's deadline.
        assert.ok(performance.now() - started < 1_000);
        return 0;
      };
      // The tool's answer (0) took one byte.
      assert.equal(await plugin.callI32("call"), 1);
      return seen;
    }

    await t.step("stop() is refused at once: it would wait for itself", async () => {
      const seen = await fromTool(() => plugin.stop());
      assert.ok(seen instanceof PluginStateError, String(seen));
      assert.match(seen.message, /without \{ abort: true \} from one of its own host functions/);
      assert.equal(await plugin.callI32("ok"), 7);
    });

    await t.step("so is unloading it, which leaves it loaded", async () => {
      const seen = await fromTool(() => manager.unload(handle));
      assert.ok(seen instanceof PluginStateError, String(seen));
      assert.deepEqual(manager.listPlugins().map((h) => h.id), [handle.id]);
      assert.equal(manager.stats().activePlugins, 1);
      assert.equal(await plugin.callI32("ok"), 7);
    });

    await t.step("and so is a call to it", async () => {
      const seen = await fromTool(() => plugin.callI32("ok"));
      assert.ok(seen instanceof PluginStateError, String(seen));
    });

    await t.step("and initialize() and pause(), which wait for the call too", async () => {
      // Each waited behind the call, which waited for the tool: until the call's time limit.
      for (const action of [() => plugin.initialize(), () => plugin.pause()]) {
        const seen = await fromTool(action);
        assert.ok(seen instanceof PluginStateError, String(seen));
        assert.match(seen.message, /from one of its own host functions/);
      }
      assert.equal(plugin.state, "created");
    });

    await t.step("closing the runtime ends the call, and then closes", async () => {
      let closed: Promise<void> | undefined;
      inner = () => closed = runtime.close();
      await assert.rejects(plugin.callI32("call"), PluginStateError);
      await closed;
      assert.equal(plugin.state, "stopped");
      assert.equal(runtime.pluginCount, 0);
    });
  },
);

testEachIsolation(
  "A plugin's own linker function may not call the plugin",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    const own: { plugin?: WasmPlugin } = {};
    let refused: unknown;
    const linker = runtime.createLinker().funcWrap("env", "again", () => {
      // Not awaited (an inline linker function returns at once): the refusal comes as a rejection.
      own.plugin!.callI32("ok").then(() => refused = "it ran", (err) => refused = err);
      return 1;
    });
    const plugin = own.plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "again",
        `(module
        (import "env" "again" (func $again (result i32)))
        (func (export "run") (result i32) (call $again))
        (func (export "ok") (result i32) (i32.const 7)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );

    await t.step("it is refused, not queued behind the call", async () => {
      assert.equal(await plugin.callI32("run"), 1);
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(refused instanceof PluginStateError, String(refused));
      assert.equal((await plugin.metrics()).callCount, 1);
    });
  },
);

testEachIsolation(
  "A plugin's own tool may close its manager: that ends the call",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 10_000 } });
    const manager = new PluginManager(runtime);
    let closed: Promise<void> | undefined;
    runtime.registerTool("inner", () => closed = manager.close());
    const handle = await manager.loadWat(TOOL_WAT, { capabilities: [Capability.CallTool] });
    const plugin = manager.get(handle) as WasmPlugin;

    await t.step("the call ends, and the manager closes", async () => {
      await assert.rejects(plugin.callI32("call"), PluginStateError);
      await closed;
      assert.equal(plugin.state, "stopped");
      assert.deepEqual(manager.listPlugins(), []);
    });

    await t.step("closing it again answers once it is closed", async () => {
      await manager.close();
      assert.equal(manager.stats().totalUnloaded, 1);
    });
  },
);

testEachIsolation(
  "A linker function that stops its plugin with abort ends the call with the reason",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    const compiled = await runtime.compileWat(
      "abort_self",
      `(module
      (import "env" "cb" (func $cb (param i32) (result i32)))
      (func (export "run") (param i32) (result i32) (call $cb (local.get 0))))`,
    );
    await t.step("every time: never the guest's result, never a result of nothing", async () => {
      // In a worker the host once answered the guest's host call twice (the result, then the
      // stop), and then read its own second answer as the call's: it resolved with undefined.
      for (let i = 0; i < 40; i++) {
        const own: { plugin?: WasmPlugin } = {};
        const linker = runtime.createLinker().funcWrap("env", "cb", (x: number) => {
          void own.plugin!.stop({ abort: true });
          return x + 1;
        });
        const plugin = own.plugin = await runtime.createPluginWithLinker(compiled, {
          capabilities: [Capability.CallHostFunction],
        }, linker);
        await assert.rejects(plugin.callI32("run", [41]), PluginStateError);
        assert.equal(plugin.state, "stopped");
      }
    });
  },
);

testEachIsolation(
  "A tool that aborts its own call: the guest gets the reason, not the tool's answer",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    let abort = (): void => {};
    runtime.registerTool("inner", () => {
      abort();
      return 0;
    });
    // `call()` counts in `after` the calls that went on past the tool.
    await using plugin = await runtime.createPluginFromWat(
      `(module
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (global $after (mut i32) (i32.const 0))
      (data (i32.const 0) "inner{}")
      (func (export "call") (result i32)
        (drop (call $tool (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64)
          (i32.const 64)))
        (global.set $after (i32.add (global.get $after) (i32.const 1)))
        (global.get $after))
      (func (export "after") (result i32) (global.get $after)))`,
      { capabilities: [Capability.CallTool] },
    );
    await t.step("every time (in a worker, the answer once raced the abort)", async () => {
      for (let i = 0; i < 40; i++) {
        const controller = new AbortController();
        abort = () => controller.abort(new Error("enough"));
        await assert.rejects(plugin.callI32("call", [], { signal: controller.signal }), /enough/);
      }
      assert.equal(await plugin.callI32("after"), 0);
    });
  },
);

testEachIsolation(
  "A host function that stops its plugin with abort and then throws: the reason wins",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    const own: { plugin?: WasmPlugin } = {};
    const linker = runtime.createLinker().funcWrap("env", "cb", () => {
      void own.plugin!.stop({ abort: true });
      throw new Error("after the stop");
    });
    own.plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "stop_then_throw",
        `(module (import "env" "cb" (func $cb)) (func (export "run") (call $cb)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await t.step("the call ends with the stop's reason, in both isolations", async () => {
      await assert.rejects(own.plugin!.callVoid("run"), PluginStateError);
    });
  },
);

testEachIsolation(
  "closing the manager from a tool of a plugin it is unloading ends that call",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 10_000 } });
    const manager = new PluginManager(runtime);
    const started = Promise.withResolvers<void>();
    let closed: Promise<void> | undefined;
    runtime.registerTool("inner", async () => {
      started.resolve();
      await new Promise((resolve) => setTimeout(resolve, 20));
      closed = manager.close();
      await closed;
      return 0;
    });
    const handle = await manager.loadWat(TOOL_WAT, { capabilities: [Capability.CallTool] });
    await t.step("the unload and the close end at once, the call with the stop", async () => {
      const begun = performance.now();
      const call = manager.callI32(handle, "call");
      await started.promise;
      const unloading = manager.unload(handle);
      await assert.rejects(call, PluginStateError);
      await unloading;
      await closed;
      assert.ok(performance.now() - begun < 5_000, "not at the call's deadline");
      assert.deepEqual(manager.listPlugins(), []);
    });
  },
);

testEachIsolation(
  "A linker function that aborts its own call: the guest runs no further",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    let abort = (): void => {};
    let calls = 0;
    const linker = runtime.createLinker().funcWrap("env", "cb", () => {
      calls++;
      abort();
      return 1;
    });
    // `run()` calls `cb` twice, and counts in `after` the calls that went on past the first.
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "self_abort",
        `(module
        (import "env" "cb" (func $cb (result i32)))
        (global $after (mut i32) (i32.const 0))
        (func (export "run") (result i32)
          (drop (call $cb))
          (global.set $after (i32.add (global.get $after) (i32.const 1)))
          (call $cb))
        (func (export "after") (result i32) (global.get $after)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await t.step("it ends with the reason; no host function runs after the abort", async () => {
      for (let i = 0; i < 20; i++) {
        const controller = new AbortController();
        abort = () => controller.abort(new Error("enough"));
        await assert.rejects(plugin.callI32("run", [], { signal: controller.signal }), /enough/);
      }
      abort = () => {};
      assert.equal(await plugin.callI32("after"), 0);
      assert.equal(calls, 20);
    });
  },
);

testEachIsolation(
  "A guest that catches its own call's abort stops at its next check",
  PERMISSIONS,
  async (t, kit) => {
    // Fuel off: only the abort's interrupt can end the loop before the 10 s deadline.
    await using runtime = kit.createRuntime({
      execution: { fuelMetering: false },
      resourceLimits: { maxFuel: null, maxExecutionTimeMs: 10_000 },
    });
    let abort = (): void => {};
    const linker = runtime.createLinker().funcWrap("env", "cb", () => {
      abort();
      throw new Error("and then a throw");
    });
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "catch_and_loop",
        `(module
        (import "env" "cb" (func $cb))
        (func (export "run")
          (block $caught (try_table (catch_all $caught) (call $cb)))
          (loop $forever (br $forever))))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await t.step("whether the host function returned or threw", async () => {
      const controller = new AbortController();
      abort = () => controller.abort(new Error("enough"));
      const begun = performance.now();
      await assert.rejects(plugin.callVoid("run", [], { signal: controller.signal }), /enough/);
      assert.ok(performance.now() - begun < 5_000, `${performance.now() - begun} ms`);
    });
  },
);

testEachIsolation(
  "After its own call's abort, a guest that catches it runs no further (fuel on)",
  PERMISSIONS,
  async (t, kit) => {
    // With fuel, a worker's guest checks the host's stop only between fuel slices (64 Ki units):
    // a guest that caught the abort ran on for one, after a few earlier host calls.
    await using runtime = kit.createRuntime({ resourceLimits: { maxFuel: 1e9 } });
    let abort = (): void => {};
    const linker = runtime.createLinker()
      .funcWrap("env", "before", () => 0)
      .funcWrap("env", "cb", () => {
        abort();
        throw new Error("and then a throw");
      });
    for (const earlier of [0, 1, 2, 3, 4, 5]) {
      await t.step(`after ${earlier} other host calls`, async () => {
        await using plugin = await runtime.createPluginWithLinker(
          await runtime.compileWat(
            "catch_and_count",
            `(module
            (import "env" "before" (func $before (result i32)))
            (import "env" "cb" (func $cb))
            (global $spins (mut i32) (i32.const 0))
            (func (export "run")
              ${"(drop (call $before))".repeat(earlier)}
              (block $caught (try_table (catch_all $caught) (call $cb)) (return))
              (loop $l (global.set $spins (i32.add (global.get $spins) (i32.const 1))) (br $l)))
            (func (export "spins") (result i32) (global.get $spins)))`,
          ),
          { capabilities: [Capability.CallHostFunction] },
          linker,
        );
        const controller = new AbortController();
        abort = () => controller.abort(new Error("enough"));
        await assert.rejects(plugin.callVoid("run", [], { signal: controller.signal }), /enough/);
        assert.equal(await plugin.callI32("spins"), 0);
      });
    }
  },
);

testEachIsolation(
  "A plugin's own tool may not wait for the initialization it is part of",
  PERMISSIONS,
  async (t, kit) => {
    // The manager's initialize() joined the one in progress, which waited for the tool: in a
    // worker until the deadline, and the plugin ended in "error".
    const wat = `(module
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "inner{}")
      (func (export "init") (drop (call $tool
        (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64) (i32.const 64)))))`;
    for (const via of ["plugin", "manager"] as const) {
      await t.step(`${via}.initialize() is refused at once`, async () => {
        await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 5_000 } });
        await using manager = new PluginManager(runtime);
        let seen: unknown = "nothing";
        let action: () => Promise<unknown> = () => Promise.resolve();
        runtime.registerTool("inner", async () => {
          await action().then(() => seen = "done", (err) => seen = err);
          return 0;
        });
        const handle = await manager.loadWat(wat, { capabilities: [Capability.CallTool] });
        const plugin = manager.get(handle);
        action = via === "plugin" ? () => plugin.initialize() : () => manager.initialize(handle);
        const started = performance.now();
        await manager.initialize(handle);
        assert.ok(performance.now() - started < 2_000, "it waited for the deadline");
        assert.ok(seen instanceof PluginStateError, String(seen));
        assert.equal(plugin.state, "ready");
      });
    }
  },
);

testEachIsolation(
  "An abort that comes after the guest's call ended does not undo the call",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime();
    let controller = new AbortController();
    // The hook aborts the call from a microtask: after it returned, while the guest ends its call.
    const linker = runtime.createLinker().funcWrap("env", "hook", () => {
      const aborting = controller;
      queueMicrotask(() => aborting.abort(new Error("too late")));
    });
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "bump",
        `(module (import "env" "hook" (func $hook)) (global $n (mut i32) (i32.const 0))
          (func (export "bump") (result i32)
            (call $hook)
            (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (global.get $n))
          (func (export "count") (result i32) (global.get $n)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await t.step("a call that says it was aborted did not run to its end", async () => {
      let answered = 0;
      for (let i = 0; i < 30; i++) {
        controller = new AbortController();
        await plugin.callI32("bump", [], { signal: controller.signal }).then(
          () => answered++,
          (err) => assert.match(String(err), /too late/),
        );
        // A caller that retries an aborted call must not apply it twice.
        assert.equal(await plugin.callI32("count"), answered);
      }
    });
  },
);

import assert from "node:assert/strict";
import {
  Capability,
  InstantiationError,
  PluginManager,
  PluginStateError,
  UNLIMITED_LIMITS,
  type WasmPlugin,
  type WasmRuntime,
} from "../mod.ts";
import { assertRejectsWith, holdingTool, settlesWithin, testEachIsolation } from "./_helpers.ts";
import { CALLS_WAT, toolCallWat } from "./fixtures/wat.ts";

const PERMISSIONS: Deno.PermissionOptions = { read: true };

/**
 * A plugin whose export "call" waits on tool `name`, which answers once
 * released ("ok" answers 7 at once).
 */
async function pluginWithHeldTool(
  runtime: WasmRuntime,
  name: string,
): Promise<{ plugin: WasmPlugin; release: () => void }> {
  const { release } = holdingTool(runtime, name);
  const plugin = await runtime.createPluginFromWat(toolCallWat(name), {
    capabilities: [Capability.CallTool],
  });
  return { plugin, release };
}

testEachIsolation(
  "An unload or a close waiting for a call that never ends can be escalated with { abort: true }",
  { permissions: PERMISSIONS },
  async (t, { createRuntime }) => {
    // Before: the second unload was a PluginNotFoundError, unloadAll({ abort: true }) and
    // close() found nothing to abort, and the first unload waited for ever.
    await using runtime = createRuntime({ resourceLimits: UNLIMITED_LIMITS });
    holdingTool(runtime, "never"); // never released
    const load = (manager: PluginManager) =>
      manager.loadWat(toolCallWat("never"), { capabilities: [Capability.CallTool] });

    await t.step("unload(h, { abort: true }) ends the call an unload(h) waits for", async () => {
      await using manager = new PluginManager(runtime);
      const handle = await load(manager);
      const running = manager.callI32(handle, "call").catch((err) => err);
      const unloading = manager.unload(handle);
      assert.equal(await settlesWithin(unloading, 50), false);
      await manager.unload(handle, { abort: true });
      await unloading;
      const error = await running;
      assert.ok(error instanceof PluginStateError);
      assert.equal(error.state, "stopping");
      assert.equal(manager.stats().totalUnloaded, 1);
    });

    await t.step("unloadAll({ abort: true }) ends the unloads begun before it", async () => {
      await using manager = new PluginManager(runtime);
      const handle = await load(manager);
      const running = manager.callI32(handle, "call").catch((err) => err);
      const unloading = manager.unload(handle);
      await manager.unloadAll({ abort: true });
      assert.equal(await settlesWithin(unloading, 1000), true);
      assert.ok(await running instanceof PluginStateError);
    });

    await t.step("close({ abort: true }) ends what an earlier close() waits for", async () => {
      const manager = new PluginManager(runtime);
      const handle = await load(manager);
      const running = manager.callI32(handle, "call").catch((err) => err);
      const closing = manager.close();
      assert.equal(await settlesWithin(closing, 50), false);
      await manager.close({ abort: true });
      await closing;
      assert.ok(await running instanceof PluginStateError);
      assert.deepEqual(manager.listPlugins(), []);
    });

    await t.step("bad options are a TypeError, as a rejection", async () => {
      const manager = new PluginManager(runtime);
      await assertRejectsWith(() => manager.close({ abort: 1 } as never), TypeError);
      await manager.close();
    });
  },
);

testEachIsolation(
  "runtime.close({ abort: true }) ends the running calls",
  { permissions: PERMISSIONS },
  async (_t, { createRuntime }) => {
    const runtime = createRuntime({ resourceLimits: UNLIMITED_LIMITS });
    holdingTool(runtime, "never");
    const plugin = await runtime.createPluginFromWat(toolCallWat("never"), {
      capabilities: [Capability.CallTool],
    });
    const running = plugin.callI32("call").catch((err) => err);
    const closing = runtime.close();
    assert.equal(await settlesWithin(closing, 50), false);
    await runtime.close({ abort: true });
    await closing;
    assert.ok(await running instanceof PluginStateError);
    assert.equal(plugin.state, "stopped");
  },
);

testEachIsolation(
  "A load's id is taken from its start: a generated id never collides with one in flight",
  { permissions: PERMISSIONS },
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    await t.step("an explicit id and a generated one, loaded together", async () => {
      // The generated one was "plugin-1" too, and failed with a TypeError about an id it never asked for.
      await using manager = new PluginManager(runtime);
      const compiled = await runtime.compileWat("calls", CALLS_WAT);
      const [named, unnamed] = await Promise.all([
        manager.loadCompiled(compiled, { id: "plugin-1" }),
        manager.loadCompiled(compiled),
      ]);
      assert.equal(named.id, "plugin-1");
      assert.notEqual(unnamed.id, "plugin-1");
    });
    await t.step("a second load of an id in flight is refused at once", async () => {
      await using manager = new PluginManager(runtime);
      const compiled = await runtime.compileWat("calls", CALLS_WAT);
      const first = manager.loadCompiled(compiled, { id: "twin" });
      await assertRejectsWith(() => manager.loadCompiled(compiled, { id: "twin" }), TypeError, {
        message: 'Cannot load plugin "twin": a plugin with that id is being loaded',
      });
      assert.equal((await first).id, "twin");
    });
  },
);

testEachIsolation(
  "Calls made while a pause() waits for the running call are refused once it pauses",
  { permissions: PERMISSIONS },
  async (_t, { createRuntime }) => {
    // They waited in line behind the pause with no deadline, until a resume() that the
    // manager's anomaly action never makes.
    await using runtime = createRuntime();
    const { plugin, release } = await pluginWithHeldTool(runtime, "holdp");
    await using _plugin = plugin;
    const running = plugin.callI32("call");
    const ahead = plugin.callI32("ok"); // waiting before the pause: runs before it
    const paused = plugin.pause();
    const behind = plugin.callI32("ok");
    release();
    assert.equal(await running, 1); // the answer's length
    assert.equal(await ahead, 7);
    await paused;
    assert.equal(plugin.state, "paused");
    await assertRejectsWith(() => behind, PluginStateError, { state: "paused" });
    plugin.resume();
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

testEachIsolation(
  "A start function may call an async host function, as any export may",
  { permissions: PERMISSIONS },
  async (t, { createRuntime }) => {
    // It failed as "Plugin trapped: SuspendError: trying to suspend without WebAssembly.promising".
    await using runtime = createRuntime();
    runtime.registerTool("seven", () => 7);
    const wat = `(module
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "seven{}")
      (global $answer (mut i32) (i32.const -1))
      (func $start (global.set $answer
        (call $tool (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64)
          (i32.const 64))))
      (start $start)
      (func (export "answer") (result i32) (global.get $answer))
      (func (export "reply") (result i32) (i32.load8_u (i32.const 64))))`;
    await t.step("it waits for the tool's answer", async () => {
      await using plugin = await runtime.createPluginFromWat(wat, {
        capabilities: [Capability.CallTool],
      });
      assert.equal(await plugin.callI32("answer"), 1); // the answer's length
      assert.equal(await plugin.callI32("reply"), "7".charCodeAt(0));
    });
    await t.step("so may a command's, before its _start", async () => {
      const command = wat.replace(
        '(func (export "answer")',
        '(func (export "_start") (if (i32.ne (global.get $answer) (i32.const 1)) (then unreachable)))\n      (func (export "answer")',
      );
      await using plugin = await runtime.createPluginFromWat(command, {
        capabilities: [Capability.CallTool, Capability.Wasi],
      });
      assert.equal((await plugin.run()).exitCode, 0);
    });
    await t.step("and its deadline ends a tool that never answers", async () => {
      holdingTool(runtime, "stall");
      const stalling = wat.replace('"seven{}"', '"stall{}"');
      const error = await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(stalling, {
            capabilities: [Capability.CallTool],
            resourceLimits: { maxExecutionTimeMs: 100 },
          }),
        InstantiationError,
      );
      assert.equal((error.cause as Error).name, "TimeoutError");
    });
  },
);

testEachIsolation(
  "manager.load() of bytes it cannot take names what it received",
  { permissions: PERMISSIONS },
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime();
    await using manager = new PluginManager(runtime);
    await assertRejectsWith(() => manager.load(new Int8Array(8) as never), TypeError, {
      message:
        'Cannot compile "plugin": expected a Uint8Array or an ArrayBuffer, received an Int8Array',
    });
  },
);

testEachIsolation(
  "A plugin's own tool cannot wait for an unload of its plugin begun before: it is refused at once",
  { permissions: PERMISSIONS },
  async (t, { createRuntime }) => {
    // It joined the unload, which waited for the call, which waited for the tool: until the
    // call's deadline (for ever without one).
    await using runtime = createRuntime({ resourceLimits: UNLIMITED_LIMITS });
    for (const action of ["unload", "unloadAll"] as const) {
      await t.step(action, async () => {
        await using manager = new PluginManager(runtime);
        const entered = Promise.withResolvers<void>();
        const unloading = Promise.withResolvers<void>();
        let refusal: unknown;
        runtime.registerTool("joinx", async () => {
          entered.resolve();
          await unloading.promise;
          try {
            await (action === "unload" ? manager.unload(handle) : manager.unloadAll());
          } catch (err) {
            refusal = err;
          }
          return 0;
        });
        const handle = await manager.loadWat(toolCallWat("joinx"), {
          capabilities: [Capability.CallTool],
        });
        const running = manager.callI32(handle, "call");
        await entered.promise;
        const first = manager.unload(handle);
        unloading.resolve();
        assert.equal(await running, 1);
        await first;
        assert.ok(refusal instanceof PluginStateError, String(refusal));
      });
    }
  },
);

testEachIsolation(
  "manager.close() ends the start functions of the loads in flight",
  { permissions: PERMISSIONS },
  async (t, { createRuntime }) => {
    // A close from a start function's own tool waited for that start, and close({ abort: true })
    // for a start waiting on a tool that never answers.
    await using runtime = createRuntime({ resourceLimits: UNLIMITED_LIMITS });
    const startingWat = (tool: string) =>
      `(module
        (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "${tool}{}")
        (func $start (drop (call $tool (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2)
          (i32.const 64) (i32.const 64))))
        (start $start))`;
    await t.step("a close from the start function's own tool", async () => {
      const manager = new PluginManager(runtime);
      let closing: Promise<void> | undefined;
      runtime.registerTool("shuts", () => {
        closing = manager.close();
        return 0;
      });
      // The close's own error, not a start function that failed (as a load the close finds
      // before its start function runs).
      await assertRejectsWith(
        () => manager.loadWat(startingWat("shuts"), { capabilities: [Capability.CallTool] }),
        PluginStateError,
        {
          state: "closed",
          message: "Cannot load a plugin: the manager was closed while it started",
        },
      );
      assert.equal(await settlesWithin(closing!, 1000), true);
    });
    await t.step("a close while a start waits on a tool that never answers", async () => {
      const manager = new PluginManager(runtime);
      holdingTool(runtime, "stuck");
      const loading = manager.loadWat(startingWat("stuck"), {
        capabilities: [Capability.CallTool],
      }).catch((err) => err);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(await settlesWithin(manager.close(), 1000), true);
      const error = await loading;
      assert.ok(error instanceof PluginStateError && error.state === "closed", String(error));
    });
    await t.step("and runtime.close() those of the creations in flight", async () => {
      const local = createRuntime({ resourceLimits: UNLIMITED_LIMITS });
      holdingTool(local, "stuck");
      const creating = local.createPluginFromWat(startingWat("stuck"), {
        capabilities: [Capability.CallTool],
      }).catch((err) => err);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(await settlesWithin(local.close(), 1000), true);
      const error = await creating;
      assert.ok(error instanceof PluginStateError && error.state === "closed", String(error));
    });
  },
);

testEachIsolation(
  "A state_changed listener that resumes the plugin as it pauses lets no caller in without the turn",
  { permissions: PERMISSIONS },
  async (_t, { createRuntime }) => {
    // The first caller in line got the turn, the others ran (or were refused as "running")
    // with a turn that held nothing.
    await using runtime = createRuntime();
    const { plugin, release } = await pluginWithHeldTool(runtime, "holdr");
    await using _plugin = plugin;
    plugin.addEventListener("state_changed", (event) => {
      if ((event as CustomEvent<{ to: string }>).detail.to === "paused") plugin.resume();
    });
    const running = plugin.callI32("call");
    const paused = plugin.pause();
    const behind = [1, 2, 3].map(() => plugin.callI32("ok").catch((err) => err));
    release();
    assert.equal(await running, 1);
    await paused;
    for (const outcome of await Promise.all(behind)) {
      assert.ok(outcome instanceof PluginStateError, String(outcome));
      assert.equal(outcome.state, "paused");
    }
    assert.equal(plugin.state, "created");
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

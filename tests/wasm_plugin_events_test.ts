import assert from "node:assert/strict";
import { PluginEvent, PluginManager, TrapError, type WasmPlugin } from "../mod.ts";
import { inlineRuntime, PLUGIN_EVENT_TYPES, testEachIsolation } from "./_helpers.ts";
import { CALLS_WAT } from "./fixtures/wat.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)' +
  ' (func (export "fail") unreachable))';

/** Records what `plugin` dispatches, as `type detail` (the duration left out). */
function recordPlugin(plugin: WasmPlugin): string[] {
  const seen: string[] = [];
  for (const type of PLUGIN_EVENT_TYPES) {
    plugin.addEventListener(type, (event) => {
      assert.ok(event instanceof PluginEvent);
      assert.equal(event.pluginId, plugin.id);
      const { durationMs: _, error, ...rest } = event.detail as Record<string, unknown>;
      const shown = error === undefined
        ? rest
        : { ...rest, error: error instanceof Error ? error.name : error };
      seen.push(`${event.type} ${JSON.stringify(shown)}`);
    });
  }
  return seen;
}

/** Counts the events a plugin dispatches, listened to or not, until disposal. */
function countDispatches(plugin: WasmPlugin): { readonly count: number } & Disposable {
  const dispatch = plugin.dispatchEvent;
  const counter = {
    count: 0,
    [Symbol.dispose]() {
      delete (plugin as { dispatchEvent?: unknown }).dispatchEvent;
    },
  };
  plugin.dispatchEvent = (event: Event) => {
    counter.count++;
    return dispatch.call(plugin, event);
  };
  return counter;
}

testEachIsolation("WasmPlugin dispatches its state changes and calls as PluginEvents", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using plugin = await runtime.createPluginFromWat(ADD_WAT, { id: "adder" });
  const seen = recordPlugin(plugin);

  await t.step("a call: running, back, then executed", async () => {
    assert.equal(await plugin.callI32("add", [2, 3]), 5);
    assert.deepEqual(seen.splice(0), [
      'state_changed {"from":"created","to":"running"}',
      'state_changed {"from":"running","to":"created"}',
      'executed {"function":"add","success":true}',
    ]);
  });

  await t.step(
    "a failed call: executed (unsuccessful), then error with the error itself",
    async () => {
      const error = await plugin.callVoid("fail").catch((err) => err);
      assert.ok(error instanceof TrapError);
      assert.deepEqual(seen.splice(0).slice(2), [
        `executed {"function":"fail","success":false,"error":${JSON.stringify(error.message)}}`,
        'error {"function":"fail","error":"TrapError"}',
      ]);
    },
  );

  await t.step("initialize, pause, resume and stop change the state too", async () => {
    await plugin.initialize();
    await plugin.pause();
    plugin.resume();
    await plugin.stop();
    assert.deepEqual(seen.splice(0), [
      'state_changed {"from":"created","to":"initializing"}',
      'state_changed {"from":"initializing","to":"ready"}',
      'state_changed {"from":"ready","to":"paused"}',
      'state_changed {"from":"paused","to":"ready"}',
      'state_changed {"from":"ready","to":"stopped"}',
    ]);
  });
});

Deno.test("WasmPlugin makes events only while someone listens", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  await using plugin = await runtime.createPluginFromWat(CALLS_WAT);
  using dispatched = countDispatches(plugin);

  await t.step("nobody listens: a call dispatches nothing", async () => {
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 0);
  });

  await t.step("an executed listener: one event per call", async () => {
    const onCall = (): void => {};
    plugin.addEventListener("executed", onCall);
    // Added twice, it is one listener: removed once, it is gone.
    plugin.addEventListener("executed", onCall);
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 1);
    plugin.removeEventListener("executed", onCall);
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 1);
  });

  await t.step("a state_changed listener: two events per call", async () => {
    const onState = (): void => {};
    plugin.addEventListener("state_changed", onState);
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 3);
    plugin.removeEventListener("state_changed", onState);
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 3);
  });
});

Deno.test("PluginManager listens to its plugins' calls only while someone listens to it", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  await using manager = new PluginManager(runtime, { anomaly: false });
  const handle = await manager.loadWat(CALLS_WAT, { id: "p" });
  const plugin = manager.get(handle);
  using dispatched = countDispatches(plugin);

  await t.step("no listener: the plugin makes no event, the stats still count", async () => {
    await manager.callI32(handle, "add", [1, 2]);
    await plugin.callI32("add", [1, 2]);
    assert.equal(dispatched.count, 0);
    assert.equal(manager.stats().totalCalls, 2);
  });

  await t.step("an executed listener: the plugin makes that event, and it reaches it", async () => {
    const seen: string[] = [];
    const onEvent = (event: PluginEvent): void => void seen.push(`${event.type} ${event.pluginId}`);
    manager.addEventListener("executed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(dispatched.count, 1);
    assert.deepEqual(seen, ["executed p"]);
    manager.addEventListener("state_changed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(dispatched.count, 4);
    assert.deepEqual(seen.slice(1), ["state_changed p", "state_changed p", "executed p"]);
    manager.removeEventListener("executed", onEvent);
    manager.removeEventListener("state_changed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(dispatched.count, 4);
  });

  await t.step("a subscription: every per-call event, until it ends", async () => {
    const subscription = manager.subscribe();
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(dispatched.count, 7);
    await subscription.return();
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(dispatched.count, 7);
    assert.equal(manager.stats().totalCalls, 7);
  });

  await t.step("unloaded, the plugin is no longer listened to", async () => {
    const seen: string[] = [];
    manager.addEventListener("executed", (event) => void seen.push(event.pluginId));
    await manager.unload(handle);
    plugin.dispatchEvent(
      new PluginEvent("executed", "p", { function: "add", durationMs: 0, success: true }),
    );
    assert.deepEqual(seen, []);
    assert.deepEqual(manager.stats().totalCalls, 7, "its calls still count");
  });
});

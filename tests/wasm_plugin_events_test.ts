import assert from "node:assert/strict";
import { GuestError, PluginEvent, PluginManager, TrapError, type WasmPlugin } from "../mod.ts";
import {
  inlineRuntime,
  PLUGIN_EVENT_TYPES,
  pluginThatThrows,
  testEachIsolation,
} from "./_helpers.ts";
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

/** Counts the events a plugin or manager dispatches, listened to or not, until disposal. */
function countDispatches(plugin: EventTarget): { readonly count: number } & Disposable {
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

Deno.test("PluginManager takes its plugins' call events only while someone listens to it", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  await using manager = new PluginManager(runtime, { anomaly: false });
  const handle = await manager.loadWat(CALLS_WAT, { id: "p" });
  const plugin = manager.get(handle);
  // The plugin hands its events to the manager as type and detail: it
  // dispatches none for it, and the manager dispatches one of its own.
  using pluginDispatched = countDispatches(plugin);
  using managerDispatched = countDispatches(manager);

  await t.step("no listener: no event is made, the stats still count", async () => {
    await manager.callI32(handle, "add", [1, 2]);
    await plugin.callI32("add", [1, 2]);
    assert.equal(pluginDispatched.count + managerDispatched.count, 0);
    assert.equal(manager.stats().totalCalls, 2);
  });

  await t.step("an executed listener: one event per call, the manager's", async () => {
    const seen: PluginEvent[] = [];
    const onEvent = (event: PluginEvent): void => void seen.push(event);
    manager.addEventListener("executed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(managerDispatched.count, 1);
    assert.deepEqual(seen.map((event) => `${event.type} ${event.pluginId}`), ["executed p"]);
    assert.equal(seen[0]!.target, manager);
    assert.deepEqual({ ...seen[0]!.detail, durationMs: 0 }, {
      function: "add",
      durationMs: 0,
      success: true,
    });
    manager.addEventListener("state_changed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(managerDispatched.count, 4);
    assert.deepEqual(
      seen.slice(1).map((event) => `${event.type} ${event.pluginId}`),
      ["state_changed p", "state_changed p", "executed p"],
    );
    manager.removeEventListener("executed", onEvent);
    manager.removeEventListener("state_changed", onEvent);
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(managerDispatched.count, 4);
    assert.equal(pluginDispatched.count, 0);
  });

  await t.step("listeners on the plugin and on the manager: each gets its own event", async () => {
    const onPlugin: PluginEvent[] = [];
    const onManager: PluginEvent[] = [];
    const onPluginEvent = (event: PluginEvent): void => void onPlugin.push(event);
    const onManagerEvent = (event: PluginEvent): void => void onManager.push(event);
    plugin.addEventListener("executed", onPluginEvent);
    manager.addEventListener("executed", onManagerEvent);
    await manager.callI32(handle, "add", [1, 2]);
    plugin.removeEventListener("executed", onPluginEvent);
    manager.removeEventListener("executed", onManagerEvent);
    assert.equal(pluginDispatched.count, 1);
    assert.equal(managerDispatched.count, 5);
    assert.equal(onPlugin[0]!.target, plugin);
    assert.equal(onManager[0]!.target, manager);
    assert.equal(onPlugin[0]!.detail, onManager[0]!.detail);
  });

  await t.step("a subscription: every per-call event, until it ends", async () => {
    const subscription = manager.subscribe();
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(subscription.pending, 3);
    const types: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { value } = await subscription.next();
      types.push(`${value!.type} ${value!.pluginId}`);
    }
    assert.deepEqual(types, ["state_changed p", "state_changed p", "executed p"]);
    await subscription.return();
    await manager.callI32(handle, "add", [1, 2]);
    assert.equal(pluginDispatched.count, 1);
    assert.equal(managerDispatched.count, 5, "with no listener, the manager dispatches nothing");
    assert.equal(manager.stats().totalCalls, 8);
  });

  await t.step("unloaded, the plugin's last state change still reaches the manager", async () => {
    const seen: string[] = [];
    manager.addEventListener("state_changed", (event) => {
      seen.push(`${event.pluginId} ${event.detail.from} -> ${event.detail.to}`);
    });
    await manager.unload(handle);
    assert.deepEqual(seen, ["p created -> stopped"]);
    assert.equal(pluginDispatched.count, 1);
    assert.equal(manager.stats().totalCalls, 8, "its calls still count");
  });
});

testEachIsolation("An executed event carries at most 16 Ki characters of the error", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  await using runtime = createRuntime();
  // A WasmError a host function throws reaches the caller as it is; events show it bounded.
  await using plugin = await pluginThatThrows(
    runtime,
    () => new GuestError("x".repeat(1_000_000), { functionName: "go" }),
  );
  const errors: string[] = [];
  plugin.addEventListener("executed", (event) => {
    const { error } = (event as CustomEvent<{ error?: string }>).detail;
    if (error !== undefined) errors.push(error);
  });
  await assert.rejects(() => plugin.callVoid("go"), GuestError);
  assert.equal(errors.length, 1);
  assert.equal(errors[0], `${"x".repeat(16 * 1024)}… (${1_000_000 - 16 * 1024} more characters)`);
});

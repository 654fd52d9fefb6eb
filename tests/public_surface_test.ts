/**
 * The public surface has one name per concept (issue #15, item 10):
 * `WasmPluginManager` is `PluginManager`, event subscriptions come only from
 * `manager.subscribe()`, and the manager offers every call of a plugin.
 */
import assert from "node:assert/strict";
import * as wasmplug from "../mod.ts";
import { PluginManager, WasmPluginManager } from "../mod.ts";

Deno.test("The public surface: one manager, subscriptions only from subscribe()", async () => {
  assert.equal(WasmPluginManager, PluginManager);
  assert.ok(!("EventSubscription" in wasmplug), "EventSubscription is a type, not a class");
  for (const call of ["callI32", "callI64", "callF32", "callF64", "callVoid", "call"] as const) {
    assert.equal(typeof PluginManager.prototype[call], "function", call);
  }
  for (const call of ["callWithBytes", "callBytes", "callJson", "run"] as const) {
    assert.equal(typeof PluginManager.prototype[call], "function", call);
  }
  await using runtime = new wasmplug.WasmRuntime({ execution: { isolation: "inline" } });
  await using manager = new PluginManager(runtime);
  const events = manager.subscribe({ bufferSize: 4 });
  assert.ok(!("push" in events), "only the manager pushes events");
  await events.return();
});

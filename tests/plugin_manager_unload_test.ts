import assert from "node:assert/strict";
import { Capability, PluginManager, PluginStateError } from "../mod.ts";
import { assertRejectsWith, testEachIsolation } from "./_helpers.ts";

/** `nap(ms)` sleeps in the host (the guest is suspended), then returns 7. */
const NAPPER = `(module
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (func (export "nap") (param i32) (result i32) (call $sleep (local.get 0)) (i32.const 7)))`;

testEachIsolation("PluginManager.unload() during a call", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime();
  await using manager = new PluginManager(runtime);
  const load = () => manager.loadWat(NAPPER, { capabilities: [Capability.Timer] });

  await t.step("waits for the running call by default", async () => {
    const handle = await load();
    const call = manager.callI32(handle, "nap", [100]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    let settled = false;
    call.finally(() => (settled = true));
    await manager.unload(handle);
    assert.ok(settled, "the call settled before unload() resolved");
    assert.equal(await call, 7);
  });

  await t.step("ends the running call with { abort: true }", async () => {
    const handle = await load();
    const call = manager.callI32(handle, "nap", [10_000]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const start = performance.now();
    // The call fails before unload() resolves: its rejection is taken from the start.
    const rejected = assertRejectsWith(() => call, PluginStateError);
    await manager.unload(handle, { abort: true });
    const error = await rejected;
    assert.match(error.message, /was aborted: the plugin is being stopped/);
    assert.ok(performance.now() - start < 2_000, "did not wait for the 10 s nap");
    assert.deepEqual(manager.listPlugins(), []);
  });
});

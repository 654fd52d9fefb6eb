import assert from "node:assert/strict";
import { Capability } from "../mod.ts";
import { parseCapabilities } from "../src/_capability_grants.ts";
import { assertRejectsWith, assertThrowsWith, testEachIsolation } from "./_helpers.ts";

Deno.test("Capability names every grantable capability", { permissions: "none" }, async (t) => {
  await t.step("values match the table of API.md", () => {
    assert.deepEqual({ ...Capability }, {
      ReadConfig: "read_config",
      WriteConfig: "write_config",
      WriteState: "write_state",
      ReadState: "read_state",
      SendMessage: "send_message",
      CallTool: "call_tool",
      CallHostFunction: "call_host_function",
      NetworkAccess: "network",
      FileSystem: "filesystem",
      Timer: "timer",
      Random: "random",
      Wasi: "wasi",
    });
  });
  await t.step("the enum object is frozen", () => {
    assert.ok(Object.isFrozen(Capability));
  });
});

Deno.test("parseCapabilities() checks a config's capability list", {
  permissions: "none",
}, async (t) => {
  await t.step("undefined grants nothing", () => {
    assert.equal(parseCapabilities(undefined).size, 0);
  });
  await t.step("a list becomes a set, duplicates collapse", () => {
    const granted = parseCapabilities([Capability.Timer, "random", Capability.Timer]);
    assert.deepEqual([...granted], ["timer", "random"]);
  });
  await t.step("an unknown name is a TypeError listing the known ones", () => {
    const error = assertThrowsWith(
      () => parseCapabilities(["network", "teleport"] as unknown as Capability[]),
      TypeError,
    );
    assert.match(
      error.message,
      /Cannot grant capability "teleport": expected one of read_config, /,
    );
  });
  await t.step("a non-array is a TypeError", () => {
    assertThrowsWith(
      () => parseCapabilities("timer" as unknown as Capability[]),
      TypeError,
      {
        message:
          'Cannot grant capabilities: expected an array of capability names, received string "timer"',
      },
    );
  });
  await t.step("a value that is not a name is a TypeError naming it", () => {
    const error = assertThrowsWith(
      () => parseCapabilities([1n] as unknown as Capability[]),
      TypeError,
    );
    assert.match(error.message, /^Cannot grant capability bigint 1n: expected one of /);
  });
});

testEachIsolation("A bad capability is a TypeError even when the module's manifest needs one", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  // The manifest's needs were held against the raw list first: a CapabilityDeniedError blaming
  // the plugin (for "ReadConfig", or "read_config" given as a string), or the engine's own
  // TypeError for a number.
  await using runtime = createRuntime();
  const manifest = JSON.stringify(JSON.stringify({ name: "needs", capabilities: ["read_config"] }));
  const compiled = await runtime.compileWat(
    "needs",
    `(module (@custom "wasmplug.manifest" ${manifest}))`,
  );
  for (const capabilities of [["ReadConfig"], "read_config", 5]) {
    const error = await assertRejectsWith(
      () => runtime.createPlugin(compiled, { capabilities: capabilities as Capability[] }),
      TypeError,
    );
    assert.match(error.message, /^Cannot grant capabilit/);
  }
});

testEachIsolation("WasmPlugin.capabilities reflects what the config granted", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();

  await t.step("granted capabilities are listed, frozen", async () => {
    await using plugin = await runtime.createPluginFromWat("(module)", {
      capabilities: [Capability.ReadConfig, Capability.CallTool],
    });
    assert.deepEqual(plugin.capabilities, ["read_config", "call_tool"]);
    assert.ok(Object.isFrozen(plugin.capabilities));
  });
  await t.step("nothing is granted by default", async () => {
    await using plugin = await runtime.createPluginFromWat("(module)");
    assert.deepEqual(plugin.capabilities, []);
  });
  await t.step("an unknown capability in the config rejects the plugin", async () => {
    await assertRejectsWith(
      () =>
        runtime.createPluginFromWat("(module)", {
          capabilities: ["root"] as unknown as Capability[],
        }),
      TypeError,
    );
    assert.equal(runtime.pluginCount, 0);
  });
});

/**
 * Hostile plugin configs: objects that are not plain data (a `Proxy`,
 * getters that change their answer), and a polluted `Object.prototype`. A
 * plugin gets what the config's own fields say, read once, in both
 * isolations.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  InstantiationError,
  type WasmPlugin,
} from "../../mod.ts";
import { assertRejectsWith, putString, testEachIsolation } from "../_helpers.ts";
import { hostFunctionsWat } from "../fixtures/wat.ts";

const CONFIG_WAT = hostFunctionsWat("host_get_config");

/** `host_get_config("greeting")` through the plugin: the value's length, or -1. */
async function greetingLength(plugin: WasmPlugin): Promise<number> {
  const [ptr, len] = await putString(plugin, 0, "greeting");
  return await plugin.callI32("host_get_config", [ptr, len, 256, 256]);
}

testEachIsolation("A config of Proxy objects is used as the plain data it shows", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  const observed = <T extends object>(value: T): T => new Proxy(value, {});
  await using loaded = await loadPlugin(
    CONFIG_WAT,
    observed({
      capabilities: observed([Capability.ReadConfig, Capability.Wasi]),
      config: observed({ greeting: "hello" }),
      allowedHosts: observed(["example.com"]),
      wasi: observed({ args: observed(["--verbose"]), env: observed({ MODE: "test" }) }),
    }),
  );
  assert.equal(await greetingLength(loaded.plugin), 5);
});

testEachIsolation("A getter in a config is read once: what was checked is what is used", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  const reads = { capabilities: 0, allowedHosts: 0, wasi: 0 };
  const config = {
    get capabilities(): Capability[] {
      return reads.capabilities++ === 0 ? [] : [Capability.ReadConfig];
    },
    get allowedHosts(): string[] {
      return reads.allowedHosts++ === 0 ? ["example.com"] : [""];
    },
    get wasi(): { args: string[] } {
      return reads.wasi++ === 0 ? { args: [] } : { args: ["\0"] };
    },
    config: { greeting: "hello" },
  };
  await using loaded = await loadPlugin(CONFIG_WAT, config);
  assert.deepEqual(reads, { capabilities: 1, allowedHosts: 1, wasi: 1 });
  await assertRejectsWith(() => greetingLength(loaded.plugin), CapabilityDeniedError);
});

testEachIsolation("A config class's getters and methods are its fields", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  class GreeterConfig {
    config = { greeting: "hello" };
    get capabilities(): Capability[] {
      return [Capability.ReadConfig];
    }
  }
  await using loaded = await loadPlugin(CONFIG_WAT, new GreeterConfig());
  assert.equal(await greetingLength(loaded.plugin), 5);
});

testEachIsolation("A polluted Object.prototype grants a plugin nothing", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  const prototype = Object.prototype as Record<string, unknown>;
  prototype.capabilities = [Capability.ReadConfig];
  prototype.preopens = { "/etc": "/etc" };
  try {
    await using loaded = await loadPlugin(CONFIG_WAT, { config: { greeting: "hello" }, wasi: {} });
    assert.deepEqual(loaded.plugin.capabilities, []);
    await assertRejectsWith(() => greetingLength(loaded.plugin), CapabilityDeniedError);
  } finally {
    delete prototype.capabilities;
    delete prototype.preopens;
  }
});

const unreadable = await Deno.makeTempDir({ prefix: "wasmplug_unreadable_" });
globalThis.addEventListener("unload", () => Deno.removeSync(unreadable, { recursive: true }));

testEachIsolation("A preopen the host may not read is an InstantiationError, never a prompt", {
  permissions: { read: [new URL("../fixtures/", import.meta.url).pathname] },
}, async (_t, { isolation, loadPlugin }) => {
  const error = await assertRejectsWith(
    () =>
      loadPlugin(
        `(module
          (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
          (memory (export "memory") 1))`,
        {
          name: "reader",
          capabilities: [Capability.Wasi, Capability.FileSystem],
          wasi: { preopens: { "/data": unreadable } },
        },
      ),
    InstantiationError,
  );
  assert.match(
    error.message,
    isolation === "inline"
      ? /Cannot give plugin "reader" its WASI preopens: Cannot preopen "\/data": Deno does not grant reading/
      : /the host does not have \(read: /,
  );
});

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
  DEFAULT_LIMITS,
  ImportNotFoundError,
  InstantiationError,
  PluginManager,
  type WasmPlugin,
  WasmRuntime,
} from "../../mod.ts";
import { assertRejectsWith, loadPlugin, putString, testEachIsolation } from "../_helpers.ts";
import { shownName } from "../../src/common/mod.ts";
import { hostFunctionsWat } from "../fixtures/wat.ts";

const CONFIG_WAT = hostFunctionsWat("host_get_config");

/** `count(n)` loops `n` times and answers `n`. */
const LOOP_WAT = `(module (func (export "count") (param $n i32) (result i32) (local $i i32)
  (loop $l
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
  (local.get $i)))`;

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
  // A field defined as not enumerable is a field all the same: its limits apply.
  const hidden = Object.defineProperty({}, "resourceLimits", {
    value: Object.defineProperty({}, "maxCallDepth", { value: 7 }),
  });
  await using limited = await loadPlugin(CONFIG_WAT, hidden);
  assert.equal(limited.plugin.limits.maxCallDepth, 7);
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

Deno.test("A polluted Object.prototype sets no runtime, call, run or manager option", {
  permissions: "none",
}, async () => {
  const prototype = Object.prototype as Record<string, unknown>;
  const polluted: Record<string, unknown> = {
    isolation: "inline",
    fuelMetering: false,
    epochInterruption: false,
    workerPermissions: "inherit",
    maxFuel: 1000,
    maxExecutionTimeMs: 5,
    timeoutMs: 1,
    fuel: 10,
    abort: true,
    id: "victim",
    bufferSize: 1,
    onMessage: () => {
      throw new Error("a polluted onMessage ran");
    },
  };
  Object.assign(prototype, polluted);
  try {
    const defaults = new WasmRuntime();
    assert.deepEqual(
      { ...defaults.execution, maxFuel: defaults.limits.maxFuel },
      {
        isolation: "worker",
        fuelMetering: true,
        epochInterruption: true,
        workerPermissions: "narrow",
        maxFuel: DEFAULT_LIMITS.maxFuel,
      },
    );
    await defaults.close();

    await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
    await using manager = new PluginManager(runtime);
    const handle = await manager.loadWat(LOOP_WAT, {});
    assert.equal(handle.id, "plugin-1");
    // With the prototype's fuel (10) or timeout (1 ms), these would fail.
    assert.equal(await manager.callI32(handle, "count", [100_000], {}), 100_000);
    const plugin = manager.get(handle);
    assert.equal(await plugin.callI32("count", [100_000], {}), 100_000);
    await plugin.stop({});
  } finally {
    for (const key of Object.keys(polluted)) delete prototype[key];
  }
});

Deno.test("A polluted Object.prototype changes no resource limit's checks", {
  permissions: "none",
}, () => {
  const prototype = Object.prototype as Record<string, unknown>;
  prototype.maxFuel = null;
  prototype.maxExecutionTimeMs = 10;
  try {
    const runtime = new WasmRuntime({
      execution: { isolation: "inline" },
      resourceLimits: { maxFuel: 10_000_000, maxExecutionTimeMs: 5000 },
    });
    assert.equal(runtime.limits.maxFuel, 10_000_000);
    assert.equal(runtime.limits.maxExecutionTimeMs, 5000);
  } finally {
    delete prototype.maxFuel;
    delete prototype.maxExecutionTimeMs;
  }
});

testEachIsolation("A guest's names are shown escaped and cut in error messages", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  const forged = "x\n2026-01-01 [ERR] forged\u001b[2J" + "y".repeat(1_000_000);
  const error = await assertRejectsWith(
    // The same name in WAT's own escapes.
    () =>
      loadPlugin(
        `(module (import "env" "x\\n2026-01-01 [ERR] forged\\1b[2J${
          "y".repeat(1_000_000)
        }" (func)))`,
      ),
    ImportNotFoundError,
  );
  assert.ok(error.message.length < 300, `${error.message.length} characters`);
  assert.ok(!error.message.includes("\n") && !error.message.includes("\u001b"), error.message);
  assert.match(
    error.message,
    /^Import not found: "env"\."x\\n2026-01-01 \[ERR\] forged\\u001b\[2Jy+…" is not/,
  );
  assert.equal(error.importName, forged);
});

Deno.test("Names are cut between characters, and line and direction marks are escaped", () => {
  assert.equal(shownName("b\u2028c\u202ed"), '"b\\u2028c\\u202ed"');
  assert.equal(shownName("a".repeat(63) + "😀"), `"${"a".repeat(63)}…"`);
  assert.ok(shownName("a".repeat(63) + "😀").isWellFormed());
  // The set compile errors escape: fillers and tags printed raw in names (they hide text).
  assert.equal(shownName("\u3164x\u{e0041}"), '"\\u3164x\\udb40\\udc41"');
});

Deno.test("More preopens than the default maxOpenFiles leaves room for is a TypeError", {
  permissions: "none",
}, async () => {
  const preopens = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`/p${i}`, `/p${i}`]));
  await assert.rejects(
    () => loadPlugin("(module)", { wasi: { preopens } }),
    /Cannot use 'wasi.preopens': expected at most 253 preopens \(raise wasi.maxOpenFiles for more\), received number 300/,
  );
});

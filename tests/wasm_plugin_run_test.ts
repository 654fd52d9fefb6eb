import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  InvalidFunctionError,
  TimeoutError,
  TrapError,
} from "../mod.ts";
import { assertRejectsWith, testEachIsolation } from "./_helpers.ts";

const C_WASI = new URL("../examples/c_wasi/c_wasi.wasm", import.meta.url);
const DATA = new URL("../examples/c_wasi/data", import.meta.url).pathname;
const SECRET = new URL("../examples/c_wasi/secret.txt", import.meta.url).pathname;
const READ = [C_WASI.pathname, DATA, SECRET];

const decoder = new TextDecoder();

testEachIsolation("WasmPlugin.run() runs a WASI command", {
  permissions: { read: READ },
}, async (t, kit) => {
  await using runtime = kit.createRuntime();
  const compiled = await runtime.compile("c_wasi", await Deno.readFile(C_WASI));
  const secretBefore = await Deno.readTextFile(SECRET);
  const command = {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: {
      args: ["one"],
      env: { PROBE_PATHS: "/data/../secret.txt" },
      preopens: { "/data": DATA },
    },
  };

  await t.step("stdin in, stdout out, the exit code returned", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const result = await plugin.run({ stdin: new TextEncoder().encode("a\nb\nc\n") });
    assert.equal(result.exitCode, 3);
    const stdout = decoder.decode(result.stdout);
    assert.match(stdout, /^A\nB\nC\nlines: 3\nargs: one\n/);
    assert.match(stdout, /greeting: Hello from the preopened \/data directory!/);
    assert.equal(result.outputTruncated, false);
  });

  await t.step("each run is a fresh instance with its own stdin", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const first = await plugin.run({ stdin: new TextEncoder().encode("x\n") });
    const second = await plugin.run();
    assert.match(decoder.decode(first.stdout), /lines: 1/);
    assert.match(decoder.decode(second.stdout), /lines: 0/);
    assert.equal((await plugin.metrics()).callCount, 2);
  });

  await t.step("escaping the preopen fails and leaves the host file alone", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const { stdout } = await plugin.run();
    assert.match(decoder.decode(stdout), /probe \/data\/\.\.\/secret\.txt: denied/);
    assert.match(decoder.decode(stdout), /network: Function not implemented/);
    assert.equal(await Deno.readTextFile(SECRET), secretBefore);
  });

  await t.step("without FileSystem the preopen is not there", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      ...command,
      capabilities: [Capability.Wasi],
    });
    const { exitCode, stdout, stderr } = await plugin.run();
    assert.equal(exitCode, 1, "main.c exits with 1 when it cannot read /data/greeting.txt");
    assert.doesNotMatch(decoder.decode(stdout), /greeting: Hello/);
    assert.match(decoder.decode(stderr), /\/data\/greeting\.txt/);
  });

  await t.step("without Wasi the command is denied", async () => {
    await using plugin = await runtime.createPlugin(compiled, {});
    const error = await assertRejectsWith(() => plugin.run(), CapabilityDeniedError);
    assert.equal(error.capability, Capability.Wasi);
  });
});

testEachIsolation("WasmPlugin.run() needs a command and enforces limits", {
  permissions: "none",
}, async (t, kit) => {
  await t.step("a module without _start is not a command", async () => {
    await using loaded = await kit.loadPlugin('(module (func (export "f")))');
    await assertRejectsWith(() => loaded.plugin.run(), InvalidFunctionError, {
      functionName: "_start",
    });
  });

  const loop = `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (func (export "_start") (loop $l (br $l)))
    (func (export "quit") (call $exit (i32.const 7))))`;

  await t.step("a command that never ends times out", async () => {
    await using loaded = await kit.loadPlugin(loop, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxFuel: null },
    });
    await assertRejectsWith(() => loaded.plugin.run({ timeoutMs: 100 }), TimeoutError);
  });

  await t.step("proc_exit outside run() is a trap, and the plugin stays usable", async () => {
    await using loaded = await kit.loadPlugin(loop, { capabilities: [Capability.Wasi] });
    const error = await assertRejectsWith(() => loaded.plugin.callVoid("quit"), TrapError);
    assert.match(error.message, /proc_exit\(7\) outside plugin\.run\(\)/);
    await assertRejectsWith(() => loaded.plugin.callVoid("quit"), TrapError);
  });
});

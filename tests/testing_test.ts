import assert from "node:assert/strict";
import { assertTrapKind, FakeHost, withPlugin } from "../testing.ts";
import type { WasmPlugin, WasmRuntime } from "../mod.ts";

const DIV_WAT =
  '(module (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))';

Deno.test("withPlugin() always stops the plugin and closes the runtime", async (t) => {
  let seen: { plugin: WasmPlugin; runtime: WasmRuntime } | undefined;
  await t.step("after the body returns", async () => {
    const result = await withPlugin(DIV_WAT, { name: "div" }, (plugin, runtime) => {
      seen = { plugin, runtime };
      return plugin.callI32("div", [9, 3]);
    });
    assert.equal(result, 3);
    assert.equal(seen?.plugin.state, "stopped");
    assert.equal(seen?.runtime.pluginCount, 0);
  });
  await t.step("after the body throws", async () => {
    await assert.rejects(
      withPlugin(DIV_WAT, {}, (plugin) => {
        seen = { plugin, runtime: seen!.runtime };
        throw new Error("test body failed");
      }),
      /test body failed/,
    );
    assert.equal(seen?.plugin.state, "stopped");
  });
  await t.step("after the body throws with a call still running: at once", async () => {
    // It waited for the call's time limit (30 s by default) before the failure came out.
    const started = performance.now();
    let running: Promise<unknown> | undefined;
    await assert.rejects(
      withPlugin(
        `(module (import "env" "host_sleep_ms" (func $sleep (param i32)))
          (func (export "nap") (call $sleep (i32.const 10000))))`,
        { capabilities: ["timer"] },
        (plugin) => {
          running = plugin.callVoid("nap").catch((err) => err);
          throw new Error("test body failed");
        },
        { runtime: { execution: { isolation: "worker" } } },
      ),
      /test body failed/,
    );
    assert.ok(performance.now() - started < 5000, "withPlugin() waited for the call");
    assert.equal((await running as Error).name, "PluginStateError");
  });
});

Deno.test("assertTrapKind() passes only for the expected kind", async (t) => {
  await withPlugin(DIV_WAT, {}, async (plugin) => {
    await t.step("the expected kind returns the error", async () => {
      const error = await assertTrapKind(plugin.callI32("div", [1, 0]), "trap");
      assert.equal(error.kind, "trap");
    });
    await t.step("another kind fails, naming both", async () => {
      await assert.rejects(
        assertTrapKind(plugin.callI32("div", [1, 0]), "timeout"),
        /Expected a WasmError of kind "timeout", got a WasmError of kind "trap"/,
      );
    });
    await t.step("a call that succeeds fails", async () => {
      await assert.rejects(
        assertTrapKind(plugin.callI32("div", [4, 2]), "trap"),
        /the call returned 2/,
      );
    });
  });
});

Deno.test("FakeHost records logs and messages and answers tools", async () => {
  const host = new FakeHost().answerTool("lookup", { found: true });
  const wat = `(module
    (import "env" "host_log" (func $log (param i32 i32 i32)))
    (import "env" "host_send_message" (func $send (param i32 i32 i32 i32) (result i32)))
    (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "ping")
    (data (i32.const 8) "peer")
    (data (i32.const 16) "lookup")
    (data (i32.const 32) "{\\"id\\":7}")
    (func (export "run") (result i32)
      (call $log (i32.const 2) (i32.const 0) (i32.const 4))
      (drop (call $send (i32.const 8) (i32.const 4) (i32.const 0) (i32.const 4)))
      (call $tool (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 8) (i32.const 64) (i32.const 64))))`;
  const [length, reply] = await withPlugin(wat, {}, async (plugin) => {
    const length = await plugin.callI32("run");
    return [length, new TextDecoder().decode(await plugin.readMemory(64, length))] as const;
  }, { host });
  assert.deepEqual(host.logs.map(({ level, message }) => [level, message]), [["warning", "ping"]]);
  assert.deepEqual(
    host.messages.map(({ to, data }) => [to, new TextDecoder().decode(data)]),
    [["peer", "ping"]],
  );
  assert.deepEqual(host.toolCalls, [{ name: "lookup", args: { id: 7 } }]);
  assert.equal(reply, '{"found":true}');
  assert.equal(length, reply.length);
});

Deno.test("withPlugin() links the application's host functions", async () => {
  const { WasmRuntime, Capability } = await import("../mod.ts");
  await using other = new WasmRuntime({ execution: { isolation: "inline" } });
  const linker = other.createLinker();
  linker.funcWrap("env", "twice", (x: number) => x * 2);
  const result = await withPlugin(
    `(module
      (import "env" "twice" (func $twice (param i32) (result i32)))
      (func (export "f") (result i32) (call $twice (i32.const 21))))`,
    { capabilities: [Capability.CallHostFunction] },
    (plugin) => plugin.callI32("f"),
    { linker },
  );
  assert.equal(result, 42);
});

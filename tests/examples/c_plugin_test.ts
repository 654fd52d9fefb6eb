import assert from "node:assert/strict";
import { Capability, CapabilityDeniedError, type WasmPlugin, type WasmRuntime } from "../../mod.ts";
import { main } from "../../examples/c_plugin.ts";
import { capturePluginLogs, inlineRuntime, testEachIsolation } from "../_helpers.ts";

const wasm = await Deno.readFile(new URL("../../examples/c_plugin/plugin.wasm", import.meta.url));
const utf8 = new TextEncoder();

/** Adler-32 (RFC 1950), the reference for the plugin's `process_data`. */
function adler32(data: Uint8Array): number {
  let a = 1, b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Loads the committed C plugin, with `config` readable when given. */
async function load(
  runtime: WasmRuntime,
  config?: Record<string, string>,
): Promise<WasmPlugin> {
  const compiled = await runtime.compile("c_plugin", wasm);
  return await runtime.createPlugin(compiled, {
    name: "c_plugin",
    ...(config === undefined ? {} : { capabilities: [Capability.ReadConfig], config }),
  });
}

const READ_WASM = { permissions: { read: [new URL("../../examples/", import.meta.url).pathname] } };

testEachIsolation(
  "C plugin: process_data returns the Adler-32 checksum through callWithBytes",
  READ_WASM,
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime();
    await using plugin = await load(runtime);
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 31) % 251);
    for (const input of [utf8.encode("Hello, World!"), new Uint8Array(), big]) {
      assert.equal((await plugin.callWithBytes("process_data", input)) >>> 0, adler32(input));
    }
    assert.equal(adler32(utf8.encode("Hello, World!")), 0x1f9e046a);
  },
);

testEachIsolation(
  "C plugin: transform upper-cases through callBytes, after the configured prefix",
  READ_WASM,
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();

    await t.step("with a prefix longer than the plugin's first buffer", async () => {
      const prefix = "a prefix longer than thirty-two bytes: ";
      await using plugin = await load(runtime, { prefix });
      const out = await plugin.callBytes("transform", utf8.encode("mixed Case 123 é"));
      assert.equal(new TextDecoder().decode(out), `${prefix}MIXED CASE 123 é`);
    });

    await t.step("the heap starts over after each call", async () => {
      await using plugin = await load(runtime, { prefix: "> " });
      const input = new Uint8Array(256 * 1024).fill(0x61);
      for (let i = 0; i < 20; i++) {
        const out = await plugin.callBytes("transform", input);
        assert.equal(out.length, input.length + 2);
        assert.equal(out[2], 0x41);
      }
      const { currentMemoryBytes } = await plugin.metrics();
      assert.ok(currentMemoryBytes < 1024 * 1024, `memory grew to ${currentMemoryBytes} bytes`);
    });

    await t.step("without a prefix key", async () => {
      await using plugin = await load(runtime, {});
      const out = await plugin.callBytes("transform", utf8.encode("abc"));
      assert.equal(new TextDecoder().decode(out), "ABC");
    });

    await t.step("without the read_config capability", async () => {
      await using plugin = await load(runtime);
      await assert.rejects(
        plugin.callBytes("transform", utf8.encode("abc")),
        CapabilityDeniedError,
      );
    });
  },
);

Deno.test("C plugin: host_log reaches the plugin's logger", async () => {
  await using logs = await capturePluginLogs();
  const { records } = logs;
  await using runtime = inlineRuntime();
  await using plugin = await load(runtime, {});
  await plugin.callWithBytes("process_data", utf8.encode("x"));
  await plugin.callBytes("transform", utf8.encode("x"));
  assert.deepEqual(records.map((r) => [r.level, r.properties.message]), [
    ["debug", "process_data: computed the Adler-32 checksum"],
    ["warning", 'transform: no "prefix" in the config'],
    ["info", "transform: upper-cased the input"],
  ]);
  assert.deepEqual(records[0]?.category, ["wasmplug", "plugin", "c_plugin"]);
});

Deno.test("examples/c_plugin.ts prints what the plugin computed and logged", async () => {
  const lines: string[] = [];
  await main((line) => void lines.push(line));
  assert.match(lines[0] ?? "", /^Compiled c_plugin: \d+ bytes$/);
  assert.deepEqual(lines.slice(1), [
    "  [debug] process_data: computed the Adler-32 checksum",
    'process_data("Hello, World!") = 0x1f9e046a (Adler-32)',
    "  [info] transform: upper-cased the input",
    'transform("Hello, World!") = C says: HELLO, WORLD!',
  ]);
});

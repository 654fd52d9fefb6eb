import assert from "node:assert/strict";
import { testEachIsolation } from "../_helpers.ts";
import { assertTrapKind, withPlugin } from "../../testing.ts";

const wasm = await Deno.readFile(
  new URL("../../examples/rust_plugin/my_plugin.wasm", import.meta.url),
);

const READ_WASM = { permissions: { read: [new URL("../../examples/", import.meta.url).pathname] } };

testEachIsolation(
  "Rust plugin: add, process_data, and handle through callJson",
  READ_WASM,
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    const compiled = await runtime.compile("my_plugin", wasm);
    await using plugin = await runtime.createPlugin(compiled, { name: "my_plugin" });

    await t.step("the guide's add and process_data", async () => {
      assert.equal(await plugin.callI32("add", [2, 3]), 5);
      const input = new TextEncoder().encode("Hello, World!");
      assert.equal(await plugin.callWithBytes("process_data", input), 13);
    });

    await t.step("handle echoes any JSON value with its encoded length", async () => {
      for (const value of [{ name: "wasmplug", tags: ["a", "é"] }, 42, "text", null, [1, [2]]]) {
        const bytes = new TextEncoder().encode(JSON.stringify(value)).length;
        assert.deepEqual(await plugin.callJson("handle", value), { ok: true, bytes, echo: value });
      }
    });

    await t.step("outputs are freed: repeated large calls do not grow memory", async () => {
      const value = { blob: "x".repeat(200_000) };
      await plugin.callJson("handle", value);
      const before = (await plugin.metrics()).currentMemoryBytes;
      for (let i = 0; i < 20; i++) {
        const reply = await plugin.callJson("handle", value) as { bytes: number };
        assert.equal(reply.bytes, 200_011);
      }
      assert.equal((await plugin.metrics()).currentMemoryBytes, before);
    });
  },
);

Deno.test(
  "Rust plugin: testing helpers load the binary and name its failures",
  READ_WASM,
  async () => {
    // The package's own testing helpers, as a plugin author would use them.
    await withPlugin(wasm, { name: "my_plugin" }, async (plugin) => {
      assert.equal(await plugin.callI32("add", [40, 2]), 42);
      await assertTrapKind(plugin.callI32("add", [1]), "type_mismatch");
      await assertTrapKind(plugin.callJson("missing", {}), "invalid_function");
    });
  },
);

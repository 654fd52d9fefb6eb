/**
 * The guest SDKs' example plugins, as committed (`deno task build:guests`
 * rebuilds them): the same `greet` written in C (without libc, and with
 * wasi-libc), Rust and AssemblyScript, each run in both isolations through
 * `callJson` with config, storage, a log record, a host tool, a failure the
 * guest reports, and many calls in a row.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  GuestError,
  type PluginLogEntry,
  type WasmPlugin,
  type WasmPluginConfig,
  type WasmRuntime,
} from "../../mod.ts";
import { assertRejectsWith, bytesOf, testEachIsolation, textOf } from "../_helpers.ts";

const GUEST = new URL("../../guest/", import.meta.url);

/** Each SDK's example, and what its module needs beyond the SDK's capabilities. */
const EXAMPLES = [
  { sdk: "C", file: "c/example/greet.wasm", wasi: false },
  { sdk: "C with wasi-libc", file: "c/example/greet_wasi.wasm", wasi: true },
  { sdk: "Rust", file: "rust/example/greet.wasm", wasi: false },
  { sdk: "AssemblyScript", file: "assemblyscript/example/greet.wasm", wasi: false },
] as const;

const READ_GUEST = { permissions: { read: [GUEST.pathname] } };

/** The capabilities `greet` uses: config, storage, a tool. */
const GREET_CAPABILITIES = [
  Capability.ReadConfig,
  Capability.ReadState,
  Capability.WriteState,
  Capability.CallTool,
];

/** The host tool the examples call: wraps the text it gets in stars. */
function decorate(args: unknown): string {
  return `*${(args as { text: string }).text}*`;
}

/** Loads one example into `runtime` (initialized, as a wasi-libc reactor needs). */
async function loadExample(
  runtime: WasmRuntime,
  example: typeof EXAMPLES[number],
  config: WasmPluginConfig = {},
): Promise<WasmPlugin> {
  const compiled = await runtime.compile(`greet-${example.sdk}`, await readExample(example));
  const plugin = await runtime.createPlugin(compiled, {
    name: "greet",
    ...config,
    capabilities: [
      ...(config.capabilities ?? GREET_CAPABILITIES),
      ...(example.wasi ? [Capability.Wasi] : []),
    ],
  });
  await plugin.initialize();
  return plugin;
}

function readExample(example: typeof EXAMPLES[number]): Promise<Uint8Array> {
  return Deno.readFile(new URL(example.file, GUEST));
}

for (const example of EXAMPLES) {
  testEachIsolation(
    `${example.sdk} SDK: greet reads config, counts in storage, logs and calls a tool`,
    READ_GUEST,
    async (t, { createRuntime }) => {
      await using runtime = createRuntime();
      runtime.registerTool("decorate", decorate);

      await t.step("with a configured greeting", async () => {
        const logs: PluginLogEntry[] = [];
        await using plugin = await loadExample(runtime, example, {
          config: { greeting: "Hi" },
          onLog: (entry) => void logs.push(entry),
        });
        assert.deepEqual(await plugin.callJson("greet", { name: "Ada" }), {
          message: "*Hi, Ada!*",
          count: 1,
        });
        assert.deepEqual(await plugin.callJson("greet", { name: 'Bob "the" builder' }), {
          message: '*Hi, Bob "the" builder!*',
          count: 2,
        });
        assert.deepEqual(logs.map(({ level, message }) => [level, message]), [
          ["info", "greeting Ada (call 1)"],
          ["info", 'greeting Bob \\"the\\" builder (call 2)'],
        ]);
      });

      await t.step("storage is the plugin's own; the greeting defaults to Hello", async () => {
        await using plugin = await loadExample(runtime, example);
        assert.deepEqual(await plugin.callJson("greet", { name: "Eve" }), {
          message: "*Hello, Eve!*",
          count: 1,
        });
      });

      await t.step("an ill-formed name is read with U+FFFD, as the host reads text", async () => {
        // The AssemblyScript example decoded with String.UTF8.decode: it stopped at the 0xFF
        // and answered missing "name".
        await using plugin = await loadExample(runtime, example);
        const input = new Uint8Array([...bytesOf('{"name":"A'), 0xff, ...bytesOf('B"}')]);
        assert.deepEqual(JSON.parse(textOf(await plugin.callBytes("greet", input))), {
          message: "*Hello, A\uFFFDB!*",
          count: 1,
        });
      });

      await t.step("answers longer than the SDK's first buffer are asked for again", async () => {
        const greeting = `Good "day" \\ ${"to you ".repeat(100)}`;
        await using plugin = await loadExample(runtime, example, { config: { greeting } });
        assert.ok(greeting.length > 512);
        assert.deepEqual(await plugin.callJson("greet", { name: "Ada" }), {
          message: `*${greeting}, Ada!*`,
          count: 1,
        });
      });
    },
  );

  testEachIsolation(
    `${example.sdk} SDK: a failed function reaches the caller as a GuestError`,
    READ_GUEST,
    async (t, { createRuntime }) => {
      await using runtime = createRuntime();

      await t.step("with the guest's message, and the plugin stays usable", async () => {
        runtime.registerTool("decorate", decorate);
        await using plugin = await loadExample(runtime, example);
        const err = await assertRejectsWith(
          () => plugin.callJson("greet", { nom: "Ada" }),
          GuestError,
          { kind: "guest", functionName: "greet", message: 'missing "name"' },
        );
        assert.equal(err.name, "GuestError");
        assert.deepEqual(await plugin.callJson("greet", { name: "Ada" }), {
          message: "*Hello, Ada!*",
          count: 1,
        });
        assert.equal(plugin.state, "ready");
      });

      await t.step("a tool that is not registered", async () => {
        await using bare = createRuntime();
        await using plugin = await loadExample(bare, example);
        await assertRejectsWith(() => plugin.callJson("greet", { name: "Ada" }), GuestError, {
          message: 'no tool "decorate"',
        });
      });

      await t.step("a capability the plugin lacks is still the host's error", async () => {
        await using plugin = await loadExample(runtime, example, {
          capabilities: [Capability.ReadConfig, Capability.ReadState, Capability.WriteState],
        });
        await assertRejectsWith(
          () => plugin.callJson("greet", { name: "Ada" }),
          CapabilityDeniedError,
          { capability: Capability.CallTool },
        );
      });
    },
  );

  testEachIsolation(
    `${example.sdk} SDK: many calls in a row keep the same memory`,
    READ_GUEST,
    async (_t, { createRuntime }) => {
      await using runtime = createRuntime();
      runtime.registerTool("decorate", decorate);
      await using plugin = await loadExample(runtime, example, {
        config: { greeting: "Hi ".repeat(200) },
      });
      // 64 KiB names: each call allocates its input, the tool's arguments and
      // answer and its output, several times over; a leak would add megabytes.
      const name = "x".repeat(64 * 1024);
      const round = async (): Promise<void> => {
        for (let i = 0; i < 10; i++) {
          const reply = await plugin.callJson("greet", { name }) as { message: string };
          assert.equal(reply.message.length, 2 + 600 + 2 + name.length + 1);
          await assert.rejects(plugin.callJson("greet", { name: "" }), GuestError);
        }
      };
      await round();
      await round();
      const settled = (await plugin.metrics()).currentMemoryBytes;
      for (let i = 0; i < 8; i++) await round();
      const after = (await plugin.metrics()).currentMemoryBytes;
      assert.equal(after, settled, `memory grew from ${settled} to ${after} bytes in 160 calls`);
    },
  );
}

for (const example of EXAMPLES) {
  testEachIsolation(
    `${example.sdk} SDK: a thousand failed calls leave the plugin usable`,
    READ_GUEST,
    async (_t, { createRuntime }) => {
      await using runtime = createRuntime();
      // Each failure unwinds the guest from inside the tool's call, without its epilogues:
      // the C and AssemblyScript guests' stack pointers kept the frames' space, and after
      // some 500 failures every call failed (out of bounds, or call depth).
      let failing = true;
      runtime.registerTool("decorate", (args) => {
        if (failing) throw new Error("the tool is down");
        return decorate(args);
      });
      await using plugin = await loadExample(runtime, example);
      for (let i = 0; i < 1000; i++) {
        await assertRejectsWith(() => plugin.callJson("greet", { name: "Ada" }), Error);
      }
      failing = false;
      const reply = await plugin.callJson("greet", { name: "Ada" }) as { message: string };
      assert.equal(reply.message, "*Hello, Ada!*");
    },
  );
}

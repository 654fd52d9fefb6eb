import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  CompilationError,
  InvalidFunctionError,
  PluginManager,
  type PluginManifest,
  ResourceLimitError,
} from "../mod.ts";
import { parseManifest } from "../src/compile/_plugin_manifest.ts";
import { assertRejectsWith, inlineRuntime } from "./_helpers.ts";

const GREETER = '(func (export "greet_len") (result i32) i32.const 13)';

/** A module that embeds `manifest` (raw JSON text) in a `wasmplug.manifest` section. */
function withManifest(json: string): string {
  const escaped = json.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
  return `(module ${GREETER} (@custom "wasmplug.manifest" "${escaped}"))`;
}

const MANIFEST: PluginManifest = {
  name: "greeter",
  version: "1.2.0",
  description: "Says hello",
  capabilities: [Capability.ReadConfig],
  exports: ["greet_len"],
  limits: { maxMemoryPages: 4 },
};

Deno.test("parseManifest() checks every field", async (t) => {
  await t.step("a complete manifest is accepted and frozen", () => {
    const manifest = parseManifest(MANIFEST);
    assert.deepEqual(manifest, MANIFEST);
    assert.ok(Object.isFrozen(manifest));
  });
  const bad: [string, unknown, RegExp][] = [
    ["not an object", [], /expected a JSON object/],
    ["no name", { version: "1" }, /'name' must be a non-empty string/],
    ["an unknown field", { name: "a", color: "red" }, /unknown field "color"/],
    ["a version that is not a string", { name: "a", version: 1 }, /'version' must be a string/],
    ["exports that are not strings", { name: "a", exports: [1] }, /'exports' must be an array/],
    ["an unknown capability", { name: "a", capabilities: ["root"] }, /unknown capability "root"/],
    ["limits that are not an object", { name: "a", limits: 3 }, /'limits' must be an object/],
    // The name becomes a logger category: a newline in it wrote a forged line into the log.
    ["a name with a line break", { name: "calc\n12:00 ERR forged" }, /printable text/],
    ["a name with a control character", { name: "a\u001b[31m" }, /printable text/],
    // It went into log categories as it was, and turned the rest of their lines around.
    ["a name with a bidi override", { name: "calc\u202e gnissecorp" }, /printable text/],
    ["a name with a bidi isolate", { name: "calc\u2066x" }, /printable text/],
    ["a name with a right-to-left mark", { name: "calc\u200fx" }, /printable text/],
    ["a name with a line separator", { name: "a\u2028b" }, /printable text/],
    ["a name with a lone surrogate", { name: "a\ud800" }, /printable text/],
    ["a name of 129 characters", { name: "n".repeat(129) }, /at most 128 characters/],
    // One plugin could pass for another in logs, metrics and the dashboard.
    ["a name of spaces only", { name: "   " }, /printable text/],
    ["a name with a zero-width space", { name: "calc\u200b" }, /printable text/],
    ["a name with a soft hyphen", { name: "ca\u00adlc" }, /printable text/],
    ["a name with a BOM", { name: "ca\ufefflc" }, /printable text/],
    ["a name of a Hangul filler", { name: "\u3164" }, /printable text/],
    ["a name with a tag character", { name: "calc\u{e0041}" }, /printable text/],
    ["a name with a joiner after ASCII", { name: "calc\u200d" }, /printable text/],
    // Hidden characters only where they spell something: look-alikes of "café", "日本".
    ["a joiner ending a Latin name", { name: "café\u200d" }, /printable text/],
    ["tags after a letter", { name: "café\u{e0061}\u{e0064}\u{e007f}" }, /printable text/],
    ["a joiner between Han letters", { name: "日\u200d本" }, /printable text/],
    ["joiners in a row", { name: "é\u200d\u200d\u200d" }, /printable text/],
    ["a selector after a Latin letter", { name: "calé\ufe00" }, /printable text/],
    ["five marks on one letter", { name: "a\u0301\u0301\u0301\u0301\u0301" }, /printable/],
    ["a combining mark alone", { name: "\u0301" }, /printable text/],
    ["a name with a Mongolian selector", { name: "calc\u180f" }, /printable text/],
    ["Mongolian selectors in a row", { name: "\u1820\u180b\u180b" }, /printable text/],
    ["a name with a shorthand format control", { name: "calc\u{1bca0}" }, /printable text/],
    ["a name with an ignorable tag-block code", { name: "calc\u{e01f0}" }, /printable text/],
    ["a name of a blank Braille pattern", { name: "\u2800" }, /printable text/],
    // A plugin cannot limit how many plugins its runtime holds (a config's is refused too).
    ["limits with maxInstances", { name: "a", limits: { maxInstances: 1 } }, /maxInstances/],
  ];
  await t.step("a name of 128 printable characters, Unicode too, is fine", () => {
    assert.equal(parseManifest({ name: "é".repeat(128) }).name, "é".repeat(128));
    // Characters, not UTF-16 units: 100 emoji are 200 units.
    assert.equal(parseManifest({ name: "😀".repeat(100) }).name, "😀".repeat(100));
  });
  await t.step("joiners, selectors and tags that spell a name are fine", () => {
    // Emoji sequences, Persian's zero-width non-joiner, an Indic conjunct, a keycap, a flag.
    for (
      const name of [
        "👨‍👩‍👧",
        "🏳️‍🌈",
        "👩‍💻 dev",
        "می‌خواهم",
        "ශ්‍රී ලංකා",
        "क्‍ष",
        "ന്‍",
        "plugin 1️⃣",
        "🏴󠁧󠁢󠁥󠁮󠁧󠁿 weather",
        "葛\u{e0100}飾",
        "ᠮᠣᠩᠭᠣᠯ\u180b",
        "tiếng Việt",
        "کتابِ‌من",
        "കാര്‍-plugin",
      ]
    ) {
      assert.equal(parseManifest({ name }).name, name);
    }
  });
  for (const [what, value, message] of bad) {
    await t.step(`${what} is a TypeError`, () => {
      assert.throws(() => parseManifest(value), (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

Deno.test("A manifest embedded in a wasmplug.manifest section", async (t) => {
  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat("greeter", withManifest(JSON.stringify(MANIFEST)));

  await t.step("is read at compile time", () => {
    assert.deepEqual(compiled.manifest, MANIFEST);
  });

  await t.step("names the plugin and narrows its limits when the grants match", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      capabilities: [Capability.ReadConfig],
    });
    assert.equal(plugin.name, "greeter");
    assert.equal(plugin.limits.maxMemoryPages, 4);
    assert.equal(plugin.manifest?.version, "1.2.0");
    assert.equal(await plugin.callI32("greet_len"), 13);
  });

  await t.step("fails to load when a requested capability is not granted", async () => {
    const error = await assertRejectsWith(
      () => runtime.createPlugin(compiled),
      CapabilityDeniedError,
    );
    assert.equal(error.capability, Capability.ReadConfig);
    assert.equal(runtime.pluginCount, 0);
  });

  await t.step("an unknown limit's key is quoted, escaped and cut in the message", async () => {
    // The guest's key: it wrote raw lines into the message, a megabyte of them, after a second
    // of looking for the key it might have meant.
    const key = `\n2026-01-01 [ERR] forged\u001b[2K${"q".repeat(1_000_000)}`;
    const manifest = JSON.stringify({ name: "a", limits: { [key]: 1 } });
    const error = await assertRejectsWith(
      () => runtime.compileWat("forged", withManifest(manifest)),
      CompilationError,
    );
    assert.ok(error.message.length < 1000, `${error.message.length} characters`);
    assert.ok(!error.message.includes("\n") && !error.message.includes("\u001b"), error.message);
    assert.match(error.message, /unknown key "\\n2026-01-01 \[ERR\] forged\\u001b\[2Kqqq/);
  });

  await t.step("a malformed section fails compilation", async () => {
    const error = await assertRejectsWith(
      () => runtime.compileWat("broken", withManifest("{not json")),
      CompilationError,
    );
    assert.match(error.message, /wasmplug\.manifest/);
  });
});

Deno.test("A manifest given in the config", async (t) => {
  await using runtime = inlineRuntime({ resourceLimits: { maxMemoryPages: 8 } });
  const compiled = await runtime.compileWat("plain", `(module ${GREETER})`);

  await t.step("a promised export that is missing is an InvalidFunctionError", async () => {
    const error = await assertRejectsWith(
      () => runtime.createPlugin(compiled, { manifest: { name: "liar", exports: ["greet", "x"] } }),
      InvalidFunctionError,
    );
    assert.equal(error.functionName, "greet");
  });

  await t.step("limits above the host's are a ResourceLimitError", async () => {
    const error = await assertRejectsWith(
      () =>
        runtime.createPlugin(compiled, {
          manifest: { name: "greedy", limits: { maxMemoryPages: 16 } },
        }),
      ResourceLimitError,
    );
    assert.equal(error.limit, "maxMemoryPages");
  });

  await t.step("a manager loads nothing when the manifest does not fit", async () => {
    await using manager = new PluginManager(runtime);
    await assertRejectsWith(
      () => manager.loadWat(`(module ${GREETER})`, { manifest: { name: "x", exports: ["nope"] } }),
      InvalidFunctionError,
    );
    assert.deepEqual(manager.listPlugins(), []);
    assert.equal(manager.stats().totalLoaded, 0);
    assert.equal(runtime.pluginCount, 0);
  });
});

/**
 * Bugs the API fuzzer found, each as the smallest test that failed before
 * its fix.
 */
import assert from "node:assert/strict";
import { CompilationError, MemoryOutOfBoundsError, TypeMismatchError } from "../../mod.ts";
import { assertRejectsWith, bytesOf, inlineRuntime, testEachIsolation } from "../_helpers.ts";
import { BYTES_WAT, CALLS_WAT } from "../fixtures/wat.ts";
import { wat } from "../instrument/_wat.ts";
import { REFS_WAT, withManifest } from "./_corpus.ts";

testEachIsolation(
  "Concurrent bytes calls to one plugin run one after the other and leave it callable",
  {
    permissions: "none",
  },
  async (t, { loadPlugin }) => {
    // Each caller found the plugin idle before either marked it running; the
    // second then saved "running" as the state to return to, and the plugin
    // stayed "running" for good: every later call and stop() waited forever.
    await using loaded = await loadPlugin(BYTES_WAT);
    const { plugin } = loaded;

    await t.step("each caller gets its own output", async () => {
      const outputs = await Promise.all([
        plugin.callBytes("echo", bytesOf("one")),
        plugin.callBytes("echo", bytesOf("two")),
        plugin.callWithBytes("sum", new Uint8Array([1, 2, 3])),
        plugin.callJson("echo", { three: 3 }),
      ]);
      assert.deepEqual(outputs, [bytesOf("one"), bytesOf("two"), 6, { three: 3 }]);
    });

    await t.step("the plugin is idle again and answers the next call", async () => {
      assert.equal(plugin.state, "created");
      assert.equal(await plugin.callI32("sum", [0, 0]), 0);
    });

    await t.step("failed bytes calls at once leave it idle too", async () => {
      const results = await Promise.allSettled([
        plugin.callBytes("sum", bytesOf("wrong result type")),
        plugin.callWithBytes("echo", bytesOf("wrong result type")),
      ]);
      assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
      assert.equal(plugin.state, "created");
      assert.equal(await plugin.callI32("sum", [0, 0]), 0);
    });
  },
);

testEachIsolation(
  "readMemory() and writeMemory() reject an offset or length that is not a number with a TypeError",
  {
    permissions: "none",
  },
  async (t, { loadPlugin }) => {
    // In worker isolation such a value corrupted the message to the worker,
    // which answered with a plain Error ("Unexpected message 0 from the host").
    await using loaded = await loadPlugin(BYTES_WAT);
    const { plugin } = loaded;
    for (const value of [Symbol("offset"), {}, "8", null, 8n]) {
      await t.step(`given ${typeof value} ${String(value).slice(0, 16)}`, async () => {
        await assertRejectsWith(() => plugin.readMemory(value as never, 4), TypeError);
        await assertRejectsWith(() => plugin.readMemory(0, value as never), TypeError);
        await assertRejectsWith(() => plugin.writeMemory(value as never, bytesOf("x")), TypeError);
      });
    }
    await t.step("numbers out of range stay a MemoryOutOfBoundsError", async () => {
      for (const offset of [-1, NaN, 2 ** 32, 1.5]) {
        await assertRejectsWith(() => plugin.readMemory(offset, 1), MemoryOutOfBoundsError);
      }
      assert.deepEqual(await plugin.readMemory(1, 3), new Uint8Array([0xfe, 0x7b, 0x78]));
    });
  },
);

testEachIsolation(
  "An object passed to a reference parameter reaches the guest inline, and is refused in a worker",
  {
    permissions: "none",
  },
  async (t, { isolation, loadPlugin }) => {
    // A worker got an empty Uint8Array instead, and a large array failed with
    // the channel's RangeError ("offset is out of bounds").
    await using loaded = await loadPlugin(REFS_WAT);
    const { plugin } = loaded;
    const values: [string, unknown][] = [
      ["an object", { a: 1 }],
      ["an array larger than a channel message", new Array(100_000).fill(1)],
      ["a symbol", Symbol("ref")],
      // The channel speaks UTF-8: it arrived as U+FFFD.
      ["a string with a lone surrogate", "a\ud800"],
    ];
    for (const [what, value] of values) {
      await t.step(
        `${what}: ${isolation === "inline" ? "the same value back" : "TypeMismatchError"}`,
        async () => {
          if (isolation === "inline") {
            assert.equal((await plugin.call("ext", [value]))[0], value);
          } else {
            await assertRejectsWith(() => plugin.call("ext", [value]), TypeMismatchError);
          }
        },
      );
    }
    await t.step("strings and null cross either way", async () => {
      assert.deepEqual(await plugin.call("ext", ["text"]), ["text"]);
      assert.deepEqual(await plugin.call("is_null", [null]), [1]);
    });
    await t.step("a function for a funcref parameter: TypeMismatchError", async () => {
      // Inline it was a TrapError carrying the engine's TypeError.
      await assertRejectsWith(() => plugin.call("func", [() => 1]), TypeMismatchError, {
        kind: "type_mismatch",
      });
    });
  },
);

Deno.test("A module whose embedded manifest asks for invalid limits fails to compile", {
  permissions: "none",
}, async (t) => {
  // The manifest passed compile() and failed createPlugin() with a TypeError,
  // the answer to a bad argument, though the module is the guest's.
  await using runtime = inlineRuntime();
  for (
    const [what, limits] of [
      ["an unknown limit", '{"maxDuel":1}'],
      ["a limit that is not a number", '{"maxFuel":"lots"}'],
      ["a limit out of range", '{"maxMemoryPages":-1}'],
    ]
  ) {
    await t.step(`${what}: CompilationError`, async () => {
      const bytes = withManifest(wat(CALLS_WAT), `{"name":"greedy","limits":${limits}}`);
      await assertRejectsWith(() => runtime.compile("greedy", bytes), CompilationError);
    });
  }
  await t.step("in the config's manifest: a TypeError, as for any bad config", async () => {
    const compiled = await runtime.compileWat("calls", CALLS_WAT);
    const manifest = { name: "m", limits: { maxDuel: 1 } as never };
    await assertRejectsWith(() => runtime.createPlugin(compiled, { manifest }), TypeError);
  });
});

testEachIsolation("Arguments outside their TypeScript type are TypeErrors with our own message", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  // Before: the engine's "Cannot convert a Symbol value to a string", "Cannot
  // destructure property 'signal'…", options of the wrong type ignored, and a
  // synchronous throw from stop(null).
  await using loaded = await loadPlugin(CALLS_WAT);
  const { plugin } = loaded;
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ["a symbol as the export name", () => plugin.call(Symbol("f") as never), /export names/],
    ["null call options", () => plugin.call("add", [1, 2], null as never), /options null/],
    ["a number as call options", () => plugin.call("add", [1, 2], 5 as never), /options number 5/],
    [
      "a signal that is not one",
      () => plugin.call("add", [1, 2], { signal: {} as never }),
      /signal/,
    ],
    ["a number as bytes-call name", () => plugin.callBytes(7 as never, bytesOf("")), /export/],
    ["null stop options", () => plugin.stop(null as never), /expected options/],
    ["a typo in the stop options", () => plugin.stop({ abrt: true } as never), /'abrt'.*'abort'/],
    ["a stop abort that is no boolean", () => plugin.stop({ abort: "yes" } as never), /boolean/],
    ["null run options", () => plugin.run(null as never), /run options: expected an object/],
    ["a typo in the run options", () => plugin.run({ stdn: 1 } as never), /'stdn'.*'stdin'/],
    ["a bigint timeout", () => plugin.call("add", [1, 2], { timeoutMs: 5n as never }), /bigint 5n/],
  ];
  for (const [what, run, message] of cases) {
    await t.step(`${what}: a rejected TypeError`, async () => {
      const error = await assertRejectsWith(run, TypeError);
      assert.match(error.message, message);
    });
  }
  await t.step("the plugin answers the next call", async () => {
    assert.equal(await plugin.callI32("add", [1, 2]), 3);
  });
});

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  CompilationError,
  type CompiledModule,
  Linker,
  OutOfMemoryError,
  PluginStateError,
  type RuntimeConfig,
  type ToolFunction,
  type WasmPluginConfig,
  WasmRuntime,
} from "../mod.ts";
import {
  assertRejectsWith,
  assertThrowsWith,
  inlineRuntime,
  settlesWithin,
  testEachIsolation,
} from "./_helpers.ts";
import { answerBinary, HEADER } from "./fixtures/binary.ts";
import { CALLS_WAT } from "./fixtures/wat.ts";
import { workerOptionsOfProcess } from "../src/worker/_worker_options.ts";
import { WAT_CACHE_VERSION } from "../src/compile/_wat.ts";
import { artifactOf } from "../src/compile/_artifact.ts";

const ANSWER_WAT = '(module (func (export "answer") (result i32) i32.const 42))';

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("new WasmRuntime() resolves and validates its config", {
  permissions: "none",
}, async (t) => {
  await t.step("defaults", async () => {
    await using runtime = new WasmRuntime();
    assert.deepEqual({ ...runtime.execution }, {
      fuelMetering: true,
      epochInterruption: true,
      isolation: "worker",
      // Narrow when this process is known to run with --unstable-worker-options.
      workerPermissions: workerOptionsOfProcess() === "enabled" ? "narrow" : "inherit",
    });
    assert.equal(runtime.limits.maxMemoryPages, 256);
    assert.deepEqual(runtime.cacheStats(), { hits: 0, misses: 0, entries: 0, hitRate: 0 });
    assert.equal(runtime.pluginCount, 0);
  });

  await t.step("given settings and limits are kept", async () => {
    await using runtime = new WasmRuntime({
      execution: { fuelMetering: false, epochInterruption: false, isolation: "inline" },
      resourceLimits: { maxMemoryPages: 16, maxExecutionTimeMs: 1000 },
    });
    assert.equal(runtime.execution.fuelMetering, false);
    assert.equal(runtime.limits.maxMemoryPages, 16);
    assert.equal(runtime.limits.maxExecutionTimeMs, 1000);
    assert.equal(runtime.limits.maxInstances, 10);
  });

  const bad: [string, unknown, typeof TypeError | typeof RangeError, RegExp][] = [
    ["a non-object config", 42, TypeError, /expected a config object, received number 42/],
    [
      "a non-boolean fuelMetering",
      { execution: { fuelMetering: "yes" } },
      TypeError,
      /'execution\.fuelMetering': expected a boolean, received string "yes"/,
    ],
    [
      "an unknown isolation",
      { execution: { isolation: "thread" } },
      TypeError,
      /'execution\.isolation': expected "worker" or "inline", received string "thread"/,
    ],
    ["a cache of the wrong type", { cache: "yes" }, TypeError, /'cache': expected a boolean/],
    ["a negative cache size", { cache: { maxEntries: -1 } }, RangeError, /'cache\.maxEntries'/],
    ["a fractional cache size", { cache: { maxEntries: 1.5 } }, RangeError, /non-negative/],
    ["a negative cache weight", { cache: { maxBytes: -1 } }, RangeError, /'cache\.maxBytes'/],
    ["a cache weight not a number", { cache: { maxBytes: "1 GB" as never } }, RangeError, /bytes/],
    ["a non-string cache dir", { cache: { dir: 5 } }, TypeError, /'cache\.dir': expected a string/],
    // The cache's files would go to the root of the file system.
    [
      "an empty cache dir",
      { cache: { dir: "" } },
      TypeError,
      /'cache\.dir' = "": it names no folder/,
    ],
    [
      "a cache dir with a NUL",
      { cache: { dir: "a\0b" } },
      TypeError,
      /'cache\.dir' = "a\\u0000b": a path cannot hold a NUL character/,
    ],
    ["a limit out of range", { resourceLimits: { maxCallDepth: 0 } }, RangeError, /maxCallDepth/],
  ];
  for (const [what, config, type, message] of bad) {
    await t.step(`${type.name} for ${what}`, () => {
      const error = assertThrowsWith(() => new WasmRuntime(config as RuntimeConfig), type);
      assert.match(error.message, message);
    });
  }
});

testEachIsolation("WasmRuntime.compile() validates binary modules", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();

  await t.step("the smallest module compiles, from a Uint8Array or an ArrayBuffer", async () => {
    const bytes = new Uint8Array(HEADER);
    const compiled = await runtime.compile("empty", bytes);
    assert.equal(compiled.name, "empty");
    assert.equal(compiled.sizeBytes, 8);
    assert.equal(compiled.hash, await sha256Hex(bytes));
    assert.deepEqual(compiled.imports, []);
    assert.deepEqual(compiled.exports, []);
    assert.equal((await runtime.compile("again", bytes.buffer)).hash, compiled.hash);
  });

  await t.step("the input is copied: changing it afterwards changes nothing", async () => {
    const bytes = answerBinary();
    const compiled = await runtime.compile("answer", bytes);
    bytes.fill(0);
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callI32("answer"), 42);
    assert.equal(compiled.hash, await sha256Hex(answerBinary()));
  });

  const malformed: [string, number[], number][] = [
    ["a wrong magic number", [0x01, 0x02, 0x03, 0x04, 0x01, 0x00, 0x00, 0x00], 0],
    ["a wrong version", [0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00], 4],
    ["a truncated header", [0x00, 0x61, 0x73], 0],
    ["a section past the end", [...HEADER, 0x0a, 0x02], 8],
    ["a truncated section", [...HEADER, 0x01, 0x05, 0x01], 8],
    ["an unknown section id", [...HEADER, 0x20, 0x00], 10],
    // type () -> i32, one function, whose body is just `end`: nothing on the stack.
    [
      "a function body that does not validate",
      [...HEADER, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 0x0a, 4, 1, 2, 0, 0x0b],
      24,
    ],
    ["empty input", [], 0],
  ];
  for (const [what, bytes, offset] of malformed) {
    await t.step(`${what} is a CompilationError at offset ${offset}`, async () => {
      const error = await assertRejectsWith(
        () => runtime.compile("bad", new Uint8Array(bytes)),
        CompilationError,
        { kind: "compilation", offset, line: undefined },
      );
      assert.match(error.message, /^Cannot compile module: /);
      assert.ok(error.cause instanceof Error);
    });
  }

  await t.step("a non-binary argument is a TypeError", async () => {
    await assertRejectsWith(
      () => runtime.compile("text", "(module)" as unknown as Uint8Array),
      TypeError,
      {
        message:
          'Cannot compile "text": expected a Uint8Array or an ArrayBuffer, received string "(module)"',
      },
    );
    await assertRejectsWith(
      () => runtime.compile(7 as unknown as string, new Uint8Array(HEADER)),
      TypeError,
    );
  });
});

Deno.test("WasmRuntime.compileWat() compiles WebAssembly text", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();

  await t.step("describes exports and imports with their signatures", async () => {
    const compiled = await runtime.compileWat(
      "described",
      `(module
        (import "env" "log" (func (param i32)))
        (memory (export "mem") 1)
        (func (export "swap") (param i32 i64) (result i64 i32) local.get 1 local.get 0))`,
    );
    assert.deepEqual(compiled.imports, [
      {
        module: "env",
        name: "log",
        kind: "function",
        params: ["i32"],
        results: [],
        capability: "call_host_function",
      },
    ]);
    assert.deepEqual(compiled.exports, [
      { name: "mem", kind: "memory" },
      { name: "swap", kind: "function", params: ["i32", "i64"], results: ["i64", "i32"] },
    ]);
    assert.ok(Object.isFrozen(compiled));
    assert.ok(Object.isFrozen(compiled.exports));
    assert.match(compiled.hash, /^[0-9a-f]{64}$/);
    assert.ok(compiled.compileTimeMs >= 0);
  });

  await t.step("string literals are UTF-8, names and data alike", async () => {
    // Given to wabt as a string, each character became its low byte ("é" was 0xe9).
    const compiled = await runtime.compileWat(
      "utf8",
      `(module (memory (export "mémoire") 1) (data (i32.const 0) "é·\u{2028}"))`,
    );
    assert.deepEqual(compiled.exports, [{ name: "mémoire", kind: "memory" }]);
    await using plugin = await runtime.createPlugin(compiled);
    assert.deepEqual(await plugin.readMemory(0, 7), new TextEncoder().encode("é·\u2028"));
  });

  await t.step("a syntax error is a CompilationError with line and column", async () => {
    const error = await assertRejectsWith(
      () =>
        runtime.compileWat("typo", '(module\n  (func (export "f") (result i32)\n    i32.konst 1))'),
      CompilationError,
      { line: 3, column: 5, offset: undefined },
    );
    assert.match(error.message, /^Cannot compile WAT "typo" at line 3, column 5: .*i32\.konst/);
  });

  await t.step("a validation error is a CompilationError with line and column", async () => {
    const error = await assertRejectsWith(
      () => runtime.compileWat("types", '(module (func (export "f") (result i32) i64.const 1))'),
      CompilationError,
      { line: 1 },
    );
    assert.match(error.message, /type mismatch/);
  });

  await t.step("the position is wabt's, whatever the name says", async () => {
    // wabt's messages begin with the file name it was given (the name): one holding
    // ":1:1: error: " chose the line and column, one holding a line break escaped nothing.
    for (const name of ["x:1:1: error: all good", "a\nb"]) {
      const error = await assertRejectsWith(
        () => runtime.compileWat(name, '(module\n  (func (export "f") (result i32)\n    nop))'),
        CompilationError,
        { line: 3, column: 5 },
      );
      assert.ok(error.message.startsWith(`Cannot compile WAT ${JSON.stringify(name)} at line 3`));
    }
  });

  await t.step("text with a lone surrogate is a CompilationError, not U+FFFD", async () => {
    const error = await assertRejectsWith(
      () => runtime.compileWat("lone", '(module (memory 1) (data (i32.const 0) "\ud800"))'),
      CompilationError,
    );
    assert.match(error.message, /lone surrogate/);
  });

  await t.step("a name with a lone surrogate is a TypeError", async () => {
    // It names the module's plugins by default: "t\ud800" and "t\udc00" shared /metrics labels.
    await assertRejectsWith(() => runtime.compileWat("t\ud800", "(module)"), TypeError);
  });

  await t.step("text that is neither a string nor bytes is a TypeError", async () => {
    await assertRejectsWith(
      () => runtime.compileWat("list", [40, 41] as unknown as string),
      TypeError,
      { message: 'Cannot compile "list": expected WAT text, received an array' },
    );
  });

  await t.step("bytes are copied whole, whatever buffer they view", async () => {
    // A Node Buffer's slice is a view into an 8 KiB pool: wabt read the pool's stale bytes
    // after the text, and the caller could change the text during the compile.
    const text = '(module (func (export "f") (result i32) i32.const 7))';
    const pooled = Buffer.from(`\ufeff${text}`);
    const compiling = runtime.compileWat("pooled", pooled);
    pooled.fill(0x20);
    const compiled = await compiling;
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callI32("f"), 7);
  });

  await t.step("UTF-16 bytes say so; wabt's quoted tokens are escaped", async () => {
    const utf16 = new Uint8Array([0xff, 0xfe, 0x28, 0, 0x29, 0]);
    const error = await assertRejectsWith(() => runtime.compileWat("u16", utf16), CompilationError);
    assert.match(error.message, /UTF-16 text/);
    const forged = await assertRejectsWith(
      () => runtime.compileWat("t", '(module $"evil\u001b[31m\u202e")'),
      CompilationError,
    );
    assert.ok(!forged.message.includes("\u001b") && !forged.message.includes("\u202e"));
  });

  await t.step("bytes are read as wat2wasm reads them, a leading BOM dropped", async () => {
    // Decoded as UTF-8 first, a Latin-1 comment's byte and a string's raw bytes became
    // U+FFFD (EF BF BD); and a string with a BOM failed at line 1, column 1.
    const source = new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      ...new TextEncoder().encode(";; caf"),
      0xe9,
      0x0a,
      ...new TextEncoder().encode('(module (memory (export "memory") 1) (data (i32.const 0) "'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"))'),
    ]);
    for (const text of [source, `\ufeff(module (memory (export "memory") 1))`]) {
      const compiled = await runtime.compileWat("raw", text);
      await using plugin = await runtime.createPlugin(compiled);
      if (text === source) {
        assert.deepEqual(await plugin.readMemory(0, 2), new Uint8Array([255, 254]));
      }
    }
  });
});

testEachIsolation("WasmRuntime caches compiled modules by content", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await t.step("the same content under another name is a hit", async () => {
    await using runtime = createRuntime();
    const a = await runtime.compileWat("a", CALLS_WAT);
    const b = await runtime.compileWat("b", CALLS_WAT);
    assert.equal(a.hash, b.hash);
    assert.deepEqual([a.name, b.name], ["a", "b"]);
    assert.deepEqual(runtime.cacheStats(), { hits: 1, misses: 1, entries: 1, hitRate: 0.5 });
    await runtime.compileWat("c", CALLS_WAT);
    assert.equal(runtime.cacheStats().hitRate, 2 / 3);
  });

  await t.step("cache: false compiles every time and keeps nothing", async () => {
    await using runtime = createRuntime({ cache: false });
    await runtime.compileWat("a", CALLS_WAT);
    await runtime.compileWat("b", CALLS_WAT);
    assert.deepEqual(runtime.cacheStats(), { hits: 0, misses: 2, entries: 0, hitRate: 0 });
  });

  await t.step("maxEntries evicts the least recently used module", async () => {
    await using runtime = createRuntime({ cache: { maxEntries: 2 } });
    const module = (n: number): string => `(module (func (export "f${n}")))`;
    for (const n of [1, 2, 1, 3]) await runtime.compileWat(`m${n}`, module(n));
    // 1 was used after 2, so 2 went when 3 came in.
    assert.deepEqual(runtime.cacheStats(), { hits: 1, misses: 3, entries: 2, hitRate: 0.25 });
    await runtime.compileWat("m1", module(1));
    assert.equal(runtime.cacheStats().hits, 2);
    await runtime.compileWat("m2", module(2));
    assert.equal(runtime.cacheStats().misses, 4);
  });

  await t.step("maxBytes bounds the bytes the cached modules hold", async () => {
    // By count alone, 128 modules of a megabyte each kept some 15 GB in the engine.
    const module = (n: number): string =>
      `(module (func (export "f${n}") (result i32) i32.const 1))`;
    const weight = async (): Promise<number> => {
      await using probe = createRuntime();
      return artifactOf(await probe.compileWat("probe", module(0))).held.bytes;
    };
    const one = await weight();
    await using runtime = createRuntime({ cache: { maxBytes: one * 1.5 } });
    await runtime.compileWat("m1", module(1));
    await runtime.compileWat("m2", module(2));
    assert.equal(runtime.cacheStats().entries, 1);
    await runtime.compileWat("m2", module(2));
    assert.equal(runtime.cacheStats().hits, 1);
    await runtime.compileWat("m1", module(1));
    assert.equal(runtime.cacheStats().misses, 3);
    await using none = createRuntime({ cache: { maxBytes: 0 } });
    await none.compileWat("m1", module(1));
    assert.equal(none.cacheStats().entries, 0);
    // A module grows as plugins with other limits prepare it again: weighed again when used.
    await using growing = createRuntime({ cache: { maxBytes: one * 1.5 } });
    const compiled = await growing.compileWat("m1", module(1));
    const limits = [2, 3, 4].map((maxMemoryPages) => ({ resourceLimits: { maxMemoryPages } }));
    for (const config of limits) await (await growing.createPlugin(compiled, config)).stop();
    assert.equal(growing.cacheStats().entries, 1);
    await growing.compileWat("m1", module(1));
    assert.equal(growing.cacheStats().entries, 0);
  });

  await t.step("a compile that ends after close() leaves the cache empty", async () => {
    const runtime = createRuntime();
    const compiling = runtime.compileWat("late", `(module (func (export "late")))`);
    await runtime.close();
    await compiling.catch(() => {});
    assert.equal(runtime.cacheStats().entries, 0);
  });

  await t.step("compiles of the same bytes that overlap build it once", async () => {
    // Each built its own (and the cache kept the last): four times the time and memory.
    await using runtime = createRuntime();
    const bytes = answerBinary();
    const compiled = await Promise.all([1, 2, 3, 4].map((n) => runtime.compile(`c${n}`, bytes)));
    assert.equal(new Set(compiled.map(artifactOf)).size, 1);
    assert.equal(runtime.cacheStats().entries, 1);
  });

  await t.step("a preparation that failed for good fails again at once", async () => {
    // Every load of it paid for the whole preparation again (up to seconds for a large module).
    await using runtime = createRuntime();
    const compiled = await runtime.compileWat("big", "(module (memory 8))");
    const load = () => runtime.createPlugin(compiled, { resourceLimits: { maxMemoryPages: 4 } });
    const first = await assertRejectsWith(load, OutOfMemoryError);
    assert.equal(await assertRejectsWith(load, OutOfMemoryError), first);
    assert.equal(runtime.pluginCount, 0);
  });

  await t.step("a module evicted from the cache still makes plugins", async () => {
    await using runtime = createRuntime({ cache: { maxEntries: 1 } });
    const compiled = await runtime.compileWat("answer", ANSWER_WAT);
    await runtime.compileWat("other", "(module)");
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callI32("answer"), 42);
  });
});

Deno.test("WasmRuntime cache.dir keeps WAT binaries across runtimes", {
  permissions: { read: true, write: true, run: ["mkfifo"] },
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wasmplug-cache-" });
  try {
    const otherWat = '(module (func (export "other") (result i32) i32.const 7))';
    /** The file name of a text's binary: the SHA-256 of the compiler's version and the text. */
    const keyOf = (text: string) =>
      sha256Hex(new TextEncoder().encode(`${WAT_CACHE_VERSION}\n${text}`));
    await t.step("the first runtime writes <sha-256 of the version and text>.wasm", async () => {
      await using runtime = inlineRuntime({ cache: { dir } });
      const compiled = await runtime.compileWat("answer", ANSWER_WAT);
      await runtime.compileWat("other", otherWat);
      const textKey = await keyOf(ANSWER_WAT);
      const stored = await Deno.readFile(`${dir}/${textKey}.wasm`);
      assert.equal(await sha256Hex(stored), compiled.hash);
    });

    await t.step("a second runtime reads it instead of compiling the text", async () => {
      // Put the other module's binary under the first text's key: if the second
      // runtime compiled the text itself, it would export "answer".
      const [answerKey, otherKey] = await Promise.all(
        [ANSWER_WAT, otherWat].map(keyOf),
      );
      await Deno.copyFile(`${dir}/${otherKey}.wasm`, `${dir}/${answerKey}.wasm`);
      await using runtime = inlineRuntime({ cache: { dir } });
      const compiled = await runtime.compileWat("answer", ANSWER_WAT);
      assert.deepEqual(compiled.exports.map((e) => e.name), ["other"]);
    });

    await t.step("an entry that is not a valid module is compiled again and replaced", async () => {
      const key = await keyOf(otherWat);
      const valid = await Deno.readFile(`${dir}/${key}.wasm`);
      await Deno.writeFile(`${dir}/${key}.wasm`, valid.subarray(0, valid.length - 3));
      await using runtime = inlineRuntime({ cache: { dir } });
      const compiled = await runtime.compileWat("other", otherWat);
      assert.deepEqual(compiled.exports.map((e) => e.name), ["other"]);
      assert.deepEqual(await Deno.readFile(`${dir}/${key}.wasm`), valid);
    });

    await t.step(
      "an entry that is no file, or larger than its text allows, is not read",
      async () => {
        // Read whole, a FIFO blocked the compile for ever (and a link to /dev/zero would fill
        // the heap).
        const key = await keyOf(otherWat);
        const valid = await Deno.readFile(`${dir}/${key}.wasm`);
        await Deno.remove(`${dir}/${key}.wasm`);
        const made = await new Deno.Command("mkfifo", { args: [`${dir}/${key}.wasm`] }).output();
        assert.ok(made.success);
        await using runtime = inlineRuntime({ cache: { dir } });
        const compiling = runtime.compileWat("other", otherWat);
        assert.equal(await settlesWithin(compiling, 5000), true, "the compile hung on the FIFO");
        assert.deepEqual((await compiling).exports.map((e) => e.name), ["other"]);
        // Replaced by the fresh binary (a rename over the FIFO).
        assert.deepEqual(await Deno.readFile(`${dir}/${key}.wasm`), valid);
        // A valid module with a custom section far larger than the text could compile to.
        const padded = new Uint8Array([...valid, 0, 0x80, 0x80, 0x04, 0x01, 0x78]);
        const huge = new Uint8Array(padded.length + 65536 - 2);
        huge.set(padded);
        assert.ok(WebAssembly.validate(huge));
        await Deno.writeFile(`${dir}/${key}.wasm`, huge);
        const again = await runtime.compileWat("other", otherWat);
        assert.equal(again.hash, await sha256Hex(valid));
      },
    );

    await t.step(
      "text with a lone surrogate is refused, though its U+FFFD twin is cached",
      async () => {
        // Both hash alike (the key is the UTF-8): the cached twin was returned.
        await using runtime = inlineRuntime({ cache: { dir } });
        await runtime.compileWat("twin", '(module (memory 1) (data (i32.const 0) "\ufffd"))');
        await assertRejectsWith(
          () => runtime.compileWat("lone", '(module (memory 1) (data (i32.const 0) "\ud800"))'),
          CompilationError,
        );
      },
    );

    await t.step(
      "a module larger than its text's length is a hit (its UTF-8 bounds it)",
      async () => {
        // 6 000 "語" in a string: 6 000 characters of text, 18 000 bytes of module.
        const wide = `(module (memory 1) (data (i32.const 0) "${"語".repeat(6000)}"))`;
        await using runtime = inlineRuntime({ cache: { dir } });
        const first = await runtime.compileWat("wide", wide);
        const key = await keyOf(wide);
        // Another module under its key: a hit returns it.
        await Deno.copyFile(`${dir}/${await keyOf(otherWat)}.wasm`, `${dir}/${key}.wasm`);
        await using again = inlineRuntime({ cache: { dir } });
        const hit = await again.compileWat("wide", wide);
        assert.notEqual(hit.hash, first.hash);
        // So does a link to one (a cache built with links, or read-only).
        await Deno.remove(`${dir}/${key}.wasm`);
        await Deno.symlink(`${dir}/${await keyOf(otherWat)}.wasm`, `${dir}/${key}.wasm`);
        await using linked = inlineRuntime({ cache: { dir } });
        assert.equal((await linked.compileWat("wide", wide)).hash, hit.hash);
      },
    );

    await t.step("a cache dir that cannot be written does not fail compilation", async () => {
      await using runtime = inlineRuntime({ cache: { dir: `${dir}/not-a-dir.wasm/sub` } });
      await Deno.writeFile(`${dir}/not-a-dir.wasm`, new Uint8Array());
      const compiled = await runtime.compileWat("answer", ANSWER_WAT);
      assert.deepEqual(compiled.exports.map((e) => e.name), ["answer"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testEachIsolation("WasmRuntime.createPlugin() instantiates compiled modules", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("calls", CALLS_WAT);

  await t.step("names and ids default to the module name and a UUID", async () => {
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(plugin.name, "calls");
    assert.match(plugin.id, /^[0-9a-f-]{36}$/);
    assert.equal(plugin.state, "created");
    assert.equal(runtime.pluginCount, 1);
  });

  await t.step("given names, ids and limits are used", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      name: "math",
      id: "math-1",
      resourceLimits: { maxCallDepth: 50 },
    });
    assert.deepEqual([plugin.name, plugin.id, plugin.limits.maxCallDepth], ["math", "math-1", 50]);
    assert.equal(plugin.limits.maxMemoryPages, runtime.limits.maxMemoryPages);
  });

  await t.step("createPluginFromWat() compiles and instantiates in one step", async () => {
    await using plugin = await runtime.createPluginFromWat(ANSWER_WAT, { name: "p2" });
    assert.equal(plugin.name, "p2");
    assert.equal(await plugin.callI32("answer"), 42);
  });

  await t.step("a forged CompiledModule is a TypeError", async () => {
    const forged = { ...compiled } as unknown as CompiledModule;
    await assertRejectsWith(() => runtime.createPlugin(forged), TypeError, {
      message:
        'Cannot create a plugin: expected a CompiledModule returned by runtime.compile() or compileWat(), received a copy of one (module "calls"): a copy such as { ...compiled } or structuredClone(compiled) has no compiled code, pass the CompiledModule itself',
    });
    await assertRejectsWith(
      () => runtime.createPlugin(null as unknown as CompiledModule),
      TypeError,
    );
  });

  const badConfigs: [string, unknown, RegExp][] = [
    ["a non-object config", "math", /expected a config object, received string "math"/],
    ["an empty name", { name: "" }, /'name': expected a non-empty string, received string ""/],
    ["a name with NUL", { name: "a\0b" }, /'name': expected a string without NUL/],
    // Encoded, "t\ud800" and "t\udc00" were one label set in /metrics (and one log category).
    ["an id with a lone surrogate", { id: "t\ud800" }, /'id': expected a string without lone/],
    ["a numeric id", { id: 7 }, /'id': expected a non-empty string, received number 7/],
    [
      "a config map with a number",
      { config: { retries: 3 } },
      /'config\.retries': expected a string/,
    ],
    ["a non-object config map", { config: "a=b" }, /'config': expected an object of strings/],
    ["an unknown isolation", { isolation: "vm" }, /'isolation': expected "worker" or "inline"/],
    ["a non-function onMessage", { onMessage: "log" }, /'onMessage': expected a function/],
    ["a non-object resourceLimits", { resourceLimits: 5 }, /'resourceLimits': expected an object/],
    ["allowedHosts that are not a list", { allowedHosts: 5 }, /'allowedHosts': expected an array/],
    ["an empty allowed host", { allowedHosts: [""] }, /'allowedHosts\[0\]': expected a non-empty/],
    ["allowedPaths that are a list", { allowedPaths: ["/"] }, /'allowedPaths': expected an object/],
    ["allowed read paths of numbers", { allowedPaths: { read: [1] } }, /'allowedPaths\.read\[0\]'/],
    ["a non-object wasi", { wasi: 5 }, /'wasi': expected an object/],
    ["a WASI argument with NUL", { wasi: { args: ["a\0"] } }, /'wasi\.args\[0\]'/],
    ["a WASI variable name with =", { wasi: { env: { "A=B": "c" } } }, /'wasi\.env\.A=B'/],
    ["a WASI preopen to a number", { wasi: { preopens: { "/x": 5 } } }, /'wasi\.preopens\.\/x'/],
    ["a WASI preopen to nowhere", { wasi: { preopens: { "/x": "" } } }, /'wasi\.preopens\.\/x'/],
  ];
  for (const [what, config, message] of badConfigs) {
    await t.step(`${what} is a TypeError`, async () => {
      const error = await assertRejectsWith(
        () => runtime.createPlugin(compiled, config as WasmPluginConfig),
        TypeError,
      );
      assert.match(error.message, message);
      assert.equal(runtime.pluginCount, 0);
    });
  }
});

testEachIsolation("WasmRuntime.createPluginWithLinker() links host functions", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("calls", CALLS_WAT);

  await t.step("createLinker() returns a new, empty Linker each time", () => {
    const linker = runtime.createLinker();
    assert.ok(linker instanceof Linker);
    assert.notEqual(linker, runtime.createLinker());
    assert.deepEqual(linker.definitions(), []);
  });

  await t.step("something other than a Linker is rejected, not thrown", async () => {
    await assertRejectsWith(
      () => runtime.createPluginWithLinker(compiled, {}, {} as Linker),
      TypeError,
      { message: "Cannot link a plugin: expected a Linker, received an object" },
    );
  });
});

Deno.test("WasmRuntime.registerTool() validates its arguments", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  await t.step("a name and a function are accepted", () => {
    runtime.registerTool("add", () => 0);
  });
  await t.step("an empty name is a TypeError", () => {
    assertThrowsWith(() => runtime.registerTool("", () => 0), TypeError, {
      message: 'Cannot register a tool: expected a non-empty name, received string ""',
    });
  });
  await t.step("a non-function is a TypeError", () => {
    assertThrowsWith(() => runtime.registerTool("add", 42 as unknown as ToolFunction), TypeError, {
      message: 'Cannot register tool "add": expected a function, received number 42',
    });
  });
});

testEachIsolation(
  "WasmRuntime.close() stops every plugin",
  { permissions: "none" },
  async (t, { createRuntime }) => {
    const runtime = createRuntime();
    const compiled = await runtime.compileWat("calls", CALLS_WAT);
    const plugins = [await runtime.createPlugin(compiled), await runtime.createPlugin(compiled)];
    await runtime.close();

    await t.step("plugins are stopped and released", async () => {
      assert.deepEqual(plugins.map((p) => p.state), ["stopped", "stopped"]);
      assert.equal(runtime.pluginCount, 0);
      await assertRejectsWith(() => plugins[0]!.callI32("add", [1, 2]), PluginStateError, {
        state: "stopped",
      });
    });

    await t.step("the cache is emptied", () => {
      assert.equal(runtime.cacheStats().entries, 0);
    });

    await t.step("a closed runtime neither compiles nor creates plugins", async () => {
      await assertRejectsWith(() => runtime.compileWat("m", "(module)"), PluginStateError, {
        state: "closed",
        message: "Cannot compile a module: the runtime is closed",
      });
      await assertRejectsWith(() => runtime.createPlugin(compiled), PluginStateError, {
        message: "Cannot create a plugin: the runtime is closed",
      });
    });

    await t.step("closing again is a no-op", async () => {
      await runtime.close();
      await runtime[Symbol.asyncDispose]();
    });
  },
);

Deno.test("WasmRuntime.createPlugin() refuses maxInstances in a plugin's limits", {
  permissions: "none",
}, async () => {
  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat("empty", "(module)");
  const error = await assertRejectsWith(
    () => runtime.createPlugin(compiled, { resourceLimits: { maxInstances: 3 } }),
    TypeError,
  );
  assert.match(error.message, /'resourceLimits\.maxInstances' in a plugin config/);
  assert.equal(runtime.pluginCount, 0);
});

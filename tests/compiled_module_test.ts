/**
 * `CompiledModule`: what a compiled module tells about itself (the fields
 * `wasmplug inspect` prints), and that only the object the runtime returned
 * can make plugins, while copies of it are safe descriptions (issue #16).
 */
import assert from "node:assert/strict";
import {
  Capability,
  CompiledModule,
  ImportNotFoundError,
  PluginManager,
  type PluginManifest,
  WasmRuntime,
} from "../mod.ts";
import { assertRejectsWith, inlineRuntime } from "./_helpers.ts";

const MANIFEST: PluginManifest = { name: "layout", version: "0.1.0" };

/** A module with a bit of everything `inspect` reports. */
const LAYOUT_WAT = `(module
  (import "env" "host_log" (func (param i32 i32 i32)))
  (import "env" "host_now_ms" (func (result i64)))
  (import "env" "double" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "shared" (memory 1 2 shared))
  (import "env" "refs" (table 2 externref))
  (memory (export "memory") (export "heap") i64 1 4)
  (table 3 10 funcref)
  (func (export "run") (param i64) (result f64) f64.const 1)
  (@custom "notes" "hello")
  (@custom "wasmplug.manifest" ${JSON.stringify(JSON.stringify(MANIFEST))}))`;

/** The own fields of a compiled module, in order: the whole public description. */
const FIELDS = [
  "name",
  "sizeBytes",
  "compileTimeMs",
  "hash",
  "imports",
  "exports",
  "manifest",
  "memories",
  "tables",
  "customSections",
];

Deno.test("CompiledModule describes a module's imports, memories, tables and sections", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat("layout", LAYOUT_WAT);

  await t.step("each function import names the capability a call through it needs", () => {
    assert.deepEqual(
      compiled.imports.map(({ module, name, capability }) => [`${module}.${name}`, capability]),
      [
        ["env.host_log", null],
        ["env.host_now_ms", Capability.Timer],
        ["env.double", Capability.CallHostFunction],
        ["wasi_snapshot_preview1.fd_write", Capability.Wasi],
        ["env.shared", undefined],
        ["env.refs", undefined],
      ],
    );
    assert.ok(!("capability" in compiled.imports[4]!), "a memory import has no capability");
    assert.ok(compiled.exports.every((item) => !("capability" in item)));
  });

  await t.step("memories: imported first, with their declared limits", () => {
    assert.deepEqual(compiled.memories, [
      {
        index: 0,
        imported: true,
        exportNames: [],
        minPages: 1,
        maxPages: 2,
        shared: true,
        memory64: false,
      },
      {
        index: 1,
        imported: false,
        exportNames: ["memory", "heap"],
        minPages: 1,
        maxPages: 4,
        shared: false,
        memory64: true,
      },
    ]);
  });

  await t.step("tables: imported first, with their element types", () => {
    assert.deepEqual(compiled.tables, [
      {
        index: 0,
        imported: true,
        exportNames: [],
        elementType: "externref",
        minElements: 2,
        maxElements: null,
        table64: false,
      },
      {
        index: 1,
        imported: false,
        exportNames: [],
        elementType: "funcref",
        minElements: 3,
        maxElements: 10,
        table64: false,
      },
    ]);
  });

  await t.step("custom sections: names and content sizes, the manifest's too", () => {
    assert.deepEqual(compiled.customSections, [
      { name: "notes", sizeBytes: 5 },
      { name: "wasmplug.manifest", sizeBytes: JSON.stringify(MANIFEST).length },
    ]);
    assert.deepEqual(compiled.manifest, MANIFEST);
  });

  await t.step("the description is frozen all the way down", () => {
    assert.ok(Object.isFrozen(compiled));
    for (const list of [compiled.memories, compiled.tables, compiled.customSections]) {
      assert.ok(Object.isFrozen(list));
      assert.ok(list.every((item) => Object.isFrozen(item)));
    }
    assert.ok(Object.isFrozen(compiled.memories[1]!.exportNames));
  });

  await t.step("a module without any has empty lists", async () => {
    const empty = await runtime.compileWat("empty", "(module)");
    assert.deepEqual([empty.memories, empty.tables, empty.customSections], [[], [], []]);
  });
});

Deno.test("Only the CompiledModule a runtime returned makes plugins; copies describe it", {
  permissions: "none",
}, async (t) => {
  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat(
    "answer",
    '(module (memory 1) (func (export "answer") (result i32) i32.const 42))',
  );
  const copyError =
    'Cannot create a plugin: expected a CompiledModule returned by runtime.compile() or compileWat(), received a copy of one (module "answer"): a copy such as { ...compiled } or structuredClone(compiled) has no compiled code, pass the CompiledModule itself';

  await t.step("its own fields are the public description, nothing more", () => {
    assert.ok(compiled instanceof CompiledModule);
    assert.deepEqual(Object.keys(compiled), FIELDS);
    assert.deepEqual(Object.getOwnPropertySymbols(compiled), []);
  });

  await t.step("a spread copy is a TypeError that says what to pass", async () => {
    const copy = { ...compiled } as unknown as CompiledModule;
    await assertRejectsWith(() => runtime.createPlugin(copy), TypeError, { message: copyError });
    await using manager = new PluginManager(runtime);
    await assertRejectsWith(() => manager.load(copy), TypeError, { message: copyError });
  });

  await t.step("structuredClone copies the description only", async () => {
    const clone = structuredClone(compiled);
    assert.ok(!(clone instanceof CompiledModule));
    assert.deepEqual(clone, { ...compiled });
    await assertRejectsWith(
      () => runtime.createPlugin(clone as unknown as CompiledModule),
      TypeError,
      { message: copyError },
    );
  });

  await t.step("JSON holds the description and never the module's bytes", async () => {
    const layout = await runtime.compileWat("layout", LAYOUT_WAT);
    for (const module of [compiled, layout]) {
      const json = JSON.stringify(module);
      assert.deepEqual(JSON.parse(json), structuredClone(module));
      assert.deepEqual(Object.keys(JSON.parse(json)), FIELDS);
    }
  });

  await t.step("something else is a TypeError too", async () => {
    for (const value of [null, {}, "answer", { hash: 42 }]) {
      await assertRejectsWith(
        () => runtime.createPlugin(value as unknown as CompiledModule),
        TypeError,
        {
          message:
            "Cannot create a plugin: expected a CompiledModule returned by runtime.compile() or compileWat()",
        },
      );
    }
  });

  await t.step("it cannot be constructed or forged from outside", () => {
    const Constructor = CompiledModule as unknown as new (...args: unknown[]) => unknown;
    assert.throws(() => new Constructor({ bytes: new Uint8Array(), hash: "x" }, "forged", 0), {
      name: "TypeError",
      message: "Cannot construct a CompiledModule: use runtime.compile() or runtime.compileWat()",
    });
    class Subclass extends (CompiledModule as unknown as new () => object) {}
    assert.throws(() => new Subclass(), TypeError);
  });

  await t.step("the original still works, in this runtime and in another", async () => {
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callI32("answer"), 42);
    await using other = new WasmRuntime({ execution: { isolation: "inline" } });
    await using second = await other.createPlugin(compiled);
    assert.equal(await second.callI32("answer"), 42);
  });
});

Deno.test("A name's leading U+FEFF is part of the name", {
  permissions: "none",
}, async () => {
  // Decoded as a byte order mark and dropped, "\ufeffrun" was listed as "run" (twice, next to
  // the real one) and could not be called, and "env"."\ufeffhost_log" passed for host_log.
  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat(
    "marked",
    `(module
      (import "env" "\\ef\\bb\\bfhost_log" (func (param i32 i32 i32)))
      (func (export "\\ef\\bb\\bfrun") (result i32) (i32.const 1))
      (func (export "run") (result i32) (i32.const 2)))`,
  );
  assert.deepEqual(compiled.exports.map((item) => item.name), ["\ufeffrun", "run"]);
  assert.equal(compiled.imports[0]?.name, "\ufeffhost_log");
  assert.equal(compiled.imports[0]?.capability, Capability.CallHostFunction);
  await assertRejectsWith(() => runtime.createPlugin(compiled), ImportNotFoundError, {
    importName: "\ufeffhost_log",
  });
  const callable = await runtime.compileWat(
    "callable",
    `(module
      (func (export "\\ef\\bb\\bfrun") (result i32) (i32.const 1))
      (func (export "run") (result i32) (i32.const 2)))`,
  );
  await using plugin = await runtime.createPlugin(callable);
  assert.equal(await plugin.callI32("\ufeffrun"), 1);
  assert.equal(await plugin.callI32("run"), 2);
});

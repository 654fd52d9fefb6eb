/**
 * Modules that import their linear memory (`wasm-ld --import-memory`,
 * emscripten's `IMPORTED_MEMORY`, AssemblyScript's `--importMemory`) or their
 * table (`--import-table`): the runtime gives each instance a new one of the
 * import's limits, its maximum clamped to `maxMemoryPages` or
 * `maxTableElements`, so such a plugin works like one that defines them: the
 * bytes ABI, `readMemory`/`writeMemory`, element segments and
 * `call_indirect`, growth up to the limit and the memory metric, in both
 * isolations. Imports it cannot make (shared or 64-bit memories, 64-bit
 * tables, tables of typed references, globals) stay `ImportNotFoundError`s
 * (`linker_test.ts`).
 */
import assert from "node:assert/strict";
import {
  Capability,
  CompilationError,
  OutOfMemoryError,
  ResourceLimitError,
  TrapError,
} from "../mod.ts";
import { assertRejectsWith, fastestInTurn, testEachIsolation } from "./_helpers.ts";
import { SUM_FUNC_WAT } from "./fixtures/wat.ts";
import { wat } from "./instrument/_wat.ts";

/** `alloc` and `sum(ptr, len)` over bytes of the imported memory, which it may also export. */
function importingWat(memory: string, exported = false): string {
  return `(module
  (import "env" "memory" (memory ${memory}))
  ${exported ? '(export "memory" (memory 0))' : ""}
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (global.get $next) (global.set $next (i32.add (global.get $next) (local.get $n))))
  ${SUM_FUNC_WAT}
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "pages") (result i32) (memory.size)))`;
}

const PAGE = 65536;
/** A C plugin that clang and wasm-ld built to import its memory (see its `sum.c`). */
const C_PLUGIN = new URL("./fixtures/imported/sum.wasm", import.meta.url);
/** A C plugin that imports its memory and its table of function pointers (see `apply.c`). */
const C_TABLE_PLUGIN = new URL("./fixtures/imported/apply.wasm", import.meta.url);

testEachIsolation("A module that imports its memory is given one by the runtime", {
  permissions: { read: [C_PLUGIN] },
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxMemoryPages: 4 } });

  await t.step("a C plugin linked with wasm-ld --import-memory", async () => {
    const compiled = await runtime.compile("sum", await Deno.readFile(C_PLUGIN));
    assert.deepEqual(compiled.memories.map(({ imported }) => imported), [true]);
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callWithBytes("sum", new Uint8Array([1, 2, 3, 250])), 256);
    assert.equal(await plugin.callWithBytes("sum", new Uint8Array(1000).fill(1)), 1000);
  });

  await t.step("the bytes ABI and readMemory/writeMemory use it, exported or not", async () => {
    for (const exported of [false, true]) {
      await using plugin = await runtime.createPluginFromWat(importingWat("1", exported));
      assert.equal(await plugin.callWithBytes("sum", new Uint8Array([1, 2, 3, 250])), 256);
      await plugin.writeMemory(8, new Uint8Array([7, 8]));
      assert.deepEqual(await plugin.readMemory(8, 2), new Uint8Array([7, 8]));
      assert.equal((await plugin.metrics()).currentMemoryBytes, PAGE);
    }
  });

  await t.step("it grows up to maxMemoryPages, whatever the import declares", async () => {
    for (const declared of ["1", "1 100"]) {
      await using plugin = await runtime.createPluginFromWat(importingWat(declared));
      assert.equal(await plugin.callI32("grow", [3]), 1);
      assert.equal(await plugin.callI32("grow", [1]), -1);
      assert.equal(await plugin.callI32("pages"), 4);
      assert.equal((await plugin.metrics()).currentMemoryBytes, 4 * PAGE);
    }
  });

  await t.step("each plugin has its own, and a module's declared maximum holds", async () => {
    await using a = await runtime.createPluginFromWat(importingWat("1 2"));
    await using b = await runtime.createPluginFromWat(importingWat("1 2"));
    await a.writeMemory(0, new Uint8Array([42]));
    assert.deepEqual(await b.readMemory(0, 1), new Uint8Array([0]));
    assert.equal(await a.callI32("grow", [2]), -1);
    assert.equal(await a.callI32("grow", [1]), 1);
  });

  await t.step("an import larger than maxMemoryPages is an OutOfMemoryError", async () => {
    const compiled = await runtime.compileWat("big", importingWat("5"));
    await assertRejectsWith(() => runtime.createPlugin(compiled), OutOfMemoryError, {
      kind: "out_of_memory",
    });
    assert.equal(runtime.pluginCount, 0);
  });
});

testEachIsolation("A WASI command that imports its memory gets a new one for each run", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (import "wasi_snapshot_preview1" "fd_write"
        (func $write (param i32 i32 i32 i32) (result i32)))
      (import "env" "memory" (memory 1))
      (data (i32.const 16) "run")
      (func (export "_start")
        ;; Count the runs in memory: a fresh memory each run prints "run1".
        (i32.store8 (i32.const 19) (i32.add (i32.load8_u (i32.const 19)) (i32.const 49)))
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 4))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`,
    { capabilities: [Capability.Wasi] },
  );
  for (let run = 0; run < 2; run++) {
    const { exitCode, stdout } = await plugin.run();
    assert.equal(exitCode, 0);
    assert.equal(new TextDecoder().decode(stdout), "run1");
  }
});

/** `call(i)` calls the i-th function of an imported table that an element segment fills. */
const TABLE_WAT = (declared: string) =>
  `(module
  (import "env" "table" (table ${declared} funcref))
  (type $answer (func (result i32)))
  (func $one (result i32) i32.const 1)
  (func $two (result i32) i32.const 2)
  (elem (i32.const 0) func $one $two)
  (func (export "call") (param i32) (result i32) (call_indirect (type $answer) (local.get 0)))
  (func (export "grow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "size") (result i32) (table.size)))`;

testEachIsolation("A module that imports its table is given one by the runtime", {
  permissions: { read: [C_TABLE_PLUGIN] },
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxTableElements: 8 } });

  await t.step("a C plugin linked with wasm-ld --import-memory --import-table", async () => {
    await using plugin = await runtime.createPlugin(
      await runtime.compile("apply", await Deno.readFile(C_TABLE_PLUGIN)),
    );
    assert.equal(await plugin.callI32("apply", [0, 7]), 14);
    assert.equal(await plugin.callI32("apply", [1, 7]), 49);
  });

  await t.step("element segments fill it, and calls go through it", async () => {
    await using plugin = await runtime.createPluginFromWat(TABLE_WAT("2"));
    assert.equal(await plugin.callI32("call", [0]), 1);
    assert.equal(await plugin.callI32("call", [1]), 2);
    await assertRejectsWith(() => plugin.callI32("call", [2]), TrapError, { kind: "trap" });
  });

  await t.step("it grows up to maxTableElements, whatever the import declares", async () => {
    for (const declared of ["2", "2 100"]) {
      await using plugin = await runtime.createPluginFromWat(TABLE_WAT(declared));
      assert.equal(await plugin.callI32("grow", [6]), 2);
      assert.equal(await plugin.callI32("grow", [1]), -1);
      assert.equal(await plugin.callI32("size"), 8);
    }
  });

  await t.step("an import larger than maxTableElements is a ResourceLimitError", async () => {
    await assertRejectsWith(
      () => runtime.createPluginFromWat(TABLE_WAT("9")),
      ResourceLimitError,
      { kind: "resource_limit", limit: "maxTableElements" },
    );
  });
});

testEachIsolation("Hostile: many imported memories are refused in time linear in their count", {
  permissions: "none",
  slow: true,
}, async (_t, { createRuntime }) => {
  /** A module importing `count` empty memories. */
  const importing = (count: number): string => {
    const imports = Array.from(
      { length: count },
      (_, i) => `(import "env" "m${i}" (memory 0 0))`,
    ).join(" ");
    return `(module ${imports})`;
  };
  await using runtime = createRuntime();
  const fewBytes = wat(importing(20_000));
  const manyBytes = wat(importing(100_000));
  /** How long refusing `bytes` takes, in ms. */
  const refuseTime = async (bytes: Uint8Array): Promise<number> => {
    const start = performance.now();
    await assert.rejects(runtime.compile("memories", bytes), CompilationError);
    return performance.now() - start;
  };
  await refuseTime(fewBytes); // warms up the code paths
  const [few, many] = await fastestInTurn(2, [
    () => refuseTime(fewBytes),
    () => refuseTime(manyBytes),
  ]);
  // Linear gives about 5. Made as plugins (before the bound of 1 024), a lookup per import over
  // all of them, as first written, read 20 000 in 1.3 s and 100 000 in 58.5 s inline (45x).
  assert.ok(many / few < 12, `20 000: ${few.toFixed(0)} ms, 100 000: ${many.toFixed(0)} ms`);
});

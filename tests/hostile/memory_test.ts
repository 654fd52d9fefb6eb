/**
 * Hostile plugins that grab memory or table space: growth loops, a
 * declared 4 GiB memory, a table.grow bomb, a data segment past the end.
 * Growth is refused with -1 at the limit, loading fails without leaving
 * anything behind, and the same plugin (or runtime) answers the next call.
 */
import assert from "node:assert/strict";
import {
  CompilationError,
  InstantiationError,
  OutOfMemoryError,
  ResourceLimitError,
} from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";

const PAGE = 65_536;

const GROW_WAT = `(module
  (memory (export "memory") 1)
  (table 1 funcref)
  ;; memory.grow by 1 until refused; returns the number of refusals seen (1).
  (func (export "grow_until_refused") (result i32)
    (block $refused
      (loop $again
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $again)))
    (memory.size))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  ;; table.grow by 1000 until refused, then by 1 until refused; returns the table size.
  (func (export "table_bomb") (result i32)
    (block $refused
      (loop $again
        (br_if $refused
          (i32.eq (table.grow (ref.null func) (i32.const 1000)) (i32.const -1)))
        (br $again)))
    (block $refused
      (loop $again
        (br_if $refused
          (i32.eq (table.grow (ref.null func) (i32.const 1)) (i32.const -1)))
        (br $again)))
    (table.size))
  (func (export "grow_table") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "ok") (result i32) i32.const 1))`;

testEachIsolation("Hostile: memory.grow until refused stops at maxMemoryPages", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(GROW_WAT, {
    resourceLimits: { maxMemoryPages: 4, maxTableElements: 2_500 },
  });
  const { plugin } = loaded;

  await t.step("growing one page at a time ends at the limit, never beyond", async () => {
    assert.equal(await plugin.callI32("grow_until_refused"), 4);
    assert.equal(await plugin.callI32("size"), 4);
    assert.equal((await plugin.metrics()).currentMemoryBytes, 4 * PAGE);
    assert.equal(await plugin.callI32("ok"), 1);
  });

  await t.step("huge and wrapping deltas return -1 and change nothing", async () => {
    for (const delta of [1, 65_536, 0x7fff_ffff, -1]) {
      assert.equal(await plugin.callI32("grow", [delta]), -1, `memory.grow(${delta})`);
    }
    assert.equal(await plugin.callI32("size"), 4);
    assert.equal(await plugin.callI32("grow", [0]), 4);
    assert.equal(await plugin.callI32("ok"), 1);
  });

  await t.step("a table.grow bomb stops at maxTableElements", async () => {
    assert.equal(await plugin.callI32("table_bomb"), 2_500);
    for (const delta of [1, 0x7fff_ffff, -1]) {
      assert.equal(await plugin.callI32("grow_table", [delta]), -1, `table.grow(${delta})`);
    }
    assert.equal(await plugin.callI32("grow_table", [0]), 2_500);
    assert.equal(await plugin.callI32("ok"), 1);
  });
});

testEachIsolation("Hostile: a module that cannot fit fails to load and leaves nothing behind", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxMemoryPages: 16 } });
  const survivor = await runtime.createPluginFromWat(
    `(module (func (export "ok") (result i32) i32.const 1))`,
    { name: "survivor" },
  );

  /** Asserts the runtime still holds only the survivor, which still answers. */
  async function assertUnharmed(): Promise<void> {
    assert.equal(runtime.pluginCount, 1);
    assert.equal(await survivor.callI32("ok"), 1);
  }

  await t.step("a declared 65536-page memory is an OutOfMemoryError", async () => {
    for (const memory of ["(memory 65536)", "(memory 65536 65536)", "(memory 17)"]) {
      await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(
            `(module ${memory} (func (export "ok") (result i32) i32.const 1))`,
          ),
        OutOfMemoryError,
        { kind: "out_of_memory" },
      );
      await assertUnharmed();
    }
  });

  await t.step("a declared million-element table is a ResourceLimitError", async () => {
    await assertRejectsWith(
      () =>
        runtime.createPluginFromWat(
          `(module (table 1000000 funcref) (func (export "ok") (result i32) i32.const 1))`,
        ),
      ResourceLimitError,
      { kind: "resource_limit", limit: "maxTableElements" },
    );
    await assertUnharmed();
  });

  await t.step("a table above the engine's own limit does not even compile", async () => {
    // V8 refuses tables over 10 000 000 elements at compile time.
    await assertRejectsWith(
      () =>
        runtime.createPluginFromWat(
          `(module (table 100000000 funcref) (func (export "ok") (result i32) i32.const 1))`,
        ),
      CompilationError,
      { kind: "compilation" },
    );
    await assertUnharmed();
  });

  await t.step("a data segment past the end of memory is an InstantiationError", async () => {
    const segments = [
      `(data (i32.const 65530) "0123456789")`,
      `(data (i32.const -16) "x")`,
      `(data (i32.const 0) "${"\\00".repeat(PAGE + 1)}")`,
    ];
    for (const segment of segments) {
      await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(
            `(module (memory 1) ${segment} (func (export "ok") (result i32) i32.const 1))`,
          ),
        InstantiationError,
        { kind: "instantiation" },
      );
      await assertUnharmed();
    }
  });

  await t.step(
    "an element segment past the end of the table is an InstantiationError",
    async () => {
      await assertRejectsWith(
        () =>
          runtime.createPluginFromWat(
            `(module (table 1 funcref) (func $f) (elem (i32.const 5) $f)
            (func (export "ok") (result i32) i32.const 1))`,
          ),
        InstantiationError,
        { kind: "instantiation" },
      );
      await assertUnharmed();
    },
  );

  await survivor.stop();
  assert.equal(runtime.pluginCount, 0);
});

/**
 * Hostile plugins that spread their memory and tables over many memories
 * and tables: `maxMemoryPages` and `maxTableElements` bound the sum over all
 * of them, at load time and when they grow, and metrics report the sum.
 */
import assert from "node:assert/strict";
import { OutOfMemoryError, ResourceLimitError } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";

const PAGE = 65_536;
const COUNT = 512;
const LIMITS = { maxMemoryPages: 16, maxTableElements: 1_000 };

/** `count` declarations made by `declare(i)`, one per line. */
function each(count: number, declare: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => declare(i)).join("\n");
}

/**
 * 512 memories and 512 tables with growth loops over all of them:
 * `fill_all` grows every memory one page at a time until refused and writes
 * every byte of it (what made the pages resident before the fix);
 * `grow_tables(n)` grows every table by `n` elements until refused;
 * `grow_memory` and `grow_table` grow the first or the last one.
 */
const SPREAD_WAT = `(module
  ${each(COUNT, (i) => `(memory $m${i} 0)`)}
  ${each(COUNT, (i) => `(table $t${i} 0 funcref)`)}
  (func (export "fill_all") (result i32)
    (local $pages i32)
    ${
  each(COUNT, (i) => `
    (block $full
      (loop $grow
        (br_if $full (i32.eq (memory.grow $m${i} (i32.const 1)) (i32.const -1)))
        (br $grow)))
    (memory.fill $m${i} (i32.const 0) (i32.const 1)
      (i32.mul (memory.size $m${i}) (i32.const ${PAGE})))
    (local.set $pages (i32.add (local.get $pages) (memory.size $m${i})))`)
}
    (local.get $pages))
  (func (export "grow_tables") (param $n i32) (result i32)
    (local $elements i32)
    ${
  each(COUNT, (i) => `
    (block $full
      (loop $grow
        (br_if $full
          (i32.eq (table.grow $t${i} (ref.null func) (local.get $n)) (i32.const -1)))
        (br $grow)))
    (local.set $elements (i32.add (local.get $elements) (table.size $t${i})))`)
}
    (local.get $elements))
  (func (export "table_elements") (result i32)
    (i32.const 0)
    ${each(COUNT, (i) => `(i32.add (table.size $t${i}))`)})
  (func (export "grow_memory") (param $index i32) (param $pages i32) (result i32)
    (if (i32.eqz (local.get $index))
      (then (return (memory.grow $m0 (local.get $pages)))))
    (memory.grow $m${COUNT - 1} (local.get $pages)))
  (func (export "grow_table") (param $index i32) (param $n i32) (result i32)
    (if (i32.eqz (local.get $index))
      (then (return (table.grow $t0 (ref.null func) (local.get $n)))))
    (table.grow $t${COUNT - 1} (ref.null func) (local.get $n))))`;

testEachIsolation("Hostile: 512 memories and tables cannot exceed the plugin's totals", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  const rssBefore = Deno.memoryUsage().rss;
  await using loaded = await loadPlugin(SPREAD_WAT, { resourceLimits: LIMITS });
  const { plugin } = loaded;

  await t.step("growing every memory stops at maxMemoryPages in total", async () => {
    assert.equal(await plugin.callI32("fill_all"), LIMITS.maxMemoryPages);
    for (const index of [0, 1]) {
      for (const pages of [0, 1, 16, 0x7fff_ffff, -1]) {
        const grown = await plugin.callI32("grow_memory", [index, pages]);
        const size = index === 0 ? LIMITS.maxMemoryPages : 0;
        assert.equal(grown, pages === 0 ? size : -1, `grow ${index} by ${pages}`);
      }
    }
  });

  await t.step("metrics report the bytes of all memories", async () => {
    const metrics = await plugin.metrics();
    assert.equal(metrics.currentMemoryBytes, LIMITS.maxMemoryPages * PAGE);
    assert.equal(metrics.peakMemoryBytes, LIMITS.maxMemoryPages * PAGE);
  });

  await t.step("growing every table stops at maxTableElements in total", async () => {
    assert.equal(await plugin.callI32("grow_tables", [7]), 994);
    assert.equal(await plugin.callI32("grow_table", [1, 7]), -1);
    assert.equal(await plugin.callI32("grow_table", [0, 6]), 994);
    for (const index of [0, 1]) {
      for (const n of [1, 0x7fff_ffff, -1]) {
        assert.equal(await plugin.callI32("grow_table", [index, n]), -1, `grow ${index} by ${n}`);
      }
    }
    assert.equal(await plugin.callI32("table_elements"), LIMITS.maxTableElements);
  });

  await t.step("the process holds megabytes, not 512 x 16 pages", () => {
    // The process is shared with the tests running in parallel: a bound well under the
    // 512 MiB the attack would hold, with room for their allocations.
    const grownMiB = (Deno.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grownMiB < 400, `RSS grew by ${grownMiB.toFixed(0)} MiB`);
  });
});

testEachIsolation("Hostile: minimums that only exceed the limits together fail to load", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: LIMITS });

  await t.step("512 one-page memories are an OutOfMemoryError", async () => {
    await assertRejectsWith(
      () => runtime.createPluginFromWat(`(module ${each(COUNT, () => "(memory 1)")})`),
      OutOfMemoryError,
      { kind: "out_of_memory" },
    );
  });

  await t.step("512 two-element tables are a ResourceLimitError", async () => {
    await assertRejectsWith(
      () => runtime.createPluginFromWat(`(module ${each(COUNT, () => "(table 2 funcref)")})`),
      ResourceLimitError,
      { kind: "resource_limit", limit: "maxTableElements" },
    );
  });

  await t.step("minimums that add up to the limits load", async () => {
    const plugin = await runtime.createPluginFromWat(`(module
      ${each(16, () => "(memory 1)")} ${each(COUNT, () => "(memory 0)")}
      (table 488 funcref) ${each(COUNT, () => "(table 1 funcref)")})`);
    const metrics = await plugin.metrics();
    assert.equal(metrics.currentMemoryBytes, 16 * PAGE);
    await plugin.stop();
  });
  assert.equal(runtime.pluginCount, 0);
});

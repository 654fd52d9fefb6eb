/**
 * Hostile guests that declare many empty memories or tables: within every
 * limit (an empty memory holds no page), 100 000 of them made each worker
 * plugin hold 140 MB of the host's memory for a module of 200 KB. wasmplug
 * refuses more than 1 024 of either at compile time.
 */
import assert from "node:assert/strict";
import { CompilationError } from "../../mod.ts";
import { MAX_MEMORIES_OR_TABLES } from "../../src/compile/_module_features.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { READ_WORKERS } from "../worker/_worker_helpers.ts";

function declaring(count: number, declaration: string): string {
  return `(module ${Array(count).fill(declaration).join(" ")}
    (func (export "run") (result i32) (i32.const 7)))`;
}

testEachIsolation("A module with more than 1 024 memories or tables fails to compile", {
  permissions: { read: READ_WORKERS },
}, async (t, kit) => {
  await using runtime = kit.createRuntime();
  for (const [kind, declaration] of [["memories", "(memory 0)"], ["tables", "(table 0 funcref)"]]) {
    await t.step(`${MAX_MEMORIES_OR_TABLES + 1} empty ${kind}`, async () => {
      const wat = declaring(MAX_MEMORIES_OR_TABLES + 1, declaration!);
      const error = await assertRejectsWith(() => runtime.compileWat(kind!, wat), CompilationError);
      assert.match(
        error.message,
        new RegExp(`it has 1025 ${kind}, and wasmplug allows at most 1024`),
      );
    });
    await t.step(`${MAX_MEMORIES_OR_TABLES} of them still load`, async () => {
      const wat = declaring(MAX_MEMORIES_OR_TABLES, declaration!);
      await using plugin = await runtime.createPluginFromWat(wat);
      assert.equal(await plugin.callI32("run"), 7);
    });
  }
});

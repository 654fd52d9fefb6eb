/**
 * Hostile guests that hold V8's heap through exceptions: every thrown
 * exception is a package of its tag's values on the JavaScript heap, outside
 * `maxMemoryPages`. A tag of 999 `v128`s made 64 KiB packages, and a tag
 * carrying an `exnref` chained them: one call with the default limits ended
 * the host process ("Fatal JavaScript out of memory", exit code 133), in
 * both isolations. wasmplug refuses such tags, and more than a thousand
 * globals of an exception type, at compile time; exceptions of the size
 * C++ and Rust throw still work.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  CompilationError,
  HostFunctionError,
  TrapError,
} from "../../mod.ts";
import {
  MAX_EXCEPTION_GLOBALS,
  MAX_TAG_PAYLOAD_BYTES,
} from "../../src/compile/_module_features.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { READ_WORKERS } from "../worker/_worker_helpers.ts";

/** A module whose tag carries `params`, with a global that may keep an exception. */
function chainWat(params: string): string {
  return `(module
    (tag $link (param ${params}))
    (global $last (mut exnref) (ref.null exn))
    (func (export "run") (result i32) (i32.const 1)))`;
}

testEachIsolation("A module whose exceptions could hold V8's heap fails to compile", {
  permissions: { read: READ_WORKERS },
}, async (t, kit) => {
  await using runtime = kit.createRuntime();

  const refused: [string, string, RegExp][] = [
    [
      "a tag of 999 v128 values (64 KiB a package)",
      chainWat(Array(999).fill("v128").join(" ")),
      new RegExp(
        `carries 15984 bytes of values, and wasmplug allows at most ${MAX_TAG_PAYLOAD_BYTES}`,
      ),
    ],
    [
      "a tag that carries an exception, so that they chain",
      chainWat("exnref i32"),
      /carries an exception reference/,
    ],
    [
      `more than ${MAX_EXCEPTION_GLOBALS} globals that may each hold one`,
      `(module ${
        Array.from(
          { length: MAX_EXCEPTION_GLOBALS + 1 },
          (_, i) => `(global $g${i} (mut exnref) (ref.null exn))`,
        ).join(" ")
      })`,
      new RegExp(`declares ${MAX_EXCEPTION_GLOBALS + 1} globals of an exception type`),
    ],
  ];
  for (const [name, wat, message] of refused) {
    await t.step(name, async () => {
      const error = await assertRejectsWith(() => runtime.compileWat(name, wat), CompilationError);
      assert.match(error.message, message);
      assert.equal(runtime.pluginCount, 0);
    });
  }

  await t.step(
    "a C++ or Rust sized exception (one pointer) still throws and is caught",
    async () => {
      await using plugin = await runtime.createPluginFromWat(`(module
      (tag $cpp (param i32))
      (global $kept (mut exnref) (ref.null exn))
      (func (export "catch") (param $x i32) (result i32)
        (block $caught (result i32 exnref)
          (try_table (catch_ref $cpp $caught) (throw $cpp (local.get $x)))
          (unreachable))
        (global.set $kept))
      (func (export "rethrow") (throw_ref (global.get $kept))))`);
      assert.equal(await plugin.callI32("catch", [41]), 41);
      await assertRejectsWith(() => plugin.callVoid("rethrow"), TrapError);
    },
  );
});

testEachIsolation("A guest that keeps the host's errors it catches keeps none of them", {
  permissions: { read: READ_WORKERS },
}, async (t, kit) => {
  // A host error may quote what the guest passed (a 15 MB URL in a refusal): kept by the
  // thousand in an exnref table, such errors ended the host process.
  await using runtime = kit.createRuntime();
  const big = "x".repeat(100_000);
  const thrown: Error[] = [];
  const linker = runtime.createLinker().funcWrap("env", "fail", () => {
    const error = new Error(big);
    thrown.push(error);
    throw error;
  });
  await using plugin = await runtime.createPluginWithLinker(
    await runtime.compileWat(
      "hoard",
      `(module
        (import "env" "fail" (func $fail))
        (table $kept 2 exnref)
        (func (export "keep") (param $i i32)
          (table.set $kept (local.get $i)
            (block $caught (result exnref)
              (try_table (catch_all_ref $caught) (call $fail))
              (unreachable))))
        (func (export "rethrow") (param $i i32) (throw_ref (table.get $kept (local.get $i)))))`,
    ),
    { capabilities: [Capability.CallHostFunction] },
    linker,
  );

  await t.step("each call still fails with its own host error", async () => {
    for (const i of [0, 1]) {
      const error = await assertRejectsWith(() => plugin.callVoid("keep", [i]), HostFunctionError);
      if (kit.isolation === "inline") assert.equal(error.cause, thrown[i]);
    }
  });

  await t.step("what the guest kept is one stand-in, which holds nothing of theirs", async () => {
    const kept = await Promise.all(
      [0, 1].map((i) =>
        assertRejectsWith(() => plugin.callVoid("rethrow", [i]), TrapError, {
          trap: "The plugin rethrew a host function's error of an earlier call",
        })
      ),
    );
    // One object where the guest runs (a worker's comes to the host as a copy of it).
    if (kit.isolation === "inline") assert.equal(kept[0]!.cause, kept[1]!.cause);
    else assert.deepEqual(kept[0]!.cause, kept[1]!.cause);
    assert.ok(!String((kept[0]!.cause as Error).message).includes(big.slice(0, 100)));
  });
});

testEachIsolation("A guest that catches a WASI function's error cannot swallow it", {
  permissions: { read: READ_WORKERS },
}, async (t, kit) => {
  await using runtime = kit.createRuntime();
  // Without Capability.Random, random_get throws a CapabilityDeniedError at the guest.
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (global $kept (mut exnref) (ref.null exn))
      (func (export "caught") (result i32)
        (block $h (try_table (catch_all $h) (drop (call $random (i32.const 0) (i32.const 8)))))
        (i32.const 7))
      (func (export "keep") (result i32)
        (block $h (result exnref)
          (try_table (catch_all_ref $h) (drop (call $random (i32.const 0) (i32.const 8))))
          (return (i32.const -1)))
        (global.set $kept)
        (i32.const 8))
      (func (export "rethrow") (result i32) (throw_ref (global.get $kept))))`,
    { capabilities: [Capability.Wasi] },
  );

  await t.step("caught, the call still ends with the refusal", async () => {
    await assertRejectsWith(() => plugin.callI32("caught"), CapabilityDeniedError, {
      capability: "random",
    });
    await assertRejectsWith(() => plugin.callI32("keep"), CapabilityDeniedError);
  });

  await t.step("kept and thrown in a later call, it is a TrapError, not a refusal", async () => {
    await assertRejectsWith(() => plugin.callI32("rethrow"), TrapError, {
      trap: "The plugin rethrew a host function's error of an earlier call",
    });
  });
});

/**
 * Hostile guests that allocate on the WebAssembly GC heap, which no limit
 * bounds (`maxMemoryPages` is linear memory only): globals initialised with
 * 400 MiB arrays, or arrays allocated in a loop, used to end the host process
 * with a fatal V8 out-of-memory error (exit code 133) while `createPlugin`
 * ran, whatever the limits. wasmplug refuses every module that defines a GC
 * type, at compile time.
 */
import assert from "node:assert/strict";
import { CompilationError } from "../../mod.ts";
import { findGcTypeDefinition } from "../../src/compile/_module_features.ts";
import { assertRejectsWith, runDeno, testEachIsolation, WORKER_SOURCES } from "../_helpers.ts";
import {
  arrayGlobalsModule,
  arrayLoopModule,
  functionRecModule,
  structInRecModule,
} from "./fixtures/gc_modules.ts";

const TIGHT = { maxMemoryPages: 1, maxFuel: 1000, maxExecutionTimeMs: 1000 };

Deno.test("findGcTypeDefinition() finds the first type that is not a function type", () => {
  assert.deepEqual(findGcTypeDefinition(arrayGlobalsModule(1)), {
    index: 0,
    form: "array",
    offset: 11,
  });
  assert.deepEqual(findGcTypeDefinition(structInRecModule()), {
    index: 1,
    form: "struct",
    offset: 17,
  });
  assert.equal(findGcTypeDefinition(functionRecModule()), undefined);
  // Truncated bytes are the parser's to report.
  assert.equal(findGcTypeDefinition(arrayGlobalsModule(1).subarray(0, 12)), undefined);
});

testEachIsolation("A module that can allocate on the GC heap fails to compile", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime({ resourceLimits: TIGHT });

  const attacks: [string, Uint8Array, string][] = [
    ["globals initialised with 400 MiB arrays", arrayGlobalsModule(16), "array"],
    ["arrays allocated in a loop", arrayLoopModule(), "array"],
    ["a struct type in a rec group", structInRecModule(), "struct"],
  ];
  for (const [name, bytes, form] of attacks) {
    await t.step(name, async () => {
      assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), "a valid module");
      const error = await assertRejectsWith(() => runtime.compile(name, bytes), CompilationError);
      assert.match(error.message, new RegExp(`is a GC ${form} type, and wasmplug refuses`));
      assert.equal(typeof error.offset, "number");
      assert.equal(runtime.pluginCount, 0);
    });
  }

  await t.step("function types in a rec group, with a sub declaration, still load", async () => {
    const compiled = await runtime.compile("functions", functionRecModule());
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(await plugin.callI32("run", []), 7);
  });
});

Deno.test("A GC-heap attack leaves the host process alive (exit code 0, not 133)", {
  permissions: { run: true, read: true },
}, async (t) => {
  for (const isolation of ["inline", "worker"]) {
    for (const attack of ["globals", "loop"]) {
      await t.step(`${attack}, ${isolation}`, async () => {
        const { code, stdout, stderr } = await runDeno([
          "run",
          "--unstable-worker-options",
          `--allow-read=${WORKER_SOURCES},${new URL("../", import.meta.url).pathname}`,
          "tests/hostile/fixtures/gc_heap_attack.ts",
          isolation,
          attack,
        ]);
        assert.equal(code, 0, `stderr: ${stderr}`);
        assert.equal(stdout.trim(), "refused CompilationError");
      });
    }
  }
});

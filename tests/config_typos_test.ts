/**
 * A typo in any options object is a `TypeError` naming the key and the key
 * that was probably meant (API.md, "Configuration typos"), never a setting
 * silently ignored.
 */
import assert from "node:assert/strict";
import { WasmRuntime } from "../mod.ts";
import { inlineRuntime } from "./_helpers.ts";

const ANSWER_WAT = '(module (func (export "answer") (result i32) i32.const 42))';

Deno.test("Unknown keys in options objects are TypeErrors naming them", async (t) => {
  await t.step("the runtime config, its execution and cache", () => {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => new WasmRuntime({ resourceLimit: { maxFuel: 10 } } as any),
      {
        name: "TypeError",
        message:
          "Cannot use the runtime config: unknown key 'resourceLimit' (did you mean 'resourceLimits'?); expected one of execution, resourceLimits, cache, idleTimeoutMs, workerPool",
      },
    );
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => new WasmRuntime({ execution: { isolaton: "inline" } as any }),
      { name: "TypeError", message: /unknown key 'isolaton' \(did you mean 'isolation'\?\)/ },
    );
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => new WasmRuntime({ cache: { maxEntry: 3 } as any }),
      { name: "TypeError", message: /unknown key 'maxEntry' \(did you mean 'maxEntries'\?\)/ },
    );
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => new WasmRuntime({ resourceLimits: { maxFule: 3 } as any }),
      { name: "TypeError", message: /unknown key 'maxFule' \(did you mean 'maxFuel'\?\)/ },
    );
  });

  await using runtime = inlineRuntime();
  const compiled = await runtime.compileWat("answer", ANSWER_WAT);

  await t.step("the plugin config, its wasi and allowedPaths", async () => {
    for (
      const [config, pattern] of [
        [{ capabilites: [] }, /unknown key 'capabilites' \(did you mean 'capabilities'\?\)/],
        [{ wasi: { preopen: {} } }, /unknown key 'preopen' \(did you mean 'preopens'\?\)/],
        [{ allowedPaths: { reads: [] } }, /unknown key 'reads' \(did you mean 'read'\?\)/],
        [{ somethingElse: 1 }, /unknown key 'somethingElse'; expected one of name, id/],
      ] as const
    ) {
      // deno-lint-ignore no-explicit-any
      await assert.rejects(runtime.createPlugin(compiled, config as any), {
        name: "TypeError",
        message: pattern,
      });
    }
    assert.equal(runtime.pluginCount, 0);
  });

  await t.step("call options", async () => {
    await using plugin = await runtime.createPlugin(compiled);
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      plugin.callI32("answer", [], { timeout: 5 } as any),
      { name: "TypeError", message: /unknown key 'timeout' \(did you mean 'timeoutMs'\?\)/ },
    );
    assert.equal(await plugin.callI32("answer", [], { timeoutMs: 5 }), 42);
  });
});

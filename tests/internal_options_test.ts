import assert from "node:assert/strict";
import { WasmRuntime } from "../mod.ts";
import {
  internalOptions,
  internalOptionsOf,
  withInternalOptions,
} from "../src/backend/_internal_options.ts";
import { assertKnownKeys } from "../src/common/_known_keys.ts";

Deno.test("Internal options ride under a symbol key the config checks ignore", {
  permissions: "none",
}, async (t) => {
  await t.step("withInternalOptions() keeps the config and adds them", () => {
    const onWorkerEvent = (): void => {};
    const config = withInternalOptions({ idleTimeoutMs: 5 }, { onWorkerEvent });
    assert.equal(config.idleTimeoutMs, 5);
    assert.deepEqual(internalOptionsOf(config), { onWorkerEvent });
    assert.deepEqual(Object.keys(config), ["idleTimeoutMs"]);
  });

  await t.step("a config without them has none", () => {
    assert.deepEqual(internalOptionsOf({ idleTimeoutMs: 5 }), {});
  });

  await t.step(
    "a runtime takes them; a string key it does not know is still a TypeError",
    async () => {
      await using runtime = new WasmRuntime(
        withInternalOptions({ execution: { isolation: "inline" } }, {}),
      );
      assert.equal(runtime.execution.isolation, "inline");
      assert.throws(
        () => new WasmRuntime(withInternalOptions({ idleTimeout: 5 } as never, {})),
        { name: "TypeError", message: /unknown key 'idleTimeout'/ },
      );
    },
  );

  await t.step("assertKnownKeys() ignores symbol keys", () => {
    assertKnownKeys("the options", { a: 1, [Symbol("b")]: 2 }, ["a"]);
    assert.throws(() => assertKnownKeys("the options", { b: 1 }, ["a"]), TypeError);
  });

  await t.step("options that are not an object are a TypeError", () => {
    for (const value of [null, 1, "x"]) {
      assert.throws(
        () => new WasmRuntime({ [internalOptions]: value } as never),
        { name: "TypeError", message: /internal options are not an object/ },
      );
    }
  });
});

import assert from "node:assert/strict";
import { TrapError } from "../../mod.ts";
import { type CallSiteLike, formatWorkerStack } from "../../src/worker/_stack_trace.ts";
import { allowingWorkers, assertRejectsWith, loadPlugin } from "../_helpers.ts";

/** A call site as V8 hands it to `Error.prepareStackTrace`. */
function site(script: string, text: string): CallSiteLike {
  return { getScriptNameOrSourceURL: () => script, toString: () => text };
}

const WASM_FRAME = site(
  "wasm://wasm/1a2b3c4d",
  "inner (wasm://wasm/1a2b3c4d:wasm-function[2]:0x4f)",
);
const JS_FRAME = site("blob:null/42", "PluginInstance.invoke (blob:null/42:310:18)");

Deno.test("formatWorkerStack() shows a guest's wasm frames, or every frame without any", async (t) => {
  await t.step("a stack through wasm keeps only the wasm frames", () => {
    const stack = formatWorkerStack(new RangeError("out of range"), [
      WASM_FRAME,
      JS_FRAME,
      site("wasm://wasm/1a2b3c4d", "wasm://wasm/1a2b3c4d:wasm-function[0]:0x21"),
    ]);
    assert.equal(
      stack,
      "RangeError: out of range\n" +
        "    at inner (wasm://wasm/1a2b3c4d:wasm-function[2]:0x4f)\n" +
        "    at wasm://wasm/1a2b3c4d:wasm-function[0]:0x21",
    );
  });

  await t.step("a stack of wasmplug's own code keeps every frame", () => {
    assert.equal(
      formatWorkerStack(new Error("bug"), [JS_FRAME]),
      "Error: bug\n    at PluginInstance.invoke (blob:null/42:310:18)",
    );
  });

  await t.step("an error whose toString throws still gets a header", () => {
    const error = new Error("x");
    error.toString = () => {
      throw new Error("no");
    };
    assert.equal(formatWorkerStack(error, []), "Error");
  });
});

Deno.test("A worker plugin's trap carries the guest's wasm frames to the host", {
  permissions: allowingWorkers("none"),
}, async () => {
  await using loaded = await loadPlugin(
    `(module
      (func $deep (unreachable))
      (func (export "fail") (call $deep)))`,
    {},
    { execution: { isolation: "worker" } },
  );
  const error = await assertRejectsWith(() => loaded.plugin.callVoid("fail"), TrapError);
  const stack = String((error.cause as Error).stack);
  const workerSide = stack.split("--- thrown on the other side of the worker boundary ---")[1];
  assert.ok(workerSide !== undefined, stack);
  const frames = workerSide.split("\n").filter((line) => line !== "");
  assert.ok(frames.length >= 2, workerSide);
  for (const frame of frames) assert.match(frame, /^\s+at .*wasm:\/\/wasm\//);
});

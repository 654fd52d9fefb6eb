/**
 * A third-party WASI reactor as a plugin: QuickJS-NG as the npm package
 * quickjs-wasi 3.7.0 ships it (638 KB of C, `_initialize`, six `env`
 * imports its JavaScript glue would define, WASI for clocks, randomness and
 * output), loaded with a `Linker` for those imports and driven through its
 * C API (`qjs_init`, `wasm_malloc`, `qjs_eval`, `qjs_get_float64`) with the
 * typed calls and `writeMemory`. It evaluates JavaScript alike in both
 * isolations, consuming the same fuel, and its limits hold on code nobody
 * wrote for wasmplug: a script that never ends is stopped, and the same
 * interpreter runs the next one.
 */
import "npm:quickjs-wasi@3.7.0";
import assert from "node:assert/strict";
import {
  Capability,
  FuelExhaustedError,
  type Isolation,
  Linker,
  type WasmPlugin,
  WasmRuntime,
} from "../../mod.ts";
import { allowingWorkers, assertRejectsWith, ISOLATIONS } from "../_helpers.ts";

const WASM = new URL(import.meta.resolve("npm:quickjs-wasi@3.7.0/quickjs.wasm")).pathname;

/** The `env` imports the package's own glue defines, answered as it does when nothing is set. */
function quickjsLinker(): Linker {
  return new Linker()
    .funcWrap("env", "host_call", () => 0)
    .funcWrap("env", "host_interrupt", () => 0)
    .funcWrap("env", "host_promise_rejection", () => {})
    .funcWrap("env", "host_module_normalize", () => 0)
    .funcWrap("env", "host_module_load", () => 0)
    .funcWrap("env", "host_get_timezone_offset", () => 0);
}

/** A QuickJS interpreter in a plugin: `evaluate` runs a script and returns its number. */
class QuickJsPlugin {
  readonly #plugin: WasmPlugin;

  constructor(plugin: WasmPlugin) {
    this.#plugin = plugin;
  }

  get plugin(): WasmPlugin {
    return this.#plugin;
  }

  /** Copies `text` and a terminating NUL into memory the guest allocated. */
  async #string(text: string): Promise<[ptr: number, len: number]> {
    const bytes = new TextEncoder().encode(text);
    const ptr = await this.#plugin.callI32("wasm_malloc", [bytes.length + 1]);
    const terminated = new Uint8Array(bytes.length + 1);
    terminated.set(bytes);
    await this.#plugin.writeMemory(ptr, terminated);
    return [ptr, bytes.length];
  }

  /** Evaluates `code` (within `fuel`, if given) and returns the number it ends with. */
  async evaluate(code: string, fuel?: number): Promise<number> {
    const [source, length] = await this.#string(code);
    const [filename] = await this.#string("<eval>");
    try {
      const options = fuel === undefined ? undefined : { fuel };
      const value = await this.#plugin.callI32("qjs_eval", [source, length, filename, 0], options);
      assert.equal(await this.#plugin.callI32("qjs_is_exception", [value]), 0);
      const number = await this.#plugin.callF64("qjs_get_float64", [value]);
      await this.#plugin.callVoid("qjs_free_value", [value]);
      return number;
    } finally {
      await this.#plugin.callVoid("wasm_free", [source]);
      await this.#plugin.callVoid("wasm_free", [filename]);
    }
  }
}

async function withQuickJs(
  isolation: Isolation,
  fn: (quickjs: QuickJsPlugin) => Promise<void>,
): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation } });
  const compiled = await runtime.compile("quickjs", await Deno.readFile(WASM));
  await using plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.Wasi, Capability.CallHostFunction, Capability.Random],
    // Long enough that the default fuel budget, not the clock, stops a runaway script.
    resourceLimits: { maxExecutionTimeMs: 20_000 },
  }, quickjsLinker());
  assert.equal(await plugin.callI32("qjs_init"), 0);
  await fn(new QuickJsPlugin(plugin));
}

const SCRIPTS: Record<string, [code: string, result: number]> = {
  loop: ["let s = 0; for (let i = 0; i < 100000; i++) s += i; s", 4999950000],
  recursion: ["function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } fib(20)", 6765],
  library: ['JSON.parse(JSON.stringify({ a: [1, 2, 3] })).a.map((x) => x * 2).join("").length', 3],
};

Deno.test({
  name: "A third-party WASI reactor (QuickJS-NG from npm) evaluates JavaScript as a plugin",
  permissions: allowingWorkers({ read: [WASM] }),
  async fn(t) {
    const fuel: Record<string, number[]> = {};
    for (const isolation of ISOLATIONS) {
      await t.step(`the same results (${isolation})`, async () => {
        await withQuickJs(isolation, async (quickjs) => {
          for (const [name, [code, expected]] of Object.entries(SCRIPTS)) {
            const before = (await quickjs.plugin.metrics()).fuelConsumed;
            assert.equal(await quickjs.evaluate(code), expected, name);
            (fuel[isolation] ??= []).push((await quickjs.plugin.metrics()).fuelConsumed - before);
          }
        });
      });
    }

    await t.step("the same fuel in both isolations", () => {
      assert.ok(fuel.inline!.every((units) => units > 100_000), JSON.stringify(fuel));
      assert.deepEqual(fuel.worker, fuel.inline);
    });

    for (const isolation of ISOLATIONS) {
      await t.step(
        `a script that never ends is stopped; the next one runs (${isolation})`,
        async () => {
          await withQuickJs(isolation, async (quickjs) => {
            await assertRejectsWith(() => quickjs.evaluate("for (;;) {}"), FuelExhaustedError, {
              kind: "fuel_exhausted",
            });
            await assertRejectsWith(
              () => quickjs.evaluate("let x = 0; for (;;) x++", 1_000_000),
              FuelExhaustedError,
              { kind: "fuel_exhausted" },
            );
            assert.equal(await quickjs.evaluate(SCRIPTS.library![0]), SCRIPTS.library![1]);
          });
        },
      );
    }
  },
});

/**
 * The guide's error handling: match on `err.kind` the way Rust matches
 * `WasmError` variants.
 *
 *     deno run --allow-read=examples examples/error_handling.ts
 *
 * @module
 */

import { WasmError, type WasmPlugin, WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

async function callAndReport(
  plugin: WasmPlugin,
  fn: string,
  args: number[],
  print: Print,
): Promise<void> {
  try {
    const result = await plugin.callI32(fn, args);
    print(`Result: ${result}`);
  } catch (err) {
    if (!(err instanceof WasmError)) throw err;
    switch (err.kind) {
      case "timeout":
        print("Plugin execution timed out");
        break;
      case "out_of_memory":
        print("Plugin ran out of memory");
        break;
      case "invalid_function":
        print(`Function not found: ${(err as WasmError & { functionName: string }).functionName}`);
        break;
      default:
        print(`Error: ${err.message}`);
    }
  }
}

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({
    execution: { isolation: "inline" },
    resourceLimits: { maxMemoryPages: 16 },
  });
  await using plugin = await runtime.createPluginFromWat(await readExampleWat("math"), {
    name: "math-plugin",
  });
  await callAndReport(plugin, "factorial", [10], print);
  await callAndReport(plugin, "divide", [10, 2], print);
  await callAndReport(plugin, "add", [1], print);

  // A module that asks for more memory than the limit fails to load.
  try {
    await runtime.createPluginFromWat("(module (memory 32))", { name: "greedy" });
  } catch (err) {
    if (!(err instanceof WasmError)) throw err;
    print(`Loading greedy: ${err.kind}: ${err.message}`);
  }
}

if (import.meta.main) await main();

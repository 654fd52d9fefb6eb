/**
 * The guide's math plugin: create a runtime, compile WAT, create a plugin,
 * initialize it, call `add` and `factorial`, stop it.
 *
 *     deno run --allow-read=examples examples/math_plugin.ts
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the walkthrough, printing what the guide prints. */
export async function main(print: Print = console.log): Promise<void> {
  // Create runtime with config
  await using runtime = new WasmRuntime({
    execution: { fuelMetering: false, epochInterruption: false, isolation: "inline" },
  });

  // Compile WAT to WASM
  const compiled = await runtime.compileWat("math-module", await readExampleWat("math"));
  print(`Compiled module: ${compiled.name}`);
  print(`Size: ${compiled.sizeBytes} bytes`);
  print(`Compile time: ${compiled.compileTimeMs.toFixed(2)}ms`);

  // Create plugin from compiled module
  const plugin = await runtime.createPlugin(compiled, {
    name: "math-plugin",
    resourceLimits: { maxFuel: null },
  });

  // Initialize plugin
  await plugin.initialize();

  // Call 'add' function
  print(`10 + 5 = ${await plugin.callI32("add", [10, 5])}`);
  print(`10 - 5 = ${await plugin.callI32("sub", [10, 5])}`);
  print(`10 * 5 = ${await plugin.callI32("mul", [10, 5])}`);

  // Call 'factorial' function
  print(`5! = ${await plugin.callI32("factorial", [5])}`);

  // Stop plugin
  await plugin.stop();
  print(`State: ${plugin.state}`);
}

if (import.meta.main) await main();

/**
 * The guide's metrics loop: call `factorial(1..5)` and read the metrics.
 *
 *     deno run --allow-read=examples examples/metrics.ts
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using plugin = await runtime.createPluginFromWat(await readExampleWat("math"), {
    name: "math-plugin",
  });

  // Execute multiple times
  for (let i = 1; i <= 5; i++) await plugin.callI32("factorial", [i]);

  // Get metrics
  const metrics = await plugin.metrics();
  print(`Total calls: ${metrics.callCount}`);
  print(`Success count: ${metrics.successCount}`);
  print(`Failed count: ${metrics.failureCount}`);
  print(`Avg execution time: ${metrics.avgExecutionTimeNs}ns`);
  print(`Total execution time: ${metrics.totalExecutionTimeNs}ns`);
}

if (import.meta.main) await main();

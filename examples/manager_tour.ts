/**
 * The guide's plugin manager walkthrough: subscribe to events, load a
 * plugin, initialize and call it, list, inspect, account, unload all.
 *
 *     deno run --allow-read=examples examples/manager_tour.ts
 *
 * @module
 */

import { PluginManager, WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the walkthrough. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({
    execution: { isolation: "inline" },
    resourceLimits: { maxMemoryPages: 16, maxInstances: 5, maxExecutionTimeMs: 1000 },
  });
  await using manager = new PluginManager(runtime);

  // Subscribe to events
  const events = manager.subscribe();
  const eventLog: string[] = [];
  const reading = (async () => {
    for await (const event of events) {
      eventLog.push(`${event.type} ${event.pluginId} ${JSON.stringify(event.detail)}`);
    }
  })();

  // Load multiple plugins
  const greetHandle = await manager.loadWat(await readExampleWat("greet"), { name: "greeter" });
  print(`Loaded plugin: ${greetHandle.id}`);
  const mathHandle = await manager.loadWat(await readExampleWat("math"), { name: "math" });
  print(`Loaded plugin: ${mathHandle.id}`);

  // Initialize and use
  await manager.initialize(greetHandle);
  const len = await manager.callI32(greetHandle, "greet_len", []);
  print(`Greeting length: ${len}`);
  print(`6 * 7 = ${await manager.callI32(mathHandle, "mul", [6, 7])}`);

  // List all plugins
  print(`Loaded plugins: ${JSON.stringify(manager.listPlugins().map((h) => h.id))}`);

  // Get plugin info
  const info = await manager.getInfo(greetHandle);
  print(`State: ${info.state}`);
  print(`Calls: ${info.metrics.callCount}`);

  // Get manager stats
  const stats = manager.stats();
  print(`Active plugins: ${stats.activePlugins}`);
  print(`Total calls: ${stats.totalCalls}`);

  // Cleanup
  await manager.unloadAll();
  print(`After unloadAll: ${manager.stats().activePlugins} active`);
  await manager.close();
  await reading;
  print("Events:");
  for (const line of eventLog) print(`  ${line}`);
}

if (import.meta.main) await main();

/**
 * The guide's capabilities: a plugin granted `ReadConfig`, `WriteState` and
 * `CallHostFunction` reads its config and stores state; without
 * `NetworkAccess`, its network call fails.
 *
 *     deno run --allow-read=examples examples/capabilities.ts
 *
 * @module
 */

import { Capability, CapabilityDeniedError, WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using plugin = await runtime.createPluginFromWat(await readExampleWat("secure"), {
    name: "secure-plugin",
    capabilities: [Capability.ReadConfig, Capability.WriteState, Capability.CallHostFunction],
    config: { greeting: "Hello, World!" },
  });
  print(`Capabilities: ${plugin.capabilities.join(", ")}`);
  print(`Greeting length: ${await plugin.callI32("remember_greeting", [])}`);

  // Without NetworkAccess capability, network calls will fail
  try {
    await plugin.callI32("fetch", []);
  } catch (err) {
    if (!(err instanceof CapabilityDeniedError)) throw err;
    print(`Network denied: missing "${err.capability}"`);
  }
}

if (import.meta.main) await main();

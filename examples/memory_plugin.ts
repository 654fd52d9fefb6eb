/**
 * The guide's plugin with linear memory: size, write a byte, read it back,
 * and the host's own bounds-checked view of the same memory.
 *
 *     deno run --allow-read=examples examples/memory_plugin.ts
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using plugin = await runtime.createPluginFromWat(await readExampleWat("memory"), {
    name: "memory-plugin",
  });

  // Check memory size
  const size = await plugin.callI32("get_memory_size", []);
  print(`Memory size: ${size} page(s) (${size * 64}KB)`);

  // Write data
  await plugin.callVoid("write_byte", [0, 42]);

  // Read data
  const value = await plugin.callI32("read_byte", [0]);
  print(`Read value: ${value}`);

  // The host sees the same memory, and never outside it.
  const [byte] = await plugin.readMemory(0, 1);
  print(`Host read: ${byte}`);
  try {
    await plugin.readMemory(65_535, 2);
  } catch (err) {
    print(`Out of bounds: ${(err as Error).message}`);
  }
}

if (import.meta.main) await main();

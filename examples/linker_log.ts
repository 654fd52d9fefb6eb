/**
 * The guide's module linking: the host defines `env.log` with a linker and
 * the plugin calls it.
 *
 *     deno run --allow-read=examples examples/linker_log.ts
 *
 * @module
 */

import { Capability, WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await runtime.compileWat("logger", await readExampleWat("logger"));

  // Import host functions
  const linker = runtime.createLinker();
  linker.funcWrap("env", "log", (msg: number) => {
    print(`Plugin log: ${msg}`);
  });

  await using plugin = await runtime.createPluginWithLinker(compiled, {
    name: "logger",
    capabilities: [Capability.CallHostFunction],
  }, linker);
  await plugin.callI32("run", [21]);

  // Without the capability, the same call is denied.
  await using denied = await runtime.createPluginWithLinker(compiled, { name: "denied" }, linker);
  try {
    await denied.callI32("run", [21]);
  } catch (err) {
    print(`Without CallHostFunction: ${(err as Error).message}`);
  }
}

if (import.meta.main) await main();

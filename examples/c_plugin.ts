/**
 * A plugin written in C without libc or WASI (`c_plugin/plugin.c`, built by
 * `c_plugin/build.sh`): `process_data` through `callWithBytes`, `transform`
 * through `callBytes`, and the host functions `host_log` and
 * `host_get_config`.
 *
 *     deno run --allow-read=examples examples/c_plugin.ts
 *
 * @module
 */

import { configure, reset } from "@logtape/logtape";
import { Capability, WasmRuntime } from "../mod.ts";
import type { Print } from "./_wat.ts";

/** Runs the example, printing what the plugin logs through `host_log`. */
export async function main(print: Print = console.log): Promise<void> {
  await configure({
    reset: true,
    sinks: { print: (record) => print(`  [${record.level}] ${record.properties.message}`) },
    loggers: [
      { category: ["wasmplug", "plugin"], sinks: ["print"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  try {
    await run(print);
  } finally {
    await reset();
  }
}

async function run(print: Print): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });

  const wasmBytes = await Deno.readFile(new URL("./c_plugin/plugin.wasm", import.meta.url));
  const compiled = await runtime.compile("c_plugin", wasmBytes);
  print(`Compiled ${compiled.name}: ${compiled.sizeBytes} bytes`);
  await using plugin = await runtime.createPlugin(compiled, {
    name: "c_plugin",
    capabilities: [Capability.ReadConfig],
    config: { prefix: "C says: " },
  });

  const input = new TextEncoder().encode("Hello, World!");
  const checksum = await plugin.callWithBytes("process_data", input) >>> 0;
  print(`process_data("Hello, World!") = 0x${checksum.toString(16)} (Adler-32)`);
  const output = await plugin.callBytes("transform", input);
  print(`transform("Hello, World!") = ${new TextDecoder().decode(output)}`);
}

if (import.meta.main) await main();

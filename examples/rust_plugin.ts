/**
 * The guide's "Compiling Rust to WASM": load `my_plugin.wasm` (built from
 * `rust_plugin/lib.rs` by `rust_plugin/build.sh`) and call `add` and
 * `process_data(ptr, len)`.
 *
 *     deno run --allow-read=examples examples/rust_plugin.ts
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import type { Print } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });

  const wasmBytes = await Deno.readFile(new URL("./rust_plugin/my_plugin.wasm", import.meta.url));
  const compiled = await runtime.compile("my_plugin", wasmBytes);
  print(`Compiled ${compiled.name}: ${compiled.sizeBytes} bytes`);
  await using plugin = await runtime.createPlugin(compiled, { name: "my_plugin" });

  print(`add(2, 3) = ${await plugin.callI32("add", [2, 3])}`);
  const input = new TextEncoder().encode("Hello, World!");
  print(`process_data("Hello, World!") = ${await plugin.callWithBytes("process_data", input)}`);
  print(
    `handle({ greeting: "hi" }) = ${
      JSON.stringify(await plugin.callJson("handle", { greeting: "hi" }))
    }`,
  );
}

if (import.meta.main) await main();

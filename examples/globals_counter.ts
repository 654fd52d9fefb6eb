/**
 * The guide's global counter: `increment`, `get`, `reset` on a mutable global.
 *
 *     deno run --allow-read=examples examples/globals_counter.ts
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using counter = await runtime.createPluginFromWat(await readExampleWat("counter"), {
    name: "counter",
  });
  for (let i = 0; i < 3; i++) print(`increment -> ${await counter.callI32("increment", [])}`);
  print(`get -> ${await counter.callI32("get", [])}`);
  await counter.callVoid("reset", []);
  print(`after reset -> ${await counter.callI32("get", [])}`);
}

if (import.meta.main) await main();

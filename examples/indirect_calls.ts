/**
 * The guide's table and `call_indirect`: slot 0 adds, slot 1 multiplies, and
 * a slot outside the table traps.
 *
 *     deno run --allow-read=examples examples/indirect_calls.ts
 *
 * @module
 */

import { TrapError, WasmRuntime } from "../mod.ts";
import { type Print, readExampleWat } from "./_wat.ts";

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using plugin = await runtime.createPluginFromWat(await readExampleWat("indirect"), {
    name: "dispatch",
  });
  print(`table[0](6, 7) = ${await plugin.callI32("call_indirect", [0, 6, 7])}`);
  print(`table[1](6, 7) = ${await plugin.callI32("call_indirect", [1, 6, 7])}`);
  try {
    await plugin.callI32("call_indirect", [2, 6, 7]);
  } catch (err) {
    if (!(err instanceof TrapError)) throw err;
    print(`table[2] traps: ${err.trap}`);
  }
}

if (import.meta.main) await main();

/**
 * Inline call overhead: `plugin.callI32("add")` beside a raw
 * `instance.exports.add()` call, an awaited async wrapper of that raw call,
 * and the clock reads that metrics need; and the manager's overhead per call
 * over calling the plugin directly. All measured in the same run.
 *
 * @module
 */

import { PluginManager, WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/compile/_artifact.ts";
import { ADD_WAT, bareInlineRuntime } from "./_add_plugin.ts";
import { type Figure, interleave, median } from "./_measure.ts";

/** Runs the comparison and returns its figures and ratios. */
export async function benchCallOverhead(
  options: { rounds?: number; iterations?: number } = {},
): Promise<{ figures: Figure[]; ratios: Record<string, number> }> {
  const { rounds = 30, iterations = 20_000 } = options;
  await using runtime = bareInlineRuntime();
  await using metered = new WasmRuntime({ execution: { isolation: "inline" } });
  await using plugin = await runtime.createPluginFromWat(ADD_WAT, { name: "add" });
  await using meteredPlugin = await metered.createPluginFromWat(ADD_WAT, { name: "add" });
  await using manager = new PluginManager(runtime);
  const handle = await manager.loadWat(ADD_WAT, { name: "managed" });
  const compiled = await runtime.compileWat("add", ADD_WAT);
  const { instance } = await WebAssembly.instantiate(
    artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>,
  );
  const add = instance.exports.add as (a: number, b: number) => number;
  // deno-lint-ignore require-await
  const wrapped = async (a: number, b: number): Promise<number> => add(a, b);

  let sink = 0;
  const figures = await interleave(
    {
      raw: {
        iterations: iterations * 10,
        run: (n) => {
          for (let i = 0; i < n; i++) sink += add(i, 1);
        },
      },
      awaitedRaw: {
        iterations,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await wrapped(i, 1);
        },
      },
      performanceNow: {
        iterations,
        run: (n) => {
          for (let i = 0; i < n; i++) sink += performance.now();
        },
      },
      dateNow: {
        iterations,
        run: (n) => {
          for (let i = 0; i < n; i++) sink += Date.now();
        },
      },
      callI32: {
        iterations,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await plugin.callI32("add", [i, 1]);
        },
      },
      callI32Metered: {
        iterations,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await meteredPlugin.callI32("add", [i, 1]);
        },
      },
      managerCallI32: {
        iterations,
        run: async (n) => {
          for (let i = 0; i < n; i++) sink += await manager.callI32(handle, "add", [i, 1]);
        },
      },
    },
    rounds,
    { settle: true },
  );
  if (sink === 0.5) console.log(sink); // keeps the loops from being optimized away
  const floor = median(figures, "awaitedRaw") + 2 * median(figures, "performanceNow");
  return {
    figures,
    ratios: {
      callI32VsAwaitedRawPlusClocks: median(figures, "callI32") / floor,
      callI32VsRaw: median(figures, "callI32") / median(figures, "raw"),
      meteredVsUnmetered: median(figures, "callI32Metered") / median(figures, "callI32"),
      managerVsDirect: median(figures, "managerCallI32") / median(figures, "callI32"),
    },
  };
}

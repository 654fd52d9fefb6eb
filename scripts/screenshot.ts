/**
 * Regenerates `docs/dashboard.png`, the README's picture of the dashboard:
 * loads a few example plugins in a manager, serves its dashboard, opens it
 * in headless Chromium, makes some traffic (a few failed calls, and a plugin
 * whose calls suddenly cost a thousand times more fuel, so the anomaly
 * detector speaks up) and takes a screenshot of the real page.
 *
 *     deno task screenshot            # needs Chromium: apt-get install -y chromium
 *
 * @module
 */

import { PluginManager, WasmRuntime } from "../mod.ts";
import { Chromium, findChromium } from "./_chromium.ts";

const root = new URL("../", import.meta.url);
const output = new URL("docs/dashboard.png", root);

/** A plugin whose cost grows with its argument: `resize(n)` loops `n` times. */
const RESIZE_WAT = `(module
  (memory (export "memory") 2)
  (func (export "resize") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.xor (local.get $acc) (i32.mul (local.get $i) (i32.const 31))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)))`;

/** A validator that rejects (traps on) every 700th input. */
const VALIDATE_WAT = `(module
  (func (export "validate") (param $n i32) (result i32)
    (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 700))) (then unreachable))
    (i32.const 1)))`;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readText(path: string): Promise<string> {
  return await Deno.readTextFile(new URL(path, root));
}

/** Runs the scenario and writes the screenshot; returns where it went. */
export async function main(): Promise<URL> {
  const path = findChromium();
  if (path === undefined) {
    throw new Error("No Chromium found: apt-get install -y chromium, or set CHROMIUM_PATH");
  }
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  await using manager = new PluginManager(runtime);
  await using server = manager.serve({ port: 0 });
  await using browser = await Chromium.launch({ path });
  const page = await browser.open(server.url, { width: 1280, height: 760 });
  await page.waitFor(`document.getElementById("status").className === "live"`);

  const math = await manager.loadWat(await readText("examples/wat/math.wat"), { name: "math" });
  const counter = await manager.loadWat(await readText("examples/wat/counter.wat"), {
    name: "counter",
  });
  const rust = await manager.load(
    await Deno.readFile(new URL("examples/rust_plugin/my_plugin.wasm", root)),
    { name: "rust-plugin" },
  );
  const validator = await manager.loadWat(VALIDATE_WAT, { name: "validator" });
  const thumbnails = await manager.loadWat(RESIZE_WAT, { name: "thumbnails" });
  for (const handle of [math, counter, rust, validator, thumbnails]) {
    await manager.initialize(handle);
  }

  // Steady traffic, but for half a second `thumbnails` gets a thousand times
  // more work per call; the traffic goes on while the picture is taken.
  const started = Date.now();
  let stop = false;
  const traffic = (async () => {
    for (let i = 1; !stop; i++) {
      await manager.callI32(math, "factorial", [i % 10]);
      await manager.callI32(counter, "increment");
      if (i % 2 === 0) await manager.callJson(rust, "handle", { request: i });
      await manager.callI32(validator, "validate", [i]).catch(() => {});
      if (i % 4 === 0) {
        const elapsed = Date.now() - started;
        const slow = elapsed > 3_500 && elapsed < 4_000;
        await manager.callI32(thumbnails, "resize", [slow ? 200_000 : 200]);
      }
      // Let the server and the browser in.
      if (i % 20 === 0) await sleep(15);
    }
  })();
  await page.waitFor(`document.querySelector("#anomalies li.anomaly") !== null`, 30_000);
  await sleep(2_500);
  const png = await page.screenshot();
  stop = true;
  await traffic;
  await Deno.writeFile(output, png);
  if (page.problems.length > 0) {
    throw new Error(`The page reported problems: ${JSON.stringify(page.problems)}`);
  }
  return output;
}

if (import.meta.main) {
  const written = await main();
  console.log(`Wrote ${written.pathname}`);
}

/**
 * Hostile WASI arguments: every preview1 function wasmplug implements,
 * called thousands of times with arguments drawn to hurt (pointers at and
 * past the end of memory, 2 GiB iovecs, u64 extremes, closed fds) or to
 * reach the file system (the preopen's fd, real paths, paths escaping the
 * preopen through `..`, an absolute path or a symlink). Every call answers
 * an errno or fails with a typed `WasmError`, within the call's time limit;
 * nothing outside the preopen is read (its file's bytes never reach the
 * guest's memory), changed or created; and the plugin
 * still answers afterwards. More rounds: `WASMPLUG_FUZZ_CASES=5000`.
 */
import assert from "node:assert/strict";
import { Capability, WasmError } from "../../mod.ts";
import { SIGNATURES } from "../../src/wasi/_abi.ts";
import { FUZZ_ENV, fuzzSettings } from "../fuzz/_settings.ts";
import { random } from "../instrument/_random_program.ts";
import { testEachIsolation } from "../_helpers.ts";
import { BOUND_MS } from "./_within.ts";
import { OUTSIDE_SECRET, WasiArguments, wasiCallsWat } from "./fixtures/wasi_calls.ts";

/** The largest preview1 errno (`ENOTCAPABLE`). */
const MAX_ERRNO = 76;
/** Rounds (one call of each function) before the plugin is replaced by a fresh one. */
const ROUNDS_PER_PLUGIN = 20;

const root = await Deno.makeTempDir({ prefix: "wasmplug_wasi_fuzz_" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

/** A fresh preopen beside a directory it must not reach, which one of its symlinks names. */
async function sandbox(name: string): Promise<{ preopen: string; outside: string }> {
  const preopen = `${root}/${name}/preopen`;
  const outside = `${root}/${name}/outside`;
  await Deno.mkdir(`${preopen}/sub`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${preopen}/a`, "inside");
  await Deno.writeTextFile(`${outside}/secret`, OUTSIDE_SECRET);
  await Deno.symlink(outside, `${preopen}/escape`);
  await Deno.symlink(`${outside}/secret`, `${preopen}/escape_file`);
  return { preopen, outside };
}

// Made before the tests, whose permissions do not allow making symlinks.
const sandboxes = { inline: await sandbox("inline"), worker: await sandbox("worker") };

testEachIsolation("Hostile WASI: random arguments to every preview1 function", {
  permissions: { read: [root], write: [root], env: FUZZ_ENV },
}, async (t, { isolation, createRuntime }) => {
  const { cases, seed } = fuzzSettings({
    cases: isolation === "inline" ? 2000 : 600,
    seed: 0x5a51,
  });
  const { preopen, outside } = sandboxes[isolation];
  await using rt = createRuntime({ resourceLimits: { maxInstances: 1000 } });
  const compiled = await rt.compileWat("wasi_calls", wasiCallsWat());
  const draw = new WasiArguments(random(seed));
  const create = async () => {
    const plugin = await rt.createPlugin(compiled, {
      capabilities: [Capability.Wasi, Capability.FileSystem, Capability.Random],
      wasi: { preopens: { "/": preopen }, args: ["fuzz", "é"], env: { K: "V" } },
      allowedPaths: { read: [preopen], write: [preopen] },
      resourceLimits: { maxExecutionTimeMs: 200 },
    });
    await plugin.callVoid("fill", [draw.seed()]);
    return plugin;
  };

  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  let plugin = await create();
  try {
    for (let round = 0; round < cases; round++) {
      if (round % ROUNDS_PER_PLUGIN === ROUNDS_PER_PLUGIN - 1) {
        await plugin.stop();
        plugin = await create();
      }
      for (const name of Object.keys(SIGNATURES)) {
        if (name === "proc_exit" && !draw.exits()) continue;
        const args = draw.draw(name);
        const call = `${name}(${args.join(", ")})`;
        const start = performance.now();
        let outcome: string;
        try {
          const [errno] = await plugin.call(`f_${name}`, args) as [number];
          outcome = errno === 0 ? "success" : "errno";
          if (!(Number.isInteger(errno) && errno >= 0 && errno <= MAX_ERRNO)) {
            problems.push(`${call} answered ${errno}`);
          }
        } catch (err) {
          outcome = err instanceof WasmError ? err.kind : "untyped";
          if (!(err instanceof WasmError)) problems.push(`${call} threw ${String(err)}`);
          if (plugin.state === "error") {
            await plugin.stop();
            plugin = await create();
          }
        }
        const elapsed = performance.now() - start;
        if (elapsed > BOUND_MS) problems.push(`${call} took ${elapsed.toFixed(0)} ms`);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
      if (await plugin.callI32("leaked") !== 0) problems.push(`round ${round}: read the secret`);
    }
    await t.step("every call answers an errno or a typed error, in time", () => {
      assert.deepEqual(problems, []);
      // The draws reach the file system: calls succeed as well as fail.
      assert.ok((outcomes.get("success") ?? 0) > cases, JSON.stringify([...outcomes]));
      assert.ok((outcomes.get("errno") ?? 0) > cases, JSON.stringify([...outcomes]));
    });

    await t.step("nothing outside the preopen was read into or changed", async () => {
      const entries = [];
      for await (const entry of Deno.readDir(outside)) entries.push(entry.name);
      assert.deepEqual(entries, ["secret"]);
      assert.equal(await Deno.readTextFile(`${outside}/secret`), OUTSIDE_SECRET);
      const beside = [];
      for await (const entry of Deno.readDir(`${preopen}/..`)) beside.push(entry.name);
      assert.deepEqual(beside.sort(), ["outside", "preopen"]);
    });

    await t.step("the plugin still answers", async () => {
      const [errno] = await plugin.call("f_sched_yield", []) as [number];
      assert.equal(errno, 0);
    });
  } finally {
    await plugin.stop();
  }
});

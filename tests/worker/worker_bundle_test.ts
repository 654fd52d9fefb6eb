import assert from "node:assert/strict";
import { WORKER_SOURCE } from "../../src/worker/_worker_bundle.generated.ts";
import { workerScriptOf } from "../../src/worker/_worker_start.ts";
import { DENO, runDeno } from "../_helpers.ts";

Deno.test("The bundled worker entry is up to date with its sources", {
  permissions: { run: [DENO] },
}, async () => {
  const { code, stdout, stderr } = await runDeno([
    "run",
    "--allow-read=.",
    "--allow-run",
    "scripts/build_worker.ts",
    "--check",
  ]);
  assert.equal(code, 0, `${stdout}${stderr}\nRun \`deno task build:worker\``);
});

Deno.test("The bundled worker entry holds wasmplug's own code and nothing else", {
  permissions: "none",
}, () => {
  // esbuild names each source it bundles in a comment of its own.
  const sources = [...WORKER_SOURCE.matchAll(/^\/\/ (\S+\.ts)$/gm)].map((match) => match[1]);
  assert.ok(sources.includes("src/worker/_worker_main.ts"), sources.join(", "));
  assert.deepEqual(sources.filter((source) => !source!.startsWith("src/")), []);
  // The host's logging and the WAT compiler stay on the host.
  assert.doesNotMatch(WORKER_SOURCE, /@logtape|getLogger|wabt/);
  // Deno loads a worker's own imports with the worker's permissions: the bundle has none but
  // Deno's built-in modules.
  const imports = [...WORKER_SOURCE.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
  assert.deepEqual(imports.filter((specifier) => !specifier!.startsWith("node:")), []);
});

Deno.test("Workers start from a blob: URL unless a runtime's internal options name a script", {
  permissions: "none",
}, () => {
  const bundled = workerScriptOf({});
  assert.equal(bundled.protocol, "blob:");
  // Made once per process.
  assert.equal(workerScriptOf({}).href, bundled.href);
  const wrapper = new URL("./fixtures/slow_worker.ts", import.meta.url);
  assert.equal(workerScriptOf({ workerUrl: wrapper }).href, wrapper.href);
  // An option of one runtime, not a setting of the process.
  assert.equal(workerScriptOf({}).href, bundled.href);
});

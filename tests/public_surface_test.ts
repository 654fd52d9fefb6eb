/**
 * The public surface has one name per concept (issue #15, item 10):
 * `WasmPluginManager` is `PluginManager`, event subscriptions come only from
 * `manager.subscribe()`, and the manager offers every call of a plugin. `mod.ts`
 * exports what API.md names, and the CLI and the testing module use only it
 * (issue #16).
 */
import assert from "node:assert/strict";
import * as wasmplug from "../mod.ts";
import { PluginManager, WasmPluginManager } from "../mod.ts";

Deno.test("The public surface: one manager, subscriptions only from subscribe()", async () => {
  assert.equal(WasmPluginManager, PluginManager);
  assert.ok(!("EventSubscription" in wasmplug), "EventSubscription is a type, not a class");
  for (const call of ["callI32", "callI64", "callF32", "callF64", "callVoid", "call"] as const) {
    assert.equal(typeof PluginManager.prototype[call], "function", call);
  }
  for (const call of ["callWithBytes", "callBytes", "callJson", "run"] as const) {
    assert.equal(typeof PluginManager.prototype[call], "function", call);
  }
  await using runtime = new wasmplug.WasmRuntime({ execution: { isolation: "inline" } });
  await using manager = new PluginManager(runtime);
  const events = manager.subscribe({ bufferSize: 4 });
  assert.ok(!("push" in events), "only the manager pushes events");
  await events.return();
});

/**
 * Every runtime value `mod.ts` exports, as API.md names it (issue #16). A
 * helper exported by accident (`resolveLimits`, `parseManifest`…) fails the
 * test, and so does a name of API.md that went missing.
 */
const API_MD_VALUES = [
  // Runtime
  "WasmRuntime",
  "CompiledModule",
  // ResourceLimits
  "DEFAULT_LIMITS",
  "RESTRICTIVE_LIMITS",
  "UNLIMITED_LIMITS",
  // WasmPlugin
  "WasmPlugin",
  // Errors
  "WasmError",
  "CompilationError",
  "InstantiationError",
  "InvalidFunctionError",
  "ImportNotFoundError",
  "TypeMismatchError",
  "TimeoutError",
  "OutOfMemoryError",
  "FuelExhaustedError",
  "CallDepthExceededError",
  "MemoryOutOfBoundsError",
  "TrapError",
  "ResourceLimitError",
  "CapabilityDeniedError",
  "HostFunctionError",
  "PluginStateError",
  "PluginNotFoundError",
  "WorkerCrashedError",
  // Capabilities
  "Capability",
  // PluginManager
  "PluginManager",
  "WasmPluginManager",
];

/** Values API.md does not list by name, each with why users need it. */
const BEYOND_API_MD: Record<string, string> = {
  Linker: "what runtime.createLinker() returns and { linker } options take",
  PluginEvent: "the class of the manager's events (subscribe(), addEventListener)",
  GuestError: "the WasmError a call fails with when the guest calls host_set_error (README)",
  WasiPreview1: "the stand-alone WASI preview 1 host (CHANGELOG); its examples import it",
  WasiExit: "what WasiPreview1's proc_exit throws, for runners that call _start themselves",
};

Deno.test("mod.ts exports the values of API.md, and no helper", () => {
  const expected = [...API_MD_VALUES, ...Object.keys(BEYOND_API_MD)].sort();
  assert.deepEqual(Object.keys(wasmplug).sort(), expected);
  for (const helper of ["resolveLimits", "parseCapabilities", "parseManifest"]) {
    assert.ok(!(helper in wasmplug), `${helper} is internal`);
  }
});

/** Static imports, re-exports and dynamic imports of a module's source, comments excluded. */
function importSpecifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specifiers: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[\w*\s{},$]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) specifiers.push(match[1]!);
  }
  const dynamic = code.match(/\bimport\s*\(/g)?.length ?? 0;
  const literal = [...code.matchAll(patterns[2]!)].length;
  assert.equal(dynamic, literal, "every dynamic import names its module literally");
  return specifiers;
}

/** The bare specifiers deno.json maps to npm packages. */
async function npmImports(): Promise<Set<string>> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const entries = Object.entries(config.imports as Record<string, string>);
  return new Set(entries.filter(([, target]) => target.startsWith("npm:")).map(([name]) => name));
}

/** Whether `specifier` is the public API, a dependency, or the package's own metadata. */
function isAllowed(specifier: string, npm: ReadonlySet<string>): boolean {
  return specifier === "./mod.ts" ||
    specifier === "./deno.json" || // the CLI's --version
    specifier.startsWith("npm:") ||
    specifier.startsWith("node:") ||
    npm.has(specifier);
}

Deno.test("cli.ts and testing.ts use only the public API", {
  permissions: { read: true },
}, async (t) => {
  const npm = await npmImports();

  await t.step("the check sees internal imports, also multi-line and dynamic ones", () => {
    const sample = `/** \`import { x } from "./src/_y.ts"\` in a comment is no import */
import { a,
  type B } from "./mod.ts";
import { artifactOf } from "./src/_artifact.ts";
export { c } from "./src/host/_env.ts";
import "./src/compiled_module.ts";
const d = await import("./src/_wat.ts");
import { configure } from "@logtape/logtape";`;
    const found = importSpecifiers(sample);
    assert.deepEqual(found.sort(), [
      "./mod.ts",
      "./src/_artifact.ts",
      "./src/_wat.ts",
      "./src/compiled_module.ts",
      "./src/host/_env.ts",
      "@logtape/logtape",
    ]);
    assert.deepEqual(found.filter((specifier) => !isAllowed(specifier, npm)), [
      "./src/_artifact.ts",
      "./src/_wat.ts",
      "./src/compiled_module.ts",
      "./src/host/_env.ts",
    ]);
  });

  for (const file of ["cli.ts", "testing.ts"]) {
    await t.step(`${file} imports only ./mod.ts and npm/node modules`, async () => {
      const source = await Deno.readTextFile(new URL(`../${file}`, import.meta.url));
      const specifiers = importSpecifiers(source);
      assert.ok(specifiers.includes("./mod.ts"), `${file} imports ./mod.ts`);
      assert.deepEqual(specifiers.filter((specifier) => !isAllowed(specifier, npm)), []);
    });
  }
});

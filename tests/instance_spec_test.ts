/**
 * The spec of a plugin's instance is plain data: the runtime builds it once,
 * a worker plugin posts it to its worker as is, and an instance made from a
 * clone of it, bound to the host's functions, is the same instance. A spec
 * with a parked state takes that state over in place of starting.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Capability, Linker, WasmRuntime } from "../mod.ts";
import { artifactOf, prepareModule } from "../src/compile/_artifact.ts";
import type { CallBudget } from "../src/backend/_backend.ts";
import { planImports } from "../src/backend/_import_plan.ts";
import { PluginInstance } from "../src/backend/_instance.ts";
import {
  describeInstance,
  type InstanceBindings,
  type InstanceSpec,
} from "../src/backend/_instance_spec.ts";
import { createHostServices } from "../src/host/_services.ts";
import { DEFAULT_LIMITS } from "../src/resource_limits.ts";

/**
 * A counter that starts at 10 (its start function), doubles through a linker
 * function, keeps a number in memory, and as a WASI command exits with the
 * sum of the two.
 */
const COUNTER_WAT = `(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (func $init (global.set $count (i32.const 10)))
  (start $init)
  (func (export "bump") (result i32)
    (global.set $count (call $twice (global.get $count)))
    (global.get $count))
  (func (export "remember") (param i32) (i32.store (i32.const 0) (local.get 0)))
  (func (export "_start")
    (call $exit (i32.add (global.get $count) (i32.load (i32.const 0))))))`;

const BUDGET: CallBudget = { fuel: 1_000_000, timeoutMs: 30_000, signal: undefined };

/** The spec of the counter, prepared as for a worker plugin, and the bindings of its host side. */
async function counter(): Promise<{ spec: InstanceSpec; bindings: InstanceBindings }> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await runtime.compileWat("counter", COUNTER_WAT);
  const artifact = artifactOf(compiled);
  const linker = new Linker().funcWrap("env", "twice", (x: number) => 2 * x);
  const { plan, linkerFunctions } = planImports(
    artifact.info.imports,
    artifact.info.types,
    linker,
    true,
  );
  const prepared = await prepareModule(artifact, DEFAULT_LIMITS, {
    fuel: true,
    callDepth: true,
    deadline: "clock",
    exportState: true,
  });
  const capabilities = new Set([Capability.CallHostFunction, Capability.Wasi]);
  const spec = describeInstance({
    prepared,
    imports: plan,
    pluginName: "counter",
    capabilities,
    allowedHosts: ["example.com"],
    limits: DEFAULT_LIMITS,
    wasi: { args: ["--verbose"], env: { MODE: "test" } },
    writablePaths: [],
    idleTimeoutMs: 2000,
  });
  const services = createHostServices({
    pluginId: "counter-id",
    pluginName: "counter",
    capabilities,
    config: new Map(),
    storage: new Map(),
    tools: new Map(),
    allowedHosts: spec.allowedHosts,
    onMessage: undefined,
    onLog: undefined,
    logStats: { droppedRecords: 0 },
    maxStorageBytes: DEFAULT_LIMITS.maxStorageBytes,
  });
  return { spec, bindings: { linkerFunction: (index) => linkerFunctions[index]!, services } };
}

/** `PluginInstance.create`, closed at the end of the caller's `await using` scope. */
async function instantiate(
  spec: InstanceSpec,
  bindings: InstanceBindings,
): Promise<PluginInstance & AsyncDisposable> {
  const instance = await PluginInstance.create(spec, bindings);
  return Object.assign(instance, { [Symbol.asyncDispose]: () => instance.close() });
}

/**
 * Fails unless `value` is made only of what crosses to a worker unchanged:
 * primitives, arrays, plain objects, byte arrays, shared buffers and compiled modules (no
 * functions, signals, sets or class instances, which a clone would drop or
 * change).
 */
function assertPlainData(value: unknown, path: string): void {
  if (value === null || typeof value !== "object") {
    assert.ok(
      typeof value !== "function" && typeof value !== "symbol",
      `${path} is a ${typeof value}`,
    );
    return;
  }
  if (value instanceof Uint8Array || value instanceof WebAssembly.Module) return;
  // Shared, not copied: the process-wide count of guests' open files.
  if (value instanceof SharedArrayBuffer) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertPlainData(item, `${path}[${i}]`));
    return;
  }
  assert.equal(
    Object.getPrototypeOf(value),
    Object.prototype,
    `${path} is a ${value.constructor?.name}, not a plain object`,
  );
  for (const [key, item] of Object.entries(value)) assertPlainData(item, `${path}.${key}`);
}

Deno.test("an instance spec is plain data that structuredClone copies whole", async () => {
  const { spec } = await counter();
  assertPlainData(spec, "spec");
  assert.deepEqual(spec.capabilities, [Capability.CallHostFunction, Capability.Wasi]);
  assert.deepEqual(spec.startBudget, {
    fuel: DEFAULT_LIMITS.maxFuel,
    timeoutMs: DEFAULT_LIMITS.maxExecutionTimeMs,
  });
  assert.equal(spec.maxCallDepth, DEFAULT_LIMITS.maxCallDepth);
  assert.notEqual(spec.instrumentation?.state ?? null, null, "the module exports its state");
  assert.equal(spec.restore, null);

  const clone = structuredClone(spec);
  assert.deepEqual({ ...clone, module: null }, { ...spec, module: null });
  assert.ok(clone.module instanceof WebAssembly.Module);
  assert.deepEqual(
    WebAssembly.Module.imports(clone.module),
    WebAssembly.Module.imports(spec.module),
  );
  assert.deepEqual(
    WebAssembly.Module.exports(clone.module),
    WebAssembly.Module.exports(spec.module),
  );
});

Deno.test("an instance made from a cloned spec starts and calls the host's functions", async () => {
  const { spec, bindings } = await counter();
  await using instance = await instantiate(structuredClone(spec), bindings);
  assert.equal(instance.hasStart, true, "the start function is left to its host");
  instance.start(BUDGET, performance.now());
  assert.equal(instance.invoke("bump", [], BUDGET, performance.now()), 20);
});

Deno.test("a spec with a parked state takes it over in place of starting", async () => {
  const { spec, bindings } = await counter();
  await using first = await instantiate(spec, bindings);
  first.start(BUDGET, performance.now());
  first.invoke("bump", [], BUDGET, performance.now());
  first.invoke("remember", [7], BUDGET, performance.now());
  const state = first.captureState();
  assert.ok(typeof state !== "string", `the state cannot be handed over: ${state}`);

  await using second = await instantiate(
    structuredClone({ ...spec, restore: state }),
    bindings,
  );
  assert.equal(second.hasStart, false, "a restored instance does not start again");
  assert.deepEqual(second.readMemory(0, 4), new Uint8Array([7, 0, 0, 0]));
  assert.equal(second.invoke("bump", [], BUDGET, performance.now()), 40);
});

Deno.test("a restored instance runs a WASI command from the module's own state", async () => {
  const { spec, bindings } = await counter();
  await using first = await instantiate(spec, bindings);
  first.start(BUDGET, performance.now());
  first.invoke("remember", [7], BUDGET, performance.now());
  const state = first.captureState();
  assert.ok(typeof state !== "string", `the state cannot be handed over: ${state}`);
  await using restored = await instantiate({ ...spec, restore: state }, bindings);

  // The command's `_start` exits with count + memory: 10 + 0 in a fresh, started instance
  // (the restored one holds 10 + 7).
  const result = await restored.runCommand(new Uint8Array(), BUDGET, performance.now());
  assert.equal(result.exitCode, 10);
  assert.deepEqual(restored.readMemory(0, 4), new Uint8Array([7, 0, 0, 0]));
});

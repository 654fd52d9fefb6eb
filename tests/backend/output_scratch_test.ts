/**
 * A worker's instance copies each bytes call's output into a scratch buffer
 * it reuses from call to call (the worker copies the output on into its
 * channel at once). Outputs above 1 MiB get a fresh buffer instead, so a
 * worker does not keep its largest output for good.
 *
 * @module
 */

import assert from "node:assert/strict";
import { WasmRuntime } from "../../mod.ts";
import { artifactOf, prepareModule } from "../../src/compile/_artifact.ts";
import type { BytesCall, CallBudget } from "../../src/backend/_backend.ts";
import { planImports } from "../../src/backend/_import_plan.ts";
import { PluginInstance } from "../../src/backend/_instance.ts";
import { describeInstance } from "../../src/backend/_instance_spec.ts";
import { createHostServices } from "../../src/host/_services.ts";
import { Linker } from "../../mod.ts";
import { DEFAULT_LIMITS } from "../../src/resource_limits.ts";

/** `spread`: its output is `input[1] * 64 KiB` bytes, each `input[0]` (bytes ABI). */
const SPREAD_WAT = `(module
  (memory (export "memory") 64)
  (func (export "alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "spread") (param $ptr i32) (param $len i32) (result i64) (local $out i32)
    (local.set $out (i32.mul (i32.load8_u offset=1 (local.get $ptr)) (i32.const 65536)))
    (memory.fill (i32.const 4096) (i32.load8_u (local.get $ptr)) (local.get $out))
    (i64.or (i64.const 0x100000000000) (i64.extend_i32_u (local.get $out)))))`;

const BUDGET: CallBudget = { fuel: null, timeoutMs: 30_000, signal: undefined };

/** An instance of `SPREAD_WAT` reusing its output buffer, as a worker's does. */
async function spreadInstance(): Promise<PluginInstance & AsyncDisposable> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const artifact = artifactOf(await runtime.compileWat("spread", SPREAD_WAT));
  const { plan } = planImports(artifact.info.imports, artifact.info.types, new Linker(), false);
  const spec = describeInstance({
    prepared: await prepareModule(artifact, DEFAULT_LIMITS, {
      fuel: false,
      callDepth: false,
      deadline: false,
    }),
    imports: plan,
    pluginName: "spread",
    capabilities: new Set(),
    allowedHosts: [],
    limits: DEFAULT_LIMITS,
    wasi: {},
    writablePaths: [],
    idleTimeoutMs: Infinity,
  });
  const services = createHostServices({
    pluginId: "spread-id",
    pluginName: "spread",
    capabilities: new Set(),
    config: new Map(),
    storage: new Map(),
    tools: new Map(),
    allowedHosts: [],
    onMessage: undefined,
    onLog: undefined,
    logStats: { droppedRecords: 0 },
    maxStorageBytes: DEFAULT_LIMITS.maxStorageBytes,
  });
  const instance = await PluginInstance.create(spec, {
    linkerFunction: () => {
      throw new Error("no imports");
    },
    services,
  });
  instance.reuseOutputBuffer();
  return Object.assign(instance, { [Symbol.asyncDispose]: () => instance.close() });
}

/** The output of `spread(fill, blocks)`, as the instance returns it. */
function spread(instance: PluginInstance, fill: number, blocks: number): Uint8Array {
  const call: BytesCall = {
    fn: "spread",
    input: new Uint8Array([fill, blocks]),
    packedOutput: true,
    alloc: "alloc",
    free: null,
  };
  return instance.invokeBytes(call, BUDGET, performance.now()) as Uint8Array;
}

/** Whether `output` is `length` bytes, each `fill` (without printing megabytes when it is not). */
function isSpread(output: Uint8Array, fill: number, length: number): boolean {
  return output.length === length && output.every((byte) => byte === fill);
}

Deno.test("outputs up to 1 MiB share the instance's scratch buffer; longer ones get their own", async () => {
  await using instance = await spreadInstance();
  const MiB = 1024 * 1024;
  const first = spread(instance, 1, 16);
  assert.ok(isSpread(first, 1, MiB));
  const scratch = first.buffer;
  assert.ok(scratch.byteLength <= MiB, "the scratch grew past 1 MiB");
  const second = spread(instance, 2, 3);
  assert.ok(isSpread(second, 2, 3 * 65536));
  assert.ok(second.buffer === scratch, "an output of 1 MiB or less is not in the scratch");

  const large = spread(instance, 3, 17);
  assert.ok(isSpread(large, 3, 17 * 65536));
  assert.ok(large.buffer !== scratch && large.buffer.byteLength === large.length);
  const larger = spread(instance, 4, 20);
  assert.ok(isSpread(larger, 4, 20 * 65536) && isSpread(large, 3, 17 * 65536));
  assert.ok(larger.buffer !== large.buffer, "an output above 1 MiB is reused");
  // A short output after them is back in the scratch, which stayed at its size.
  const after = spread(instance, 5, 2);
  assert.ok(isSpread(after, 5, 2 * 65536));
  assert.ok(after.buffer === scratch && scratch.byteLength <= MiB);
});

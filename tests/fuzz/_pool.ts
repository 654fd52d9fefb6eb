/**
 * The long-lived plugins of an API fuzzing run, some loaded through the
 * manager, each with a normal call it must keep answering, and the case
 * that hammers one of them with hostile operations.
 *
 * @module
 */

import { Capability, type PluginManager, type WasmPlugin, type WasmRuntime } from "../../mod.ts";
import { CALLS_WAT, LOOPS_WAT, TRAPS_WAT } from "../fixtures/wat.ts";
import { ALL_HOST_FUNCTIONS_WAT, POOL_BYTES_WAT, readRepositoryFile, REFS_WAT } from "./_corpus.ts";
import { below, pick } from "./_mutate.ts";
import {
  bytesCall,
  type DrawnOperation,
  hostCall,
  lifecycle,
  managerCall,
  memoryAccess,
  type Target,
  typedCall,
} from "./_operations.ts";
import { checkCanary, type PoolEntry, type Run, runAll } from "./_run.ts";

/** Creates the long-lived plugins, some through the manager. */
export async function createPool(
  runtime: WasmRuntime,
  manager: PluginManager,
): Promise<PoolEntry[]> {
  const entries: PoolEntry[] = [];
  const add = async (
    label: string,
    source: string | Uint8Array,
    config: { capabilities?: Capability[]; config?: Record<string, string> },
    canary: (plugin: WasmPlugin) => Promise<unknown>,
    expected: unknown,
    options: { managed?: boolean; writable?: boolean; host?: boolean } = {},
  ): Promise<void> => {
    const compiled = typeof source === "string"
      ? await runtime.compileWat(label, source)
      : await runtime.compile(label, source);
    let plugin: WasmPlugin;
    let managed: Target["managed"];
    if (options.managed === true) {
      const handle = await manager.loadCompiled(compiled, { ...config, name: label });
      plugin = manager.get(handle);
      managed = { manager, handle };
    } else {
      plugin = await runtime.createPlugin(compiled, { ...config, name: label });
    }
    const target: Target = {
      label,
      plugin,
      exports: compiled.exports,
      writable: options.writable ?? true,
      ...(managed === undefined ? {} : { managed }),
    };
    entries.push({ target, canary: () => canary(plugin), expected, host: options.host ?? false });
  };
  await add("calls", CALLS_WAT, {}, (p) => p.callI32("add", [2, 3]), 5, { managed: true });
  await add("traps", TRAPS_WAT, {}, (p) => p.callI32("divide", [10, 2]), 5);
  await add("loops", LOOPS_WAT, {}, (p) => p.callI32("count", [5]), 5, { managed: true });
  await add(
    "bytes",
    POOL_BYTES_WAT,
    {},
    (p) => p.callBytes("echo", new Uint8Array([1, 2, 3])),
    new Uint8Array([1, 2, 3]),
  );
  await add("refs", REFS_WAT, {}, (p) => p.callI32("id_i32", [7]), 7, { managed: true });
  const allowed = [
    Capability.ReadConfig,
    Capability.WriteConfig,
    Capability.ReadState,
    Capability.WriteState,
    Capability.SendMessage,
    Capability.CallTool,
    Capability.Timer,
    Capability.Random,
    Capability.NetworkAccess,
  ];
  await add(
    "host",
    ALL_HOST_FUNCTIONS_WAT,
    { capabilities: allowed, config: { echo: "value" } },
    (p) => p.callI32("host_random_bytes", [2048, 4]),
    0,
    { host: true },
  );
  await add(
    "denied",
    ALL_HOST_FUNCTIONS_WAT,
    {},
    (p) => p.callI32("host_get_config", [0, 1, 2048, 8]),
    "capability_denied",
    {
      host: true,
      managed: true,
    },
  );
  await add(
    "rust",
    readRepositoryFile("examples/rust_plugin/my_plugin.wasm"),
    {},
    (p) => p.callI32("add", [2, 3]),
    5,
    { writable: false },
  );
  await add(
    "c",
    readRepositoryFile("examples/c_plugin/plugin.wasm"),
    { capabilities: [Capability.ReadConfig], config: { prefix: ">" } },
    // The Adler-32 of nothing: its bump allocator may be exhausted by direct calls of alloc.
    (p) => p.callI32("process_data", [0, 0]),
    1,
    { writable: false },
  );
  return entries;
}

/** One to three hostile operations at once on one pool plugin, then its normal call. */
export async function poolCase(run: Run, where: string): Promise<void> {
  const { next } = run;
  const entry = pick(run.pool, next);
  const count = 1 + below(3, next);
  const operations: DrawnOperation[] = [];
  for (let i = 0; i < count; i++) {
    const roll = next();
    const target = entry.target;
    if (roll < 0.4) operations.push(typedCall(target, next, next() < 0.3));
    else if (roll < 0.6) operations.push(bytesCall(target, next));
    else if (roll < 0.72) operations.push(memoryAccess(target, next));
    else if (roll < 0.85 && entry.host) operations.push(hostCall(target, next));
    else if (roll < 0.92) operations.push(lifecycle(target, next));
    else {
      const handles = run.pool.flatMap((e) =>
        e.target.managed === undefined ? [] : [e.target.managed.handle]
      );
      operations.push(managerCall(run.manager, handles, next));
    }
  }
  await runAll(run, operations, where);
  await checkCanary(entry, where);
}

/**
 * The inline backend: the plugin's instance lives on the host thread. For
 * trusted code; calls cost about as much as a direct wasm call.
 *
 * @module
 */

import type { PreparedModule } from "./_artifact.ts";
import type { CallBudget, PluginBackend } from "./_backend.ts";
import { createHostServices, type HostEnvironment } from "./host/_services.ts";
import { type ImportPlan, PluginInstance, type WasiSettings } from "./_instance.ts";
import type { HostCallable } from "./host/_env.ts";

/** What an inline plugin is made from. */
export interface InlineBackendOptions {
  readonly prepared: PreparedModule;
  readonly imports: readonly ImportPlan[];
  readonly linkerFunctions: readonly HostCallable[];
  readonly env: HostEnvironment;
  readonly maxCallDepth: number;
  readonly startBudget: CallBudget;
  readonly wasi: WasiSettings | undefined;
}

/** Instantiates the module on the host thread. */
export function createInlineBackend(options: InlineBackendOptions): Promise<PluginBackend> {
  const { prepared, imports, linkerFunctions, env, maxCallDepth, startBudget, wasi } = options;
  return PluginInstance.create({
    module: prepared.module,
    instrumentation: prepared.instrumentation,
    imports,
    linkerFunction: (index) => linkerFunctions[index]!,
    services: createHostServices(env),
    capabilities: env.capabilities,
    allowedHosts: env.allowedHosts,
    maxCallDepth,
    startBudget,
    pluginName: env.pluginName,
    wasi,
  });
}

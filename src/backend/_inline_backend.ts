/**
 * The inline backend: the plugin's instance lives on the host thread. For
 * trusted code; calls cost about as much as a direct wasm call.
 *
 * @module
 */

import type { PluginBackend } from "./_backend.ts";
import { createHostServices, runInHostCall } from "../host/mod.ts";
import { PluginInstance } from "./_instance.ts";
import { type BackendParts, startBudgetOf } from "./_instance_spec.ts";

/**
 * Instantiates the module on the host thread, bound to the host's own
 * functions, and runs its start function.
 *
 * @throws {InstantiationError} If instantiation or the start function fails.
 */
export async function createInlineBackend({ spec, host }: BackendParts): Promise<PluginBackend> {
  const { linkerFunctions } = host;
  const instance = await PluginInstance.create(spec, {
    // Run as the plugin's host calls, as a worker's are: a call back into the plugin is refused.
    linkerFunction: (index) => {
      const fn = linkerFunctions[index]!;
      return (...args) => runInHostCall(host.env, fn, ...args);
    },
    services: createHostServices(host.env),
  });
  try {
    await instance.start(startBudgetOf(spec, host), performance.now());
  } catch (err) {
    // What the start function opened (WASI files) is closed, and given back to the budget.
    await instance.close();
    throw err;
  }
  return instance;
}

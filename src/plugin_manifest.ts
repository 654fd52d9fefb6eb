/**
 * Plugin manifests: what a plugin says about itself — name, version, the
 * capabilities it needs, the exports it promises, the limits it asks for.
 *
 * A manifest ships inside the module as a custom section named
 * `wasmplug.manifest` (UTF-8 JSON), or beside it in the plugin config.
 *
 * @module
 */

import type { Capability } from "./capability.ts";
import type { ResourceLimits } from "./resource_limits.ts";

/**
 * A plugin's description of itself, checked when it is loaded: the exports it
 * promises must exist, the capabilities it requests must all be granted, and
 * the limits it asks for must fit within the host's.
 *
 * @example A manifest given beside the module
 * ```ts
 * import { Capability, WasmRuntime } from "@wasmplug/wasmplug";
 * import type { PluginManifest } from "@wasmplug/wasmplug";
 *
 * const manifest: PluginManifest = {
 *   name: "greeter",
 *   version: "1.0.0",
 *   capabilities: [Capability.ReadConfig],
 *   exports: ["greet_len"],
 * };
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat(
 *   '(module (func (export "greet_len") (result i32) i32.const 13))',
 *   { manifest, capabilities: [Capability.ReadConfig] },
 * );
 * console.log(plugin.manifest?.version); // 1.0.0
 * ```
 */
export interface PluginManifest {
  /** The plugin's name; the plugin's default name when the config gives none. */
  readonly name: string;
  /** The plugin's version, e.g. semver. */
  readonly version?: string;
  /** One line about what it does. */
  readonly description?: string;
  /** Capabilities it needs; each must be granted by the config. */
  readonly capabilities?: readonly Capability[];
  /** Functions it promises to export. */
  readonly exports?: readonly string[];
  /** Limits it asks for; each must be at most the host's, and they then apply. */
  readonly limits?: Partial<ResourceLimits>;
}

/**
 * Configuration of one plugin.
 *
 * @module
 */

import type { Capability } from "./capability.ts";
import type { ResourceLimits } from "./resource_limits.ts";
import type { PluginLogEntry } from "./host/plugin_log_entry.ts";
import type { PluginMessage } from "./host/plugin_message.ts";
import type { PluginManifest } from "./plugin_manifest.ts";
import type { Isolation } from "./runtime_config.ts";

/**
 * Options of `runtime.createPlugin(compiled, config)`.
 *
 * @example
 * ```ts
 * import { Capability, WasmRuntime } from "@wasmplug/wasmplug";
 * import type { WasmPluginConfig } from "@wasmplug/wasmplug";
 *
 * const config: WasmPluginConfig = {
 *   name: "secure-plugin",
 *   capabilities: [Capability.ReadConfig, Capability.WriteState, Capability.CallHostFunction],
 *   config: { greeting: "hello" },
 *   resourceLimits: { maxFuel: null },
 * };
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat("(module)", config);
 * console.log(plugin.name); // secure-plugin
 * ```
 */
export interface WasmPluginConfig {
  /**
   * A human-readable name, used in logs and events.
   *
   * @default {the compiled module's name}
   */
  name?: string;
  /**
   * A unique id; generated when absent.
   *
   * @default {a random UUID}
   */
  id?: string;
  /**
   * What the plugin may ask of the host; everything else is denied.
   *
   * @default {[]}
   */
  capabilities?: Capability[];
  /** Overrides of the runtime's limits for this plugin. */
  resourceLimits?: Partial<ResourceLimits>;
  /** The values `host_get_config` reads. */
  config?: Record<string, string>;
  /**
   * With `Capability.NetworkAccess`: the hosts the plugin may reach, each a
   * host name or IP address (`[::1]` for IPv6) with an optional port, as
   * Deno's `--allow-net` takes them: `api.example.com` (any port),
   * `127.0.0.1:8080` (that port alone, `:80` and `:443` too). Case and
   * Unicode names are normalized; anything else (a URL, a path, `*`) is a
   * `TypeError`. A redirect to another origin drops the request's
   * `Authorization`, `Cookie` and `Proxy-Authorization` headers.
   */
  allowedHosts?: string[];
  /**
   * With `Capability.FileSystem`: the paths the plugin may read and write.
   * WASI may change only what lies in `write` (or below it), in both
   * isolations; an inline plugin could otherwise change whatever the host may.
   */
  allowedPaths?: { read?: string[]; write?: string[] };
  /**
   * WASI arguments, environment and preopened directories, and how many
   * descriptors the program may have open at once (stdio and preopens
   * included; default 256, at most 4096): its host files also count in a
   * budget all plugins of the process share (see README, WASI commands).
   */
  wasi?: {
    args?: string[];
    env?: Record<string, string>;
    preopens?: Record<string, string>;
    maxOpenFiles?: number;
  };
  /**
   * The plugin's manifest, when it does not embed one (a `wasmplug.manifest`
   * custom section); it is checked against this config at load.
   */
  manifest?: PluginManifest;
  /** Receives what the plugin sends with `host_send_message` (needs `Capability.SendMessage`). */
  onMessage?: (message: PluginMessage) => void;
  /** Receives what the plugin logs with `host_log`, besides LogTape. */
  onLog?: (entry: PluginLogEntry) => void;
  /**
   * Where this plugin runs.
   *
   * @default {the runtime's isolation}
   */
  isolation?: Isolation;
}

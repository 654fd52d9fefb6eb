/**
 * Capabilities: what a plugin may ask of its host. Each one gates host
 * functions and, in worker isolation, sets the worker's Deno permissions.
 *
 * @module
 */

/**
 * The capabilities a plugin can be granted. Everything not granted is denied.
 *
 * @example Grant a plugin its configuration and nothing else
 * ```ts
 * import { Capability, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat("(module)", {
 *   name: "secure-plugin",
 *   capabilities: [Capability.ReadConfig],
 *   config: { greeting: "hello" },
 * });
 * ```
 */
export const Capability: {
  readonly ReadConfig: "read_config";
  readonly WriteConfig: "write_config";
  readonly WriteState: "write_state";
  readonly ReadState: "read_state";
  readonly SendMessage: "send_message";
  readonly CallTool: "call_tool";
  readonly CallHostFunction: "call_host_function";
  readonly NetworkAccess: "network";
  readonly FileSystem: "filesystem";
  readonly Timer: "timer";
  readonly Random: "random";
  readonly Wasi: "wasi";
} = Object.freeze(
  {
    /** `env.host_get_config`. */
    ReadConfig: "read_config",
    /** `env.host_set_config`. */
    WriteConfig: "write_config",
    /** `env.host_storage_set`. */
    WriteState: "write_state",
    /** `env.host_storage_get`. */
    ReadState: "read_state",
    /** `env.host_send_message`. */
    SendMessage: "send_message",
    /** `env.host_call_tool`. */
    CallTool: "call_tool",
    /** Any function defined through a {@linkcode Linker}. */
    CallHostFunction: "call_host_function",
    /** `env.host_http_fetch`, and the worker's net permission (`allowedHosts`). */
    NetworkAccess: "network",
    /** WASI path functions, and the worker's read/write permission (`allowedPaths`). */
    FileSystem: "filesystem",
    /** `env.host_now_ms`, `env.host_sleep_ms`. */
    Timer: "timer",
    /** `env.host_random_bytes`, WASI `random_get`. */
    Random: "random",
    /** `wasi_snapshot_preview1` imports. */
    Wasi: "wasi",
  } as const,
);

/**
 * One capability's string value, e.g. `"read_config"`.
 *
 * @example
 * ```ts
 * import { Capability } from "@wasmplug/wasmplug";
 * import type { Capability as CapabilityName } from "@wasmplug/wasmplug";
 * const granted: CapabilityName[] = [Capability.Timer, "random"];
 * ```
 */
export type Capability = typeof Capability[keyof typeof Capability];

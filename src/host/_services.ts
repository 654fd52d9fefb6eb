/**
 * The host-side state behind the built-in host functions: config, storage,
 * messages, tools and the plugin's logger. Built-ins marshal guest memory
 * where the guest runs (host thread or worker) and call these services where
 * the state lives (always the host thread).
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { Capability } from "../capability.ts";
import { CapabilityDeniedError } from "../errors.ts";
import type { PluginLogEntry } from "./plugin_log_entry.ts";
import { runInHostCall } from "../_host_call_scope.ts";
import type { PluginMessage } from "./plugin_message.ts";
import type { ToolFunction } from "./tool_function.ts";

/** What the built-in host functions of one plugin work with. */
export interface HostEnvironment {
  readonly pluginId: string;
  readonly pluginName: string;
  readonly capabilities: ReadonlySet<string>;
  /** `host_get_config`/`host_set_config` read and write this map. */
  readonly config: Map<string, string>;
  /** `host_storage_get`/`host_storage_set` read and write this map. */
  readonly storage: Map<string, Uint8Array>;
  readonly tools: ReadonlyMap<string, ToolFunction>;
  readonly allowedHosts: readonly string[];
  readonly onMessage: ((message: PluginMessage) => void) | undefined;
  readonly onLog: ((entry: PluginLogEntry) => void) | undefined;
  /** What `host_log`'s rate limit dropped, over the plugin's life. */
  readonly logStats: { droppedRecords: number };
}

/** The stateful operations of the built-in host functions. */
export interface HostServices {
  log(level: number, text: string): void;
  /** `count` records were dropped over `host_log`'s rate limit: logs a warning and counts them. */
  logsDropped(count: number): void;
  getConfig(key: string): string | undefined;
  setConfig(key: string, value: string): void;
  storageGet(key: string): Uint8Array | undefined;
  storageSet(key: string, value: Uint8Array): void;
  sendMessage(to: string, data: Uint8Array): void;
  /** JSON result text, or `undefined` when no such tool is registered. */
  callTool(name: string, argsJson: string, signal?: AbortSignal): Promise<string | undefined>;
}

/** The names of the services, as they cross the worker channel. */
export type ServiceName = keyof HostServices;

const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/**
 * The services of one plugin, on the host thread. Each checks the
 * capability again, so a compromised worker cannot skip the gate.
 */
export function createHostServices(env: HostEnvironment): HostServices {
  const logger: Logger = getLogger(["wasmplug", "plugin", env.pluginName]);
  const require = (capability: string, what: string): void => {
    if (!env.capabilities.has(capability)) throw new CapabilityDeniedError(capability, what);
  };
  return {
    log(level, text): void {
      const name = LOG_LEVELS[Math.min(Math.max(level | 0, 0), 3)]!;
      logger[name]("{message}", { message: text, pluginId: env.pluginId });
      env.onLog?.({ pluginId: env.pluginId, level: name, message: text });
    },
    logsDropped(count): void {
      // From a worker, this is a number the worker sent: count only what makes sense.
      if (!Number.isSafeInteger(count) || count <= 0) return;
      env.logStats.droppedRecords += count;
      this.log(2, `${count} log records dropped: over the rate limit`);
    },
    getConfig(key): string | undefined {
      require(Capability.ReadConfig, 'Calling "env"."host_get_config"');
      return env.config.get(key);
    },
    setConfig(key, value): void {
      require(Capability.WriteConfig, 'Calling "env"."host_set_config"');
      env.config.set(key, value);
    },
    storageGet(key): Uint8Array | undefined {
      require(Capability.ReadState, 'Calling "env"."host_storage_get"');
      return env.storage.get(key);
    },
    storageSet(key, value): void {
      require(Capability.WriteState, 'Calling "env"."host_storage_set"');
      env.storage.set(key, value.slice());
    },
    sendMessage(to, data): void {
      require(Capability.SendMessage, 'Calling "env"."host_send_message"');
      env.onMessage?.({ from: env.pluginId, to, data });
    },
    async callTool(name, argsJson, signal): Promise<string | undefined> {
      require(Capability.CallTool, 'Calling "env"."host_call_tool"');
      const tool = env.tools.get(name);
      if (tool === undefined) return undefined;
      signal?.throwIfAborted();
      const result = await runInHostCall(env, tool, JSON.parse(argsJson));
      const json = JSON.stringify(result ?? null);
      // A function or a symbol has no JSON: say so, instead of answering "no such tool".
      if (json === undefined) {
        throw new TypeError(`Tool "${name}" returned a ${typeof result}, which has no JSON form`);
      }
      return json;
    },
  };
}

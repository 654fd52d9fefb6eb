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
import { describeValue, lenientUtf8, withoutBom } from "../common/mod.ts";
import { CapabilityDeniedError, ResourceLimitError } from "../errors.ts";
import type { PluginLogEntry } from "./plugin_log_entry.ts";
import { runInHostCall } from "./_host_call_scope.ts";
import { hostCallEnded, hostCallStarted } from "./_host_call_timing.ts";
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
  /** The plugin's `maxStorageBytes`: what storage and guest-written config may hold. */
  readonly maxStorageBytes: number;
}

/**
 * Bytes of one `host_log` record that reach the logger; the rest of a longer
 * record is dropped, and the record says how much.
 */
export const MAX_LOG_RECORD_BYTES = 16 * 1024;

/** Bytes of one `host_send_message` payload; a larger one fails the call. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * Bytes a guest may hand the host in one `host_call_tool` arguments text or
 * `host_http_fetch` request, and bytes of a fetched response body the host
 * reads; more fails the call.
 */
export const MAX_HOST_CALL_BYTES = 16 * 1024 * 1024;

/**
 * What each stored record (storage or guest-written config) costs beyond its
 * key and value: about what it takes of the host's heap (its map entries, a
 * buffer of its own for the value). With 64, a full 16 MiB quota of empty
 * records took 66 MiB of heap.
 */
export const STORAGE_RECORD_OVERHEAD = 256;

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

const encoder = new TextEncoder();

/** UTF-8 length of a string, without encoding it. */
function utf8Length(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // Two bytes from U+0080, three from U+0800; a surrogate pair is two units of four bytes.
    if (code >= 0x80) length += code >= 0x800 && (code < 0xd800 || code > 0xdfff) ? 2 : 1;
  }
  return length;
}

/** Room a truncated record's note of what was dropped may take beyond the bound. */
const LOG_NOTE_ROOM = 64;

/**
 * A guest's log record as the host logs it: its first
 * {@linkcode MAX_LOG_RECORD_BYTES} bytes decoded as UTF-8, and a note of how
 * many more were dropped.
 */
export function decodeLogRecord(bytes: Uint8Array): string {
  if (bytes.length <= MAX_LOG_RECORD_BYTES) return lenientUtf8.decode(bytes);
  const kept = lenientUtf8.decode(bytes.subarray(0, MAX_LOG_RECORD_BYTES));
  return `${kept}… (${bytes.length - MAX_LOG_RECORD_BYTES} more bytes dropped)`;
}

/**
 * The most UTF-8 bytes {@linkcode decodeLogRecord} makes of a record: each
 * of the guest's bytes that is not valid UTF-8 becomes U+FFFD (3 bytes).
 */
const MAX_DECODED_RECORD_BYTES = MAX_LOG_RECORD_BYTES * 3 + LOG_NOTE_ROOM;

/**
 * {@linkcode decodeLogRecord} again on the host side, whatever a worker
 * sends: a record the guest's side cut already (its note counts the guest's
 * bytes) passes as it is.
 */
function boundLogRecord(text: string): string {
  if (text.length <= MAX_DECODED_RECORD_BYTES / 3) return text;
  const bytes = encoder.encode(text);
  return bytes.length <= MAX_DECODED_RECORD_BYTES ? text : decodeLogRecord(bytes);
}

/** A key short enough for an error message. */
function preview(key: string): string {
  return key.length <= 64 ? key : `${key.slice(0, 64)}…`;
}

/**
 * Fails with a `RangeError` (the host function's `HostFunctionError` says
 * which) when a payload a guest hands the host is larger than `max`.
 */
export function assertPayloadSize(what: string, size: number, max: number, bound: string): void {
  if (size <= max) return;
  throw new RangeError(`${what} is ${size} bytes, above the bound ${bound} = ${max}`);
}

/**
 * The services of one plugin, on the host thread. Each checks the
 * capability again, so a compromised worker cannot skip the gate.
 */
export function createHostServices(env: HostEnvironment): HostServices {
  const logger: Logger = getLogger(["wasmplug", "plugin", env.pluginName]);
  const require = (capability: string, what: string): void => {
    if (!env.capabilities.has(capability)) {
      throw new CapabilityDeniedError(
        `Capability denied: ${what} needs the "${capability}" capability`,
        { capability },
      );
    }
  };
  const held = createStorageBudget(env);
  return {
    log(level, text): void {
      const name = LOG_LEVELS[Math.min(Math.max(level | 0, 0), 3)]!;
      text = boundLogRecord(String(text));
      logger[name]("{message}", { message: text, pluginId: env.pluginId });
      env.onLog?.({ pluginId: env.pluginId, level: name, message: text });
    },
    logsDropped(count): void {
      // From a worker, this is a number the worker sent: count only what makes sense.
      if (!Number.isSafeInteger(count) || count <= 0) return;
      env.logStats.droppedRecords += count;
      // The host's notice, told from a guest's record of the same text by `droppedRecords`.
      const message = `${count} log records dropped: over the rate limit`;
      logger.warning("{message}", { message, pluginId: env.pluginId, droppedRecords: count });
      env.onLog?.({ pluginId: env.pluginId, level: "warning", message, droppedRecords: count });
    },
    getConfig(key): string | undefined {
      require(Capability.ReadConfig, 'Calling "env"."host_get_config"');
      return env.config.get(key);
    },
    setConfig(key, value): void {
      require(Capability.WriteConfig, 'Calling "env"."host_set_config"');
      held.charge(`config "${preview(key)}"`, "config", key, utf8Length(key) + utf8Length(value));
      env.config.set(key, value);
    },
    storageGet(key): Uint8Array | undefined {
      require(Capability.ReadState, 'Calling "env"."host_storage_get"');
      return env.storage.get(key);
    },
    storageSet(key, value): void {
      require(Capability.WriteState, 'Calling "env"."host_storage_set"');
      held.charge(`storage key "${preview(key)}"`, "storage", key, utf8Length(key) + value.length);
      env.storage.set(key, value.slice());
    },
    sendMessage(to, data): void {
      require(Capability.SendMessage, 'Calling "env"."host_send_message"');
      assertPayloadSize(
        'A message sent with "env"."host_send_message"',
        data.length + utf8Length(to),
        MAX_MESSAGE_BYTES,
        "MAX_MESSAGE_BYTES",
      );
      env.onMessage?.({ from: env.pluginId, to, data });
    },
    async callTool(name, argsJson, signal): Promise<string | undefined> {
      require(Capability.CallTool, 'Calling "env"."host_call_tool"');
      const tool = env.tools.get(name);
      if (tool === undefined) return undefined;
      assertPayloadSize(
        `The arguments of tool "${preview(name)}"`,
        utf8Length(argsJson),
        MAX_HOST_CALL_BYTES,
        "MAX_HOST_CALL_BYTES",
      );
      signal?.throwIfAborted();
      const startMs = hostCallStarted();
      let result: unknown;
      try {
        result = await runInHostCall(env, tool, JSON.parse(withoutBom(argsJson)));
      } finally {
        // A slow tool that failed is as much an event of its call's span as one that answered.
        if (startMs >= 0) hostCallEnded(env, `tool ${name}`, startMs);
      }
      const json = JSON.stringify(result ?? null);
      // A function or a symbol has no JSON: say so, instead of answering "no such tool".
      if (json === undefined) {
        throw new TypeError(
          `Tool "${name}" returned ${describeValue(result)}, which has no JSON form`,
        );
      }
      return json;
    },
  };
}

/** The bytes a plugin's storage and guest-written config hold, against `maxStorageBytes`. */
interface StorageBudget {
  /**
   * Accounts a write of `size` bytes to `key` of `map` (its old record given
   * back first), or fails, changing nothing, when it would not fit.
   */
  charge(what: string, map: "storage" | "config", key: string, size: number): void;
}

function createStorageBudget(env: HostEnvironment): StorageBudget {
  // Config the host gave is the host's; only what the guest wrote counts.
  const charged = { storage: new Map<string, number>(), config: new Map<string, number>() };
  let used = 0;
  for (const [key, value] of env.storage) {
    const size = utf8Length(key) + value.length + STORAGE_RECORD_OVERHEAD;
    charged.storage.set(key, size);
    used += size;
  }
  return {
    charge(what, map, key, size): void {
      const record = size + STORAGE_RECORD_OVERHEAD;
      const after = used - (charged[map].get(key) ?? 0) + record;
      if (after > env.maxStorageBytes) {
        throw new ResourceLimitError(
          `Cannot store ${what}: the plugin's storage and config would hold ${after} bytes, above the limit maxStorageBytes = ${env.maxStorageBytes}`,
          { limit: "maxStorageBytes" },
        );
      }
      used = after;
      charged[map].set(key, record);
    },
  };
}

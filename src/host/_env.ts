/**
 * The built-in host functions of the guest ABI (import module `"env"`), each
 * gated by its capability.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { Capability } from "../capability.ts";
import { CapabilityDeniedError, HostFunctionError, WasmError } from "../errors.ts";
import type { PluginMessage } from "./plugin_message.ts";
import type { ToolFunction } from "./tool_function.ts";
import { type GuestMemory, unsigned } from "./_guest_memory.ts";

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
}

/**
 * Where a host function records the error it threw, so a guest that catches
 * the exception (exception handling's `catch_all`) cannot swallow it.
 */
export interface ErrorSlot {
  error: WasmError | undefined;
}

type Imported = (...args: number[]) => unknown;

/** A function as the engine calls it from wasm. */
export type HostCallable = (...args: unknown[]) => unknown;

interface BuiltinSpec {
  readonly capability: string | undefined;
  /** True when the function may wait for a promise (needs JSPI). */
  readonly async: boolean;
  readonly make: (ctx: BuiltinContext) => Imported;
}

interface BuiltinContext {
  readonly env: HostEnvironment;
  readonly memory: GuestMemory;
  readonly logger: Logger;
  /** The last computed result per function, for a retry with a bigger buffer. */
  readonly retry: Map<string, { key: string; data: Uint8Array }>;
}

const encoder = new TextEncoder();

function readKey(ctx: BuiltinContext, ptr: number, len: number): string {
  return ctx.memory.readString(unsigned(ptr), unsigned(len));
}

/**
 * Answers an `out_ptr, out_cap` call, computing the result only once when the
 * guest retries with a larger buffer after a too-small one.
 */
async function answerWithRetry(
  ctx: BuiltinContext,
  fn: string,
  key: string,
  out: [ptr: number, cap: number],
  compute: () => Promise<Uint8Array | undefined>,
): Promise<number> {
  const cached = ctx.retry.get(fn);
  ctx.retry.delete(fn);
  const data = cached?.key === key ? cached.data : await compute();
  if (data === undefined) return -1;
  const [ptr, cap] = [unsigned(out[0]), unsigned(out[1])];
  if (data.length > cap) ctx.retry.set(fn, { key, data });
  return ctx.memory.writeResult(ptr, cap, data);
}

const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

const BUILTINS: Record<string, BuiltinSpec> = {
  host_log: {
    capability: undefined,
    async: false,
    make: (ctx) => (level, ptr, len) => {
      const text = ctx.memory.readString(unsigned(ptr), unsigned(len));
      const name = LOG_LEVELS[Math.min(Math.max(level, 0), 3)]!;
      ctx.logger[name]("{message}", { message: text, pluginId: ctx.env.pluginId });
    },
  },
  host_get_config: {
    capability: Capability.ReadConfig,
    async: false,
    make: (ctx) => (keyPtr, keyLen, outPtr, outCap) => {
      const value = ctx.env.config.get(readKey(ctx, keyPtr, keyLen));
      if (value === undefined) return -1;
      return ctx.memory.writeResult(unsigned(outPtr), unsigned(outCap), encoder.encode(value));
    },
  },
  host_set_config: {
    capability: Capability.WriteConfig,
    async: false,
    make: (ctx) => (keyPtr, keyLen, valPtr, valLen) => {
      const key = readKey(ctx, keyPtr, keyLen);
      ctx.env.config.set(key, ctx.memory.readString(unsigned(valPtr), unsigned(valLen)));
      return 0;
    },
  },
  host_storage_get: {
    capability: Capability.ReadState,
    async: false,
    make: (ctx) => (keyPtr, keyLen, outPtr, outCap) => {
      const value = ctx.env.storage.get(readKey(ctx, keyPtr, keyLen));
      if (value === undefined) return -1;
      return ctx.memory.writeResult(unsigned(outPtr), unsigned(outCap), value);
    },
  },
  host_storage_set: {
    capability: Capability.WriteState,
    async: false,
    make: (ctx) => (keyPtr, keyLen, valPtr, valLen) => {
      const key = readKey(ctx, keyPtr, keyLen);
      ctx.env.storage.set(key, ctx.memory.read(unsigned(valPtr), unsigned(valLen)));
      return 0;
    },
  },
  host_send_message: {
    capability: Capability.SendMessage,
    async: false,
    make: (ctx) => (toPtr, toLen, msgPtr, msgLen) => {
      const to = readKey(ctx, toPtr, toLen);
      const data = ctx.memory.read(unsigned(msgPtr), unsigned(msgLen));
      ctx.env.onMessage?.({ from: ctx.env.pluginId, to, data });
      return 0;
    },
  },
  host_call_tool: {
    capability: Capability.CallTool,
    async: true,
    make: (ctx) => (namePtr, nameLen, argsPtr, argsLen, outPtr, outCap) => {
      const name = readKey(ctx, namePtr, nameLen);
      const argsText = ctx.memory.readString(unsigned(argsPtr), unsigned(argsLen));
      return answerWithRetry(
        ctx,
        "host_call_tool",
        `${name}\u0000${argsText}`,
        [outPtr, outCap],
        async () => {
          const tool = ctx.env.tools.get(name);
          if (tool === undefined) return undefined;
          const result = await tool(JSON.parse(argsText));
          const json = JSON.stringify(result ?? null);
          return encoder.encode(json);
        },
      );
    },
  },
  host_http_fetch: {
    capability: Capability.NetworkAccess,
    async: true,
    make: (ctx) => (reqPtr, reqLen, outPtr, outCap) => {
      const requestText = ctx.memory.readString(unsigned(reqPtr), unsigned(reqLen));
      return answerWithRetry(ctx, "host_http_fetch", requestText, [outPtr, outCap], async () => {
        const response = await fetchForPlugin(ctx.env, JSON.parse(requestText));
        return encoder.encode(JSON.stringify(response));
      });
    },
  },
  host_now_ms: {
    capability: Capability.Timer,
    async: false,
    make: () => () => BigInt(Date.now()),
  },
  host_sleep_ms: {
    capability: Capability.Timer,
    async: true,
    make: () => (ms) =>
      new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, Math.min(ms, 2 ** 31 - 1)))),
  },
  host_random_bytes: {
    capability: Capability.Random,
    async: false,
    make: (ctx) => (ptr, len) => {
      const view = ctx.memory.view(unsigned(ptr), unsigned(len));
      for (let at = 0; at < view.length; at += 65_536) {
        crypto.getRandomValues(view.subarray(at, Math.min(view.length, at + 65_536)));
      }
      return 0;
    },
  },
};

interface FetchRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

async function fetchForPlugin(
  env: HostEnvironment,
  request: FetchRequest,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (typeof request?.url !== "string") {
    throw new TypeError('The request must be a JSON object with a string "url"');
  }
  const url = new URL(request.url);
  if (!env.allowedHosts.includes(url.host) && !env.allowedHosts.includes(url.hostname)) {
    throw new CapabilityDeniedError(
      Capability.NetworkAccess,
      `Fetching ${url.origin} (not in allowedHosts)`,
    );
  }
  const response = await fetch(url, {
    method: request.method ?? "GET",
    headers: request.headers ?? {},
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
  };
}

/** True when `env.<name>` is one of the built-in host functions. */
export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

/** True when the built-in may wait on a promise and so needs JSPI. */
export function isAsyncBuiltin(name: string): boolean {
  return BUILTINS[name]?.async === true;
}

/**
 * Creates the built-in `env.<name>` for one plugin, wrapped with its
 * capability check and error mapping. Async built-ins return a promise.
 */
export function createBuiltin(
  name: string,
  env: HostEnvironment,
  memory: GuestMemory,
  slot: ErrorSlot,
): HostCallable {
  const spec = BUILTINS[name];
  if (spec === undefined) throw new RangeError(`Unknown built-in host function "${name}"`);
  const ctx: BuiltinContext = {
    env,
    memory,
    logger: getLogger(["wasmplug", "plugin", env.pluginName]),
    retry: new Map(),
  };
  const fn = spec.make(ctx);
  const denied = spec.capability !== undefined && !env.capabilities.has(spec.capability);
  return guardHostFunction("env", name, slot, (...args) => {
    if (denied) {
      throw new CapabilityDeniedError(spec.capability!, `Calling "env"."${name}"`);
    }
    return fn(...(args as number[]));
  });
}

/**
 * Wraps a host function so that whatever it throws (or its promise rejects
 * with) reaches the caller as a {@linkcode WasmError}, recorded in `slot`.
 */
export function guardHostFunction(
  module: string,
  name: string,
  slot: ErrorSlot,
  fn: HostCallable,
): HostCallable {
  const fail = (err: unknown): never => {
    const error = err instanceof WasmError
      ? err
      : new HostFunctionError(module, name, { cause: err });
    slot.error ??= error;
    throw error;
  };
  return (...args) => {
    try {
      const result = fn(...args);
      return result instanceof Promise ? result.catch(fail) : result;
    } catch (err) {
      return fail(err);
    }
  };
}

/**
 * The built-in host functions of the guest ABI (import module `"env"`), each
 * gated by its capability.
 *
 * @module
 */

import { Capability } from "../capability.ts";
import { lenientUtf8, MAX_TIMER_MS, shownName, withoutBom } from "../common/mod.ts";
import { CapabilityDeniedError, HostFunctionError, WasmError } from "../errors.ts";
import {
  assertPayloadSize,
  decodeLogRecord,
  type HostServices,
  MAX_HOST_CALL_BYTES,
  MAX_MESSAGE_BYTES,
} from "./_services.ts";
import { type GuestMemory, unsigned } from "./_guest_memory.ts";
import { assertDenoPermission } from "./_deno_permission.ts";

/** Where the built-ins of one plugin run: its memory, its grants, its host. */
export interface BuiltinSite {
  readonly memory: GuestMemory;
  readonly services: HostServices;
  /** `host_log`'s budget, one per instance. */
  readonly logBudget: LogBudget;
  readonly capabilities: ReadonlySet<string>;
  readonly allowedHosts: readonly string[];
  readonly slot: ErrorSlot;
}

/**
 * Where a host function records the error it threw, so a guest that catches
 * the exception (exception handling's `catch_all`) cannot swallow it.
 */
export interface ErrorSlot {
  error: WasmError | undefined;
  /**
   * Changes whenever a call begins or ends, so that an async host function
   * settling after its call ended (cut short by a timeout) cannot fail a later
   * call.
   */
  generation: number;
  /**
   * Aborted when the running call is cancelled (timeout, abort signal), so
   * that host work it waits on (a sleep) ends with it.
   */
  signal?: AbortSignal | undefined;
  /**
   * The running call's own abort signal: once it aborted (by one of the
   * call's own host functions, say), no further host function runs for it.
   */
  callSignal?: AbortSignal | undefined;
  /** Makes the running call's guest stop at its next deadline check (it was aborted). */
  interrupt?: (() => void) | undefined;
  /** Whether the host asked the running call to stop (a worker's; see `InstanceBindings`). */
  stopRequested?: (() => boolean) | undefined;
  /**
   * What the running call's guest reported with `host_set_error` (the last
   * message wins); the instance clears it as each call begins and, once the
   * call's function has returned, ends the call with a `GuestError`.
   */
  guestError?: string | undefined;
  /**
   * Called as each host function returns or throws, so that the instance can
   * check the call's deadline: host code runs outside fuel.
   */
  hostCallEnded?: (() => void) | undefined;
  /**
   * The answers of host functions a guest asked for with too small a
   * buffer, kept for its retry within the same call (see `answerWithRetry`);
   * the instance empties it as each call ends, so that nothing is held
   * past its call (a fetch's answer can reach 100 MB).
   */
  answers?: Map<string, { key: string; data: Uint8Array; generation: number }>;
  /**
   * Throws once the running call's deadline passed or its host asked it to
   * stop: a host function doing long work checks between slices of it (as
   * WASI's do), since the instrumentation's checks do not run meanwhile.
   */
  checkpoint?: (() => void) | undefined;
}

type Imported = (...args: number[]) => unknown;

/** A function as the engine calls it from wasm. */
export type HostCallable = (...args: unknown[]) => unknown;

interface BuiltinSpec {
  /**
   * Its wasm type, as `docs/ABI.md` gives it: parameter types, `->`, result
   * types (`i` an i32, `I` an i64); imports of it must declare it.
   */
  readonly type: string;
  readonly capability: string | undefined;
  /** True when the function may wait for a promise (needs JSPI). */
  readonly async: boolean;
  readonly make: (ctx: BuiltinContext) => Imported;
}

interface BuiltinContext extends BuiltinSite {
  /** The last computed result per function, for a retry with a bigger buffer. */
  readonly retry: Map<string, { key: string; data: Uint8Array; generation: number }>;
}

/** `host_log`'s token bucket: what a plugin may still log, and what it lost since the last report. */
export interface LogBudget {
  tokens: number;
  refilledAt: number;
  dropped: number;
}

/** A full bucket. */
export function createLogBudget(): LogBudget {
  return { tokens: LOG_BURST, refilledAt: performance.now(), dropped: 0 };
}

/**
 * Tells the host how many records were dropped since the last report (the
 * instance does at the end of every call, and `host_log` before the next
 * record it admits). A report that fails (the call is being stopped, the
 * worker is ending) keeps its count for the next one.
 */
export function reportDroppedLogs(budget: LogBudget, services: HostServices): void {
  const count = budget.dropped;
  if (count === 0) return;
  budget.dropped = 0;
  try {
    services.logsDropped(count);
  } catch {
    budget.dropped += count;
  }
}

/** Records a plugin may log at once (the bucket's size). */
export const LOG_BURST = 1000;
/** Records per millisecond the bucket refills with (1000 per second). */
const LOG_REFILL_PER_MS = 1;

/**
 * Spends one record of `host_log`'s budget; false when the plugin is over
 * it. A flood costs the host nothing beyond this check (in a worker, not even
 * a round trip), and the first record after a drop says how many were lost.
 */
function admitLog(ctx: BuiltinContext): boolean {
  const budget = ctx.logBudget;
  const now = performance.now();
  budget.tokens = Math.min(
    LOG_BURST,
    budget.tokens + (now - budget.refilledAt) * LOG_REFILL_PER_MS,
  );
  budget.refilledAt = now;
  if (budget.tokens < 1) {
    budget.dropped++;
    return false;
  }
  budget.tokens--;
  reportDroppedLogs(budget, ctx.services);
  return true;
}

const encoder = new TextEncoder();

/**
 * Bytes of a `host_set_error` message the caller gets (as many as a log
 * record); the rest of a longer message is dropped, and the message says how
 * much.
 */
export const MAX_GUEST_ERROR_BYTES = 16 * 1024;

/**
 * A guest's error message: its first {@linkcode MAX_GUEST_ERROR_BYTES} bytes
 * decoded as UTF-8, and a note of how many more were dropped.
 */
function decodeGuestError(bytes: Uint8Array): string {
  if (bytes.length <= MAX_GUEST_ERROR_BYTES) return lenientUtf8.decode(bytes);
  const kept = lenientUtf8.decode(bytes.subarray(0, MAX_GUEST_ERROR_BYTES));
  return `${kept}… (${bytes.length - MAX_GUEST_ERROR_BYTES} more bytes dropped)`;
}

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
  // The output buffer is checked before anything runs: a tool (or a request) whose answer
  // could not be written has no side effects. Memory only grows meanwhile.
  const [ptr, cap] = [unsigned(out[0]), unsigned(out[1])];
  ctx.memory.view(ptr, cap);
  // A retry is one of the same call (a later call asks again: the answer may have changed).
  const generation = ctx.slot.generation;
  const cached = ctx.retry.get(fn);
  ctx.retry.delete(fn);
  const data = cached?.key === key && cached.generation === generation
    ? cached.data
    : await compute();
  // A call cancelled meanwhile has ended, and another may run: nothing is written for it.
  if (ctx.slot.generation !== generation) {
    throw ctx.slot.signal?.reason ?? new TypeError(`The call that ran "${fn}" has ended`);
  }
  if (data === undefined) return -1;
  if (data.length > cap) ctx.retry.set(fn, { key, data, generation });
  return ctx.memory.writeResult(ptr, cap, data);
}

/** The bytes `host_random_bytes` fills between two checks of the call's deadline. */
const RANDOM_SLICE = 1024 * 1024;

const BUILTINS: Record<string, BuiltinSpec> = {
  host_log: {
    type: "iii->",
    capability: undefined,
    async: false,
    make: (ctx) => (level, ptr, len) => {
      // Bounds are checked even for a record the rate limit drops.
      const text = ctx.memory.view(unsigned(ptr), unsigned(len));
      if (admitLog(ctx)) ctx.services.log(level, decodeLogRecord(text));
    },
  },
  host_set_error: {
    type: "ii->",
    capability: undefined,
    async: false,
    make: (ctx) => (ptr, len) => {
      // Decoded now: the guest may free or reuse the message before it returns.
      ctx.slot.guestError = decodeGuestError(ctx.memory.view(unsigned(ptr), unsigned(len)));
    },
  },
  host_get_config: {
    type: "iiii->i",
    capability: Capability.ReadConfig,
    async: false,
    make: (ctx) => (keyPtr, keyLen, outPtr, outCap) => {
      const value = ctx.services.getConfig(readKey(ctx, keyPtr, keyLen));
      if (value === undefined) return -1;
      return ctx.memory.writeResult(unsigned(outPtr), unsigned(outCap), encoder.encode(value));
    },
  },
  host_set_config: {
    type: "iiii->i",
    capability: Capability.WriteConfig,
    async: false,
    make: (ctx) => (keyPtr, keyLen, valPtr, valLen) => {
      const key = readKey(ctx, keyPtr, keyLen);
      ctx.services.setConfig(key, ctx.memory.readString(unsigned(valPtr), unsigned(valLen)));
      return 0;
    },
  },
  host_storage_get: {
    type: "iiii->i",
    capability: Capability.ReadState,
    async: false,
    make: (ctx) => (keyPtr, keyLen, outPtr, outCap) => {
      const value = ctx.services.storageGet(readKey(ctx, keyPtr, keyLen));
      if (value === undefined) return -1;
      return ctx.memory.writeResult(unsigned(outPtr), unsigned(outCap), value);
    },
  },
  host_storage_set: {
    type: "iiii->i",
    capability: Capability.WriteState,
    async: false,
    make: (ctx) => (keyPtr, keyLen, valPtr, valLen) => {
      const key = readKey(ctx, keyPtr, keyLen);
      ctx.services.storageSet(key, ctx.memory.read(unsigned(valPtr), unsigned(valLen)));
      return 0;
    },
  },
  host_send_message: {
    type: "iiii->i",
    capability: Capability.SendMessage,
    async: false,
    make: (ctx) => (toPtr, toLen, msgPtr, msgLen) => {
      // Checked before anything is copied; the host checks again.
      const size = unsigned(toLen) + unsigned(msgLen);
      assertPayloadSize("The message", size, MAX_MESSAGE_BYTES, "MAX_MESSAGE_BYTES");
      const to = readKey(ctx, toPtr, toLen);
      const data = ctx.memory.read(unsigned(msgPtr), unsigned(msgLen));
      ctx.services.sendMessage(to, data);
      return 0;
    },
  },
  host_call_tool: {
    type: "iiiiii->i",
    capability: Capability.CallTool,
    async: true,
    make: (ctx) => (namePtr, nameLen, argsPtr, argsLen, outPtr, outCap) => {
      const size = unsigned(nameLen) + unsigned(argsLen);
      assertPayloadSize("The tool call", size, MAX_HOST_CALL_BYTES, "MAX_HOST_CALL_BYTES");
      const name = readKey(ctx, namePtr, nameLen);
      const argsText = ctx.memory.readString(unsigned(argsPtr), unsigned(argsLen));
      return answerWithRetry(
        ctx,
        "host_call_tool",
        `${name}\u0000${argsText}`,
        [outPtr, outCap],
        async () => {
          const json = await ctx.services.callTool(name, argsText, ctx.slot.signal);
          return json === undefined ? undefined : encoder.encode(json);
        },
      );
    },
  },
  host_http_fetch: {
    type: "iiii->i",
    capability: Capability.NetworkAccess,
    async: true,
    make: (ctx) => (reqPtr, reqLen, outPtr, outCap) => {
      const size = unsigned(reqLen);
      assertPayloadSize("The fetch request", size, MAX_HOST_CALL_BYTES, "MAX_HOST_CALL_BYTES");
      const requestText = ctx.memory.readString(unsigned(reqPtr), unsigned(reqLen));
      return answerWithRetry(ctx, "host_http_fetch", requestText, [outPtr, outCap], async () => {
        const request = JSON.parse(withoutBom(requestText));
        const response = await fetchForPlugin(ctx.allowedHosts, request, ctx.slot.signal);
        return encoder.encode(JSON.stringify(response));
      });
    },
  },
  host_now_ms: {
    type: "->I",
    capability: Capability.Timer,
    async: false,
    make: () => () => BigInt(Date.now()),
  },
  host_sleep_ms: {
    type: "i->",
    capability: Capability.Timer,
    async: true,
    make: (ctx) => (ms) => sleep(Math.max(0, Math.min(ms, MAX_TIMER_MS)), ctx.slot.signal),
  },
  host_random_bytes: {
    type: "ii->i",
    capability: Capability.Random,
    async: false,
    make: (ctx) => (ptr, len) => {
      const view = ctx.memory.view(unsigned(ptr), unsigned(len));
      // getRandomValues fills at most 64 KiB at a time; the deadline is checked every MiB.
      for (let at = 0; at < view.length; at += 65_536) {
        if (at % RANDOM_SLICE === 0 && at > 0) ctx.slot.checkpoint?.();
        crypto.getRandomValues(view.subarray(at, Math.min(view.length, at + 65_536)));
      }
      return 0;
    },
  },
};

/** Resolves after `ms`, or rejects with the signal's reason (clearing the timer) when it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

interface FetchRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** Redirects followed before the answer is the redirect itself, as `fetch()` does. */
const MAX_REDIRECTS = 20;

/** The statuses `fetch()` follows. */
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

function assertAllowedHost(allowedHosts: readonly string[], url: URL): void {
  // `fetch()` also reads file:, data: and blob: URLs, some of which have a host too
  // (file://127.0.0.1/etc/passwd): only the network is the network.
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CapabilityDeniedError(
      `Capability denied: Fetching a ${url.protocol} URL (only http: and https: reach allowedHosts) needs the "${Capability.NetworkAccess}" capability`,
      { capability: Capability.NetworkAccess },
    );
  }
  // Entries are normalized (see the plugin config's check): a host, or a host and its port.
  const port = effectivePort(url);
  if (!allowedHosts.includes(url.hostname) && !allowedHosts.includes(`${url.hostname}:${port}`)) {
    throw new CapabilityDeniedError(
      `Capability denied: Fetching ${
        shownName(url.origin)
      } (not in allowedHosts) needs the "${Capability.NetworkAccess}" capability`,
      { capability: Capability.NetworkAccess },
    );
  }
}

/**
 * Fetches for a plugin, following redirects by hand so that every hop is
 * checked against `allowedHosts` (an allowed host must not redirect the
 * plugin anywhere else).
 */
async function fetchForPlugin(
  allowedHosts: readonly string[],
  request: FetchRequest,
  signal: AbortSignal | undefined,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (typeof request?.url !== "string") {
    throw new TypeError('The request must be a JSON object with a string "url"');
  }
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    // The engine's message quotes the whole input, which the guest chose.
    throw new TypeError(`The request's "url" ${shownName(request.url)} is not a URL`);
  }
  let method = request.method ?? "GET";
  // Read once into Headers, whichever form fetch() takes (a record or pairs), so that the
  // credentials a redirect to another origin drops are found in any of them.
  let headers: Headers;
  try {
    headers = new Headers(request.headers ?? {});
  } catch (cause) {
    throw new TypeError('The request\'s "headers" are not headers fetch() takes', { cause });
  }
  // An empty body is no body: a guest that serialises "none" as "" may still GET or HEAD.
  let body = request.body === "" ? undefined : request.body;
  for (let redirects = 0;; redirects++) {
    assertAllowedHost(allowedHosts, url);
    // Where Deno would ask the operator (a terminal, no --allow-net), refuse instead.
    assertDenoPermission(
      // With its port, the default one too: a worker allowed "127.0.0.1:80" has that port alone.
      { name: "net", host: `${url.hostname}:${effectivePort(url)}` },
      `Fetching ${url.origin} (the process or worker has no Deno net permission for it)`,
    );
    const response = await fetch(url, {
      method,
      headers,
      redirect: "manual",
      ...(body === undefined ? {} : { body }),
      ...(signal === undefined ? {} : { signal }),
    });
    const location = response.headers.get("location");
    if (REDIRECTS.has(response.status) && location !== null && redirects < MAX_REDIRECTS) {
      await response.body?.cancel();
      const next = new URL(location, url);
      // As fetch() does: credentials stay with their origin, and a 303 keeps a HEAD a HEAD.
      if (next.origin !== url.origin) headers = withoutCredentials(headers);
      url = next;
      if (
        (response.status === 303 && method !== "HEAD") ||
        (response.status <= 302 && method === "POST")
      ) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    const answered = Object.fromEntries(response.headers);
    // One entry per Set-Cookie in the Headers: the record kept the last alone.
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 1) answered["set-cookie"] = cookies.join(", ");
    return { status: response.status, headers: answered, body: await readBoundedText(response) };
  }
}

/** The port an http: or https: URL reaches, the default one too. */
function effectivePort(url: URL): string {
  return url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
}

/** The request headers that carry credentials, which a redirect to another origin drops. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "cookie",
  "proxy-authorization",
]);

function withoutCredentials(headers: Headers): Headers {
  const kept = new Headers(headers);
  for (const name of CREDENTIAL_HEADERS) kept.delete(name);
  return kept;
}

/** The body of a response, failing past {@linkcode MAX_HOST_CALL_BYTES} bytes. */
async function readBoundedText(response: Response): Promise<string> {
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > MAX_HOST_CALL_BYTES) {
      // Leaving the loop early cancels the stream.
      assertPayloadSize("The response body", size, MAX_HOST_CALL_BYTES, "MAX_HOST_CALL_BYTES");
    }
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  // A leading U+FEFF is the body's: the guest gets its text as it came.
  return lenientUtf8.decode(body);
}

/** True when `env.<name>` is one of the built-in host functions. */
export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

/** The capability a built-in needs, `null` for none, `undefined` when `name` is no built-in. */
export function builtinCapability(name: string): string | null | undefined {
  if (!Object.hasOwn(BUILTINS, name)) return undefined;
  return BUILTINS[name]!.capability ?? null;
}

/**
 * The wasm type of built-in `name` (see `docs/ABI.md`), for the check of a
 * module's import of it; `undefined` when `name` is no built-in.
 */
export function builtinType(
  name: string,
): { readonly params: readonly string[]; readonly results: readonly string[] } | undefined {
  if (!Object.hasOwn(BUILTINS, name)) return undefined;
  const [params, results] = BUILTINS[name]!.type.split("->") as [string, string];
  const valueType = (letter: string): string => letter === "I" ? "i64" : "i32";
  return { params: [...params].map(valueType), results: [...results].map(valueType) };
}

/** True when the built-in may wait on a promise and so needs JSPI. */
export function isAsyncBuiltin(name: string): boolean {
  return BUILTINS[name]?.async === true;
}

/**
 * Creates the built-in `env.<name>` for one plugin, wrapped with its
 * capability check and error mapping. Async built-ins return a promise.
 */
export function createBuiltin(name: string, site: BuiltinSite): HostCallable {
  const spec = BUILTINS[name];
  if (spec === undefined) throw new RangeError(`Unknown built-in host function "${name}"`);
  const fn = spec.make({ ...site, retry: site.slot.answers ??= new Map() });
  const denied = spec.capability !== undefined && !site.capabilities.has(spec.capability);
  return guardHostFunction("env", name, site.slot, (...args) => {
    if (denied) {
      throw new CapabilityDeniedError(
        `Capability denied: Calling "env"."${name}" needs the "${spec.capability}" capability`,
        { capability: spec.capability! },
      );
    }
    return fn(...(args as number[]));
  });
}

/** Whether `value` is a `WasmError`; false for a `Proxy` whose prototype trap throws. */
function isWasmError(value: unknown): value is WasmError {
  try {
    return value instanceof WasmError;
  } catch {
    return false;
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/**
 * What a guest sees thrown by a host function that failed (see
 * {@linkcode guardHostFunction}): one object for all, its call's error
 * recorded in the slot.
 */
export const HOST_ERROR_RECORDED: Error = Object.freeze(
  new Error("A host function failed: the call ends with its error"),
);

/**
 * Wraps a host function so that whatever it throws (or its promise rejects
 * with) reaches the caller as a {@linkcode WasmError}, recorded in `slot`
 * (the guest gets {@linkcode HOST_ERROR_RECORDED}), except what `passThrough`
 * lets through as it is.
 */
export function guardHostFunction(
  module: string,
  name: string,
  slot: ErrorSlot,
  fn: HostCallable,
  passThrough?: (err: unknown) => boolean,
): HostCallable {
  const fail = (err: unknown, generation: number): never => {
    // What is not an error but the way out of the guest (WASI's proc_exit).
    if (passThrough?.(err) === true) throw err;
    const error = isWasmError(err)
      ? err
      : new HostFunctionError(undefined, { module, functionName: name, cause: err });
    if (slot.generation !== generation) throw error;
    slot.error ??= error;
    // The call ends with the error recorded, whatever the guest does: the guest itself gets a
    // stand-in that holds nothing, so that one that catches and keeps what it catches (in an
    // exnref table, say) keeps none of the host's errors, whose text may quote its own input.
    throw HOST_ERROR_RECORDED;
  };
  return (...args) => {
    const generation = slot.generation;
    // An aborted call runs no more host functions, and one that aborted it (stop({ abort: true })
    // from a linker function) does not answer: the guest gets the reason (as the stand-in).
    const signal = slot.callSignal;
    if (isAborted(signal)) {
      slot.interrupt?.();
      return fail(signal!.reason, generation);
    }
    try {
      const result = fn(...args);
      slot.hostCallEnded?.();
      // (Read again: the host function may have aborted it.)
      if (isAborted(signal)) {
        if (result instanceof Promise) result.catch(() => {}); // nobody waits for it now
        // A guest that catches the stand-in and runs on stops at its next check.
        slot.interrupt?.();
        return fail(signal!.reason, generation);
      }
      return result instanceof Promise ? result.catch((err) => fail(err, generation)) : result;
    } catch (err) {
      // A throw took its time too, and a guest that catches it may call again at once.
      slot.hostCallEnded?.();
      // Aborted by itself before it threw (or, in a worker, answered with its call's stop): the
      // guest stops at its next check, as for a return.
      if (isAborted(signal) || slot.stopRequested?.() === true) slot.interrupt?.();
      return fail(err, generation);
    }
  };
}

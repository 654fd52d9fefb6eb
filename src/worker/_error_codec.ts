/**
 * Carries errors across the worker boundary: an error is flattened to JSON
 * (kind or name, message, context fields, cause) on one side and revived as
 * the same class on the other. An error the host threw into the worker (from
 * a linker function or a host service) travels as a reference, so the host
 * gets its own object back, whatever its class.
 *
 * @module
 */

import {
  CallDepthExceededError,
  CapabilityDeniedError,
  CompilationError,
  FuelExhaustedError,
  GuestError,
  HostFunctionError,
  ImportNotFoundError,
  InstantiationError,
  InvalidFunctionError,
  MemoryOutOfBoundsError,
  OutOfMemoryError,
  PluginNotFoundError,
  PluginStateError,
  ResourceLimitError,
  TimeoutError,
  TrapError,
  TypeMismatchError,
  WasmError,
  WorkerCrashedError,
} from "../errors.ts";

/** The JSON form of an error. */
interface FlatError {
  /** A `WasmError`'s kind, else `"error"`. */
  kind: string;
  message: string;
  name?: string;
  fields?: Partial<Fields>;
  cause?: FlatError;
  /** The host's own error object behind this one (see {@linkcode encodeError}). */
  ref?: number;
}

const FIELDS = [
  "offset",
  "line",
  "column",
  "functionName",
  "module",
  "importName",
  "timeoutMs",
  "fuelLimit",
  "maxCallDepth",
  "size",
  "trap",
  "limit",
  "capability",
  "state",
  "id",
] as const;

/** The context fields of the error classes, as the host revives them. */
interface Fields {
  offset: number;
  line: number;
  column: number;
  functionName: string;
  module: string;
  importName: string;
  timeoutMs: number;
  fuelLimit: number;
  maxCallDepth: number;
  size: number;
  trap: string;
  limit: string;
  capability: string;
  state: string;
  id: string;
}

/** How deep a chain of causes is carried. */
const MAX_CAUSES = 8;

/** Host references of revived errors, so they travel back as references. */
const refs = new WeakMap<object, number>();

/** JSON has no Infinity or NaN (an unlimited `maxCallDepth` is Infinity). */
function replaceNumbers(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

function reviveNumbers(_key: string, value: unknown): unknown {
  if (typeof value === "object" && value !== null && "$number" in value) {
    return Number((value as { $number: string }).$number);
  }
  return value;
}

function flatten(err: unknown, depth: number): FlatError {
  const ref = typeof err === "object" && err !== null ? refs.get(err) : undefined;
  let flat: FlatError;
  if (err instanceof WasmError) {
    const fields: Record<string, unknown> = {};
    for (const key of FIELDS) {
      const value = (err as unknown as Record<string, unknown>)[key];
      if (value !== undefined) fields[key] = value;
    }
    flat = { kind: err.kind, message: err.message, fields };
  } else {
    const error = err instanceof Error ? err : new Error(String(err));
    flat = { kind: "error", name: error.name, message: error.message };
  }
  if (ref !== undefined) flat.ref = ref;
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause !== undefined && depth < MAX_CAUSES) flat.cause = flatten(cause, depth + 1);
  return flat;
}

/**
 * Flattens an error to JSON text. `ref` marks an error the host threw, which
 * the host later resolves back to its own object.
 */
export function encodeError(err: unknown, ref?: number): string {
  const flat = flatten(err, 0);
  if (ref !== undefined) flat.ref = ref;
  return JSON.stringify(flat, replaceNumbers);
}

/** Standard error classes by name, for errors that are not `WasmError`s. */
function plainError(name: string | undefined, message: string, options: ErrorOptions): Error {
  switch (name) {
    case "RuntimeError":
      return new WebAssembly.RuntimeError(message, options);
    case "CompileError":
      return new WebAssembly.CompileError(message, options);
    case "LinkError":
      return new WebAssembly.LinkError(message, options);
    case "RangeError":
      return new RangeError(message, options);
    case "TypeError":
      return new TypeError(message, options);
    case "SyntaxError":
      return new SyntaxError(message, options);
    case "ReferenceError":
      return new ReferenceError(message, options);
    case "AbortError":
    case "TimeoutError":
      return new DOMException(message, name);
  }
  const denoError = name === undefined
    ? undefined
    : (Deno.errors as unknown as Record<string, ErrorConstructor | undefined>)[name];
  if (typeof denoError === "function") return new denoError(message, options);
  const error = new Error(message, options);
  if (name !== undefined) error.name = name;
  return error;
}

function revive(flat: FlatError, resolve: ((ref: number) => unknown) | undefined): unknown {
  if (flat.ref !== undefined && resolve !== undefined) {
    const original = resolve(flat.ref);
    if (original !== undefined) return original;
  }
  const options: ErrorOptions = flat.cause === undefined
    ? {}
    : { cause: revive(flat.cause, resolve) };
  const f = (flat.fields ?? {}) as Fields;
  const error = build(flat, f, options);
  // Constructors compose their own messages; keep the one the other side made.
  if (error.message !== flat.message) {
    Object.defineProperty(error, "message", {
      value: flat.message,
      writable: true,
      configurable: true,
    });
  }
  if (flat.ref !== undefined) refs.set(error, flat.ref);
  return error;
}

function build(flat: FlatError, f: Fields, options: ErrorOptions): Error {
  switch (flat.kind) {
    case "compilation":
      return new CompilationError(flat.message, { ...options, ...f });
    case "instantiation":
      return new InstantiationError(flat.message, options);
    case "invalid_function":
      return new InvalidFunctionError(f.functionName, options);
    case "import_not_found":
      return new ImportNotFoundError(f.module, f.importName, options);
    case "type_mismatch":
      return new TypeMismatchError(flat.message, options);
    case "timeout":
      return new TimeoutError(f.timeoutMs, options);
    case "out_of_memory":
      return new OutOfMemoryError(flat.message, options);
    case "fuel_exhausted":
      return new FuelExhaustedError(f.fuelLimit, options);
    case "call_depth_exceeded":
      return new CallDepthExceededError(f.maxCallDepth, options);
    case "memory_out_of_bounds":
      return new MemoryOutOfBoundsError(f.offset, f.size, 0, options);
    case "trap":
      return new TrapError(f.trap, options);
    case "resource_limit":
      return new ResourceLimitError(f.limit, flat.message, options);
    case "capability_denied":
      return new CapabilityDeniedError(f.capability, "", options);
    case "host_function":
      return new HostFunctionError(f.module, f.functionName, options);
    case "plugin_state":
      return new PluginStateError(f.state, "", options);
    case "plugin_not_found":
      return new PluginNotFoundError(f.id, options);
    case "worker_crashed":
      return new WorkerCrashedError(flat.message, options);
    case "guest":
      return new GuestError(f.functionName, flat.message, options);
    default:
      return plainError(flat.name, flat.message, options);
  }
}

/**
 * Revives an error flattened by {@linkcode encodeError}, with its chain of
 * causes. `resolve` turns a host reference back into the host's own object.
 */
export function decodeError(text: string, resolve?: (ref: number) => unknown): unknown {
  return revive(JSON.parse(text, reviveNumbers) as FlatError, resolve);
}

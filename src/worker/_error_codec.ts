/**
 * Carries errors across the worker boundary: a `WasmError` is flattened to
 * JSON (kind, message, fields) in the worker and revived as the same class on
 * the host.
 *
 * @module
 */

import {
  CallDepthExceededError,
  CapabilityDeniedError,
  CompilationError,
  FuelExhaustedError,
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
  kind: string;
  message: string;
  name?: string;
  fields?: Record<string, unknown>;
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

/** Flattens an error to JSON text. */
export function encodeError(err: unknown): string {
  if (err instanceof WasmError) {
    const fields: Record<string, unknown> = {};
    for (const key of FIELDS) {
      const value = (err as unknown as Record<string, unknown>)[key];
      if (value !== undefined) fields[key] = value;
    }
    return JSON.stringify({ kind: err.kind, message: err.message, fields } satisfies FlatError);
  }
  const error = err instanceof Error ? err : new Error(String(err));
  return JSON.stringify(
    { kind: "error", name: error.name, message: error.message } satisfies FlatError,
  );
}

/** Revives an error flattened by {@linkcode encodeError}. */
export function decodeError(text: string): Error {
  const flat = JSON.parse(text) as FlatError;
  const f = (flat.fields ?? {}) as unknown as Fields;
  const message = { message: flat.message };
  switch (flat.kind) {
    case "compilation":
      return new CompilationError(flat.message, f);
    case "instantiation":
      return new InstantiationError(flat.message);
    case "invalid_function":
      return new InvalidFunctionError(f.functionName, message);
    case "import_not_found":
      return new ImportNotFoundError(f.module, f.importName);
    case "type_mismatch":
      return new TypeMismatchError(flat.message);
    case "timeout":
      return new TimeoutError(f.timeoutMs);
    case "out_of_memory":
      return new OutOfMemoryError(flat.message);
    case "fuel_exhausted":
      return new FuelExhaustedError(f.fuelLimit);
    case "call_depth_exceeded":
      return new CallDepthExceededError(f.maxCallDepth, message);
    case "memory_out_of_bounds":
      return new MemoryOutOfBoundsError(f.offset, f.size, 0, message);
    case "trap":
      return new TrapError(f.trap);
    case "resource_limit":
      return new ResourceLimitError(f.limit, flat.message);
    case "capability_denied": {
      const error = new CapabilityDeniedError(f.capability, "");
      Object.defineProperty(error, "message", { value: flat.message });
      return error;
    }
    case "host_function": {
      const error = new HostFunctionError(f.module, f.functionName);
      Object.defineProperty(error, "message", { value: flat.message });
      return error;
    }
    case "plugin_state":
      return new PluginStateError(f.state, "", message);
    case "plugin_not_found":
      return new PluginNotFoundError(f.id);
    case "worker_crashed":
      return new WorkerCrashedError(flat.message);
    default: {
      const error = new Error(flat.message);
      error.name = flat.name ?? "Error";
      return error;
    }
  }
}

/**
 * Carries errors across the worker boundary: an error is flattened to JSON
 * (kind or name, message, context fields, stack, cause) on one side and
 * revived as the same class on the other. A `WasmError`'s context fields are
 * its own enumerable properties, and every class takes them back as
 * `new XError(message, { ...fields, cause })`, so {@linkcode ERROR_CLASSES}
 * is the only list to keep. An error the host threw into the worker (from a
 * linker function or a host service) travels as a reference, without its
 * stack and causes, so the host gets its own object back, whatever its class.
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
  type WasmErrorKind,
  WorkerCrashedError,
} from "../errors.ts";
import { thrownText } from "../common/mod.ts";
import { WasiExit } from "../wasi/wasi_exit.ts";

/** The class of each kind: its instances have that `kind`. */
type ErrorClasses = {
  readonly [K in WasmErrorKind]: new (...args: never[]) => WasmError & { readonly kind: K };
};

/** How every `WasmError` class is called: a message, then its fields and cause. */
type WasmErrorConstructor = new (
  message: string,
  options: ErrorOptions & Record<string, unknown>,
) => WasmError;

/** Every `WasmError` class by its `kind`. */
export const ERROR_CLASSES: ErrorClasses = {
  compilation: CompilationError,
  instantiation: InstantiationError,
  invalid_function: InvalidFunctionError,
  import_not_found: ImportNotFoundError,
  type_mismatch: TypeMismatchError,
  timeout: TimeoutError,
  out_of_memory: OutOfMemoryError,
  fuel_exhausted: FuelExhaustedError,
  call_depth_exceeded: CallDepthExceededError,
  memory_out_of_bounds: MemoryOutOfBoundsError,
  trap: TrapError,
  resource_limit: ResourceLimitError,
  capability_denied: CapabilityDeniedError,
  host_function: HostFunctionError,
  plugin_state: PluginStateError,
  plugin_not_found: PluginNotFoundError,
  worker_crashed: WorkerCrashedError,
  guest: GuestError,
};

/** The JSON form of an error. */
interface FlatError {
  /** A `WasmError`'s kind, else `"error"`. */
  kind: string;
  message: string;
  name?: string;
  /** A `WasmError`'s context fields. */
  fields?: Record<string, Field>;
  /** Where it was thrown, on the side that threw it. */
  stack?: string;
  cause?: FlatError;
  /** The host's own error object behind this one (see {@linkcode encodeError}). */
  ref?: number;
}

/** What a context field can hold. */
type Field = string | number | boolean | null;

/** Own enumerable properties every error has that are not context fields. */
const NOT_FIELDS: ReadonlySet<string> = new Set(["kind", "name", "message", "stack", "cause"]);

/** How deep a chain of causes is carried. */
const MAX_CAUSES = 8;

/** Marks where a revived error's own stack ends and the other side's begins. */
const STACK_SEPARATOR = "\n    --- thrown on the other side of the worker boundary ---";

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

/** The context fields of a `WasmError`: its own enumerable properties that JSON can carry. */
function fieldsOf(err: WasmError): Record<string, Field> {
  const fields: Record<string, Field> = {};
  for (const [key, value] of Object.entries(err)) {
    if (NOT_FIELDS.has(key)) continue;
    if (
      typeof value === "string" || typeof value === "number" || typeof value === "boolean" ||
      value === null
    ) {
      fields[key] = value;
    }
  }
  return fields;
}

/** The error itself, without its stack or cause; any value, even one whose every read throws. */
function flattenShallow(err: unknown): FlatError {
  try {
    return flattenReadable(err);
  } catch {
    return { kind: "error", name: "Error", message: thrownText(err) };
  }
}

function flattenReadable(err: unknown): FlatError {
  if (err instanceof WasmError) {
    // Whole: a WasmError made on either side is bounded where it is made (a host function's
    // text in its HostFunctionError, a guest's message); cut again here, it would differ.
    return { kind: err.kind, name: err.name, message: err.message, fields: fieldsOf(err) };
  }
  // `proc_exit` outside `run()` (the cause of a TrapError): its exit code travels too.
  if (err instanceof WasiExit) {
    return { kind: "error", name: err.name, message: err.message, fields: { code: err.code } };
  }
  const name = err instanceof Error ? String(err.name) : "Error";
  return { kind: "error", name, message: thrownText(err) };
}

/**
 * The error with its chain of causes. Only the last error of the chain
 * carries its stack: it is where the failure began (a wasm trap's frames are
 * the guest's), the errors wrapping it were made by wasmplug's own code, and
 * reading a stack formats it, which costs tens of microseconds each.
 */
function flatten(err: unknown, depth: number): FlatError {
  const ref = typeof err === "object" && err !== null ? refs.get(err) : undefined;
  const flat = flattenShallow(err);
  if (ref !== undefined) flat.ref = ref;
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause !== undefined && depth < MAX_CAUSES) {
    flat.cause = flatten(cause, depth + 1);
  } else if (err instanceof Error && typeof err.stack === "string") {
    flat.stack = err.stack;
  }
  return flat;
}

/** Finds the value the host threw by its `ref`, if it has it. */
export type ResolveRef = (ref: number) => { readonly value: unknown } | undefined;

/** `fields` with every string cut as `thrownText` cuts a message. */
function boundedFields(fields: Readonly<Record<string, Field>>): Record<string, Field> {
  const bounded: Record<string, Field> = {};
  for (const [key, value] of Object.entries(fields)) {
    bounded[key] = typeof value === "string" ? thrownText(value) : value;
  }
  return bounded;
}

/**
 * Flattens an error to JSON text. `ref` marks an error the host threw, which
 * the host later resolves back to its own object: it travels without its
 * stack and causes, which only the host's object needs (reading a stack
 * formats it, which costs tens of microseconds, on both sides).
 */
export function encodeError(err: unknown, ref?: number): string {
  if (ref !== undefined) {
    // The host gets its own object back (`ref`): the worker's stand-in needs no more than the
    // bounded text, however long the message of an error a host function made.
    // So are its name and fields (a WasmError's `limit`, say): every string is bounded.
    const flat = flattenShallow(err);
    const bounded: FlatError = {
      ...flat,
      ...(flat.name === undefined ? {} : { name: thrownText(flat.name) }),
      message: thrownText(flat.message),
      ...(flat.fields === undefined ? {} : { fields: boundedFields(flat.fields) }),
      ref,
    };
    return JSON.stringify(bounded, replaceNumbers);
  }
  return JSON.stringify(flatten(err, 0), replaceNumbers);
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
  const denoError = name === undefined || !Object.hasOwn(Deno.errors, name)
    ? undefined
    : (Deno.errors as unknown as Record<string, ErrorConstructor | undefined>)[name];
  if (typeof denoError === "function") return new denoError(message, options);
  const error = new Error(message, options);
  if (name !== undefined) error.name = name;
  return error;
}

function build(flat: FlatError, options: ErrorOptions): Error {
  if (Object.hasOwn(ERROR_CLASSES, flat.kind)) {
    const ErrorClass = ERROR_CLASSES[flat.kind as WasmErrorKind] as WasmErrorConstructor;
    return new ErrorClass(flat.message, { ...flat.fields, ...options });
  }
  if (flat.name === "WasiExit" && typeof flat.fields?.code === "number") {
    return new WasiExit(flat.fields.code);
  }
  return plainError(flat.name, flat.message, options);
}

function revive(flat: FlatError, resolve: ResolveRef | undefined): unknown {
  if (flat.ref !== undefined && resolve !== undefined) {
    // Whatever it was, `undefined` too.
    const original = resolve(flat.ref);
    if (original !== undefined) return original.value;
  }
  const options: ErrorOptions = flat.cause === undefined
    ? {}
    : { cause: revive(flat.cause, resolve) };
  const error = build(flat, options);
  if (flat.stack !== undefined) appendStack(error, flat.stack);
  if (flat.ref !== undefined) refs.set(error, flat.ref);
  return error;
}

/**
 * Adds the frames of the side that threw an error to the stack of its
 * revived copy, whose own frames show where this side received it. Both are
 * joined when the stack is first read: formatting this side's frames costs
 * tens of microseconds, and most errors' stacks are never read.
 */
function appendStack(error: Error, stack: string): void {
  const own = Object.getOwnPropertyDescriptor(error, "stack");
  if (own === undefined) return;
  let joined: unknown;
  let read = false;
  Object.defineProperty(error, "stack", {
    get(): unknown {
      if (read) return joined;
      read = true;
      const base: unknown = own.get === undefined ? own.value : own.get.call(error);
      const frames = stack.split("\n").filter((line) => /^\s+at /.test(line));
      joined = typeof base === "string" && frames.length > 0
        ? `${base}${STACK_SEPARATOR}\n${frames.join("\n")}`
        : base;
      return joined;
    },
    set(value: unknown): void {
      read = true;
      joined = value;
    },
    enumerable: own.enumerable ?? false,
    configurable: true,
  });
}

/**
 * Revives an error flattened by {@linkcode encodeError}, with its chain of
 * causes. `resolve` turns a host reference back into the host's own object.
 */
export function decodeError(text: string, resolve?: ResolveRef): unknown {
  return revive(JSON.parse(text, reviveNumbers) as FlatError, resolve);
}

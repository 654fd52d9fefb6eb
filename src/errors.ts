/**
 * The error hierarchy of wasmplug. Every runtime failure is a {@linkcode WasmError}
 * subclass with a string `kind`, so callers can `switch (err.kind)` the way the
 * Rust API matches `WasmError`. Bad arguments are `TypeError`/`RangeError`.
 *
 * Every subclass is built the same way, `new XError(message, options)`: the
 * options are the standard `ErrorOptions` (`cause`) plus the class's context
 * fields, which become readonly properties. When `message` is `undefined`
 * the class writes one from its fields.
 *
 * @module
 */

import { shownName, thrownText } from "./common/mod.ts";

/**
 * The `kind` of every {@linkcode WasmError} subclass.
 *
 * @example
 * ```ts
 * import type { WasmErrorKind } from "@wasmplug/wasmplug";
 * const retryable: WasmErrorKind[] = ["timeout", "worker_crashed"];
 * ```
 */
export type WasmErrorKind =
  | "compilation"
  | "instantiation"
  | "invalid_function"
  | "import_not_found"
  | "type_mismatch"
  | "timeout"
  | "out_of_memory"
  | "fuel_exhausted"
  | "call_depth_exceeded"
  | "memory_out_of_bounds"
  | "trap"
  | "resource_limit"
  | "capability_denied"
  | "host_function"
  | "plugin_state"
  | "plugin_not_found"
  | "worker_crashed"
  | "guest";

/**
 * Base class of all wasmplug runtime errors.
 *
 * @example Handle errors by kind
 * ```ts
 * import { WasmError, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat("(module)");
 * try {
 *   await plugin.callI32("missing", []);
 * } catch (err) {
 *   if (!(err instanceof WasmError)) throw err;
 *   switch (err.kind) {
 *     case "invalid_function":
 *       break; // expected: the module exports nothing
 *     default:
 *       throw err;
 *   }
 * }
 * ```
 */
export abstract class WasmError extends Error {
  /** Discriminates the subclass, e.g. `"trap"` or `"timeout"`. */
  abstract readonly kind: WasmErrorKind;
  /**
   * What a WASI command wrote before it failed with this error (a trap, a
   * timeout, a denied capability), when the error ends a `plugin.run()` that
   * started: the streams as `run()` would have returned them. Not
   * enumerable, so a logged error does not print a megabyte of output.
   */
  declare readonly output?: {
    readonly stdout: Uint8Array;
    readonly stderr: Uint8Array;
    readonly outputTruncated: boolean;
  };
}

/**
 * The bytes or text are not a valid WebAssembly module.
 *
 * @example
 * ```ts
 * import { CompilationError } from "@wasmplug/wasmplug";
 * const err = new CompilationError("Unexpected token", { line: 1, column: 9 });
 * console.log(err.kind, err.line); // compilation 1
 * ```
 */
export class CompilationError extends WasmError {
  /** Always `"compilation"`. */
  readonly kind: "compilation" = "compilation";
  /** Byte offset of the failure in a binary module, when known. */
  readonly offset: number | undefined;
  /** 1-based line of the failure in WAT source, when known. */
  readonly line: number | undefined;
  /** 1-based column of the failure in WAT source (in bytes of its UTF-8), when known. */
  readonly column: number | undefined;

  /**
   * Creates the error.
   *
   * @param message What is wrong with the module; by default that it is not valid WebAssembly.
   * @param options Where it is wrong, and the underlying cause.
   */
  constructor(
    message?: string,
    options: ErrorOptions & { offset?: number; line?: number; column?: number } = {},
  ) {
    super(message ?? "The module is not valid WebAssembly", options);
    this.name = "CompilationError";
    this.offset = options.offset;
    this.line = options.line;
    this.column = options.column;
  }
}

/**
 * A valid module could not be instantiated (a start function trapped, a
 * segment did not fit, a provided import had the wrong type).
 *
 * @example
 * ```ts
 * import { InstantiationError } from "@wasmplug/wasmplug";
 * console.log(new InstantiationError("Start function trapped").kind); // instantiation
 * ```
 */
export class InstantiationError extends WasmError {
  /** Always `"instantiation"`. */
  readonly kind: "instantiation" = "instantiation";

  /**
   * Creates the error.
   *
   * @param message Why instantiation failed.
   * @param options The underlying cause.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? "The module could not be instantiated", options);
    this.name = "InstantiationError";
  }
}

/**
 * The module has no exported function of that name.
 *
 * @example
 * ```ts
 * import { InvalidFunctionError } from "@wasmplug/wasmplug";
 * const err = new InvalidFunctionError(undefined, { functionName: "nope" });
 * console.log(err.functionName); // nope
 * console.log(err.message); // Function not found: "nope" is not an exported function
 * ```
 */
export class InvalidFunctionError extends WasmError {
  /** Always `"invalid_function"`. */
  readonly kind: "invalid_function" = "invalid_function";
  /** The name that was asked for. */
  readonly functionName: string;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the function.
   * @param options The missing export, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { functionName: string }) {
    super(
      message ??
        `Function not found: ${shownName(options.functionName)} is not an exported function`,
      options,
    );
    this.name = "InvalidFunctionError";
    this.functionName = options.functionName;
  }
}

/**
 * The module imports something that neither the linker, the built-in host
 * functions nor WASI provide.
 *
 * @example
 * ```ts
 * import { ImportNotFoundError } from "@wasmplug/wasmplug";
 * const err = new ImportNotFoundError(undefined, { module: "env", importName: "missing" });
 * console.log(err.module, err.importName); // env missing
 * ```
 */
export class ImportNotFoundError extends WasmError {
  /** Always `"import_not_found"`. */
  readonly kind: "import_not_found" = "import_not_found";
  /** Import module name. */
  readonly module: string;
  /** Import field name. */
  readonly importName: string;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the import.
   * @param options The import's module and name, and the cause.
   */
  constructor(
    message: string | undefined,
    options: ErrorOptions & { module: string; importName: string },
  ) {
    super(
      message ??
        `Import not found: ${shownName(options.module)}.${
          shownName(options.importName)
        } is not provided by the linker or the host`,
      options,
    );
    this.name = "ImportNotFoundError";
    this.module = options.module;
    this.importName = options.importName;
  }
}

/**
 * Arguments or results do not match the function's signature.
 *
 * @example
 * ```ts
 * import { TypeMismatchError } from "@wasmplug/wasmplug";
 * console.log(new TypeMismatchError("expected i32").kind); // type_mismatch
 * ```
 */
export class TypeMismatchError extends WasmError {
  /** Always `"type_mismatch"`. */
  readonly kind: "type_mismatch" = "type_mismatch";

  /**
   * Creates the error.
   *
   * @param message Which value did not match which type.
   * @param options The cause.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? "A value does not match the function's signature", options);
    this.name = "TypeMismatchError";
  }
}

/**
 * A call ran longer than its wall-clock budget.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@wasmplug/wasmplug";
 * const err = new TimeoutError(undefined, { timeoutMs: 1000 });
 * console.log(err.timeoutMs); // 1000
 * console.log(err.message); // Plugin execution timed out after 1000 ms
 * ```
 */
export class TimeoutError extends WasmError {
  /** Always `"timeout"`. */
  readonly kind: "timeout" = "timeout";
  /** The budget that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the budget.
   * @param options The exceeded budget, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { timeoutMs: number }) {
    super(message ?? `Plugin execution timed out after ${options.timeoutMs} ms`, options);
    this.name = "TimeoutError";
    this.timeoutMs = options.timeoutMs;
  }
}

/**
 * A memory is larger than the plugin's limit allows, or could not be allocated.
 *
 * @example
 * ```ts
 * import { OutOfMemoryError } from "@wasmplug/wasmplug";
 * console.log(new OutOfMemoryError("Memory 0 needs 20 pages").kind); // out_of_memory
 * ```
 */
export class OutOfMemoryError extends WasmError {
  /** Always `"out_of_memory"`. */
  readonly kind: "out_of_memory" = "out_of_memory";

  /**
   * Creates the error.
   *
   * @param message What needed how much memory.
   * @param options The cause.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? "The plugin ran out of memory", options);
    this.name = "OutOfMemoryError";
  }
}

/**
 * A call used up its fuel (instruction) budget.
 *
 * @example
 * ```ts
 * import { FuelExhaustedError } from "@wasmplug/wasmplug";
 * console.log(new FuelExhaustedError(undefined, { fuelLimit: 1000 }).fuelLimit); // 1000
 * ```
 */
export class FuelExhaustedError extends WasmError {
  /** Always `"fuel_exhausted"`. */
  readonly kind: "fuel_exhausted" = "fuel_exhausted";
  /** The budget that ran out. */
  readonly fuelLimit: number;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the budget.
   * @param options The exhausted budget, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { fuelLimit: number }) {
    super(
      message ??
        `Plugin ran out of fuel: the budget of ${options.fuelLimit} units is exhausted`,
      options,
    );
    this.name = "FuelExhaustedError";
    this.fuelLimit = options.fuelLimit;
  }
}

/**
 * A call nested deeper than the plugin's call-depth limit (or overflowed the stack).
 *
 * @example
 * ```ts
 * import { CallDepthExceededError } from "@wasmplug/wasmplug";
 * const err = new CallDepthExceededError(undefined, { maxCallDepth: 100 });
 * console.log(err.maxCallDepth); // 100
 * ```
 */
export class CallDepthExceededError extends WasmError {
  /** Always `"call_depth_exceeded"`. */
  readonly kind: "call_depth_exceeded" = "call_depth_exceeded";
  /** The limit that was exceeded. */
  readonly maxCallDepth: number;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the limit.
   * @param options The exceeded limit, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { maxCallDepth: number }) {
    super(message ?? `Call depth exceeded the limit of ${options.maxCallDepth}`, options);
    this.name = "CallDepthExceededError";
    this.maxCallDepth = options.maxCallDepth;
  }
}

/**
 * A host-side access to plugin memory fell outside it.
 *
 * @example
 * ```ts
 * import { MemoryOutOfBoundsError } from "@wasmplug/wasmplug";
 * const err = new MemoryOutOfBoundsError(undefined, { offset: 65536, size: 4 });
 * console.log(err.offset, err.size); // 65536 4
 * console.log(err.message); // Memory access out of bounds: 4 bytes at offset 65536
 * ```
 */
export class MemoryOutOfBoundsError extends WasmError {
  /** Always `"memory_out_of_bounds"`. */
  readonly kind: "memory_out_of_bounds" = "memory_out_of_bounds";
  /** Start of the access. */
  readonly offset: number;
  /** Length of the access. */
  readonly size: number;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the access.
   * @param options Start and length of the access, and the cause.
   */
  constructor(
    message: string | undefined,
    options: ErrorOptions & { offset: number; size: number },
  ) {
    super(
      message ??
        `Memory access out of bounds: ${options.size} bytes at offset ${options.offset}`,
      options,
    );
    this.name = "MemoryOutOfBoundsError";
    this.offset = options.offset;
    this.size = options.size;
  }
}

/**
 * The guest trapped: `unreachable`, division by zero, an out-of-bounds access
 * inside wasm, an indirect call type mismatch…
 *
 * @example
 * ```ts
 * import { TrapError } from "@wasmplug/wasmplug";
 * const err = new TrapError(undefined, { trap: "unreachable" });
 * console.log(err.trap); // unreachable
 * console.log(err.message); // Plugin trapped: unreachable
 * ```
 */
export class TrapError extends WasmError {
  /** Always `"trap"`. */
  readonly kind: "trap" = "trap";
  /** The engine's trap message, e.g. `"divide by zero"`. */
  readonly trap: string;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default `Plugin trapped: <trap>`.
   * @param options The engine's trap message, and the cause (the engine's `RuntimeError`).
   */
  constructor(message: string | undefined, options: ErrorOptions & { trap: string }) {
    super(message ?? `Plugin trapped: ${options.trap}`, options);
    this.name = "TrapError";
    this.trap = options.trap;
  }
}

/**
 * A resource limit other than memory, time, fuel or depth was hit
 * (`maxInstances`, `maxTableElements`, `maxStorageBytes`).
 *
 * @example
 * ```ts
 * import { ResourceLimitError } from "@wasmplug/wasmplug";
 * const err = new ResourceLimitError("Too many plugins", { limit: "maxInstances" });
 * console.log(err.limit); // maxInstances
 * ```
 */
export class ResourceLimitError extends WasmError {
  /** Always `"resource_limit"`. */
  readonly kind: "resource_limit" = "resource_limit";
  /** Name of the `ResourceLimits` field that was hit. */
  readonly limit: string;

  /**
   * Creates the error.
   *
   * @param message What exceeded the limit; by default one naming the limit.
   * @param options The `ResourceLimits` field, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { limit: string }) {
    super(message ?? `The resource limit ${options.limit} was exceeded`, options);
    this.name = "ResourceLimitError";
    this.limit = options.limit;
  }
}

/**
 * The plugin called a host function its capabilities do not grant.
 *
 * @example
 * ```ts
 * import { CapabilityDeniedError } from "@wasmplug/wasmplug";
 * const err = new CapabilityDeniedError(undefined, { capability: "read_config" });
 * console.log(err.capability); // read_config
 * console.log(err.message); // Capability denied: the plugin needs the "read_config" capability
 * ```
 */
export class CapabilityDeniedError extends WasmError {
  /** Always `"capability_denied"`. */
  readonly kind: "capability_denied" = "capability_denied";
  /** The missing capability. */
  readonly capability: string;

  /**
   * Creates the error.
   *
   * @param message What needed the capability; by default one naming the capability.
   * @param options The missing capability, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { capability: string }) {
    super(
      message ?? `Capability denied: the plugin needs the "${options.capability}" capability`,
      options,
    );
    this.name = "CapabilityDeniedError";
    this.capability = options.capability;
  }
}

/**
 * A host function threw; the original exception is the `cause`.
 *
 * @example
 * ```ts
 * import { HostFunctionError } from "@wasmplug/wasmplug";
 * const err = new HostFunctionError(undefined, {
 *   module: "env",
 *   functionName: "log",
 *   cause: new Error("boom"),
 * });
 * console.log(err.module, err.functionName); // env log
 * console.log(err.message); // Host function "env"."log" failed: boom
 * ```
 */
export class HostFunctionError extends WasmError {
  /** Always `"host_function"`. */
  readonly kind: "host_function" = "host_function";
  /** Import module of the host function. */
  readonly module: string;
  /** Import name of the host function. */
  readonly functionName: string;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the function and the cause
   *   (an error's message, or whatever else the host function threw, as a string).
   * @param options The host function's module and name, and the host's exception as `cause`.
   */
  constructor(
    message: string | undefined,
    options: ErrorOptions & { module: string; functionName: string },
  ) {
    super(
      message ??
        `Host function "${options.module}"."${options.functionName}" failed${
          "cause" in options ? reasonOf(options.cause) : ""
        }`,
      options,
    );
    this.name = "HostFunctionError";
    this.module = options.module;
    this.functionName = options.functionName;
  }
}

/**
 * The plugin is in a state that does not allow the operation (e.g. stopped).
 *
 * @example
 * ```ts
 * import { PluginStateError } from "@wasmplug/wasmplug";
 * const err = new PluginStateError('Cannot call "add": the plugin is stopped', {
 *   state: "stopped",
 * });
 * console.log(err.state); // stopped
 * ```
 */
export class PluginStateError extends WasmError {
  /** Always `"plugin_state"`. */
  readonly kind: "plugin_state" = "plugin_state";
  /** The plugin's state at the time, or `"closed"` for a closed runtime or manager. */
  readonly state: string;

  /**
   * Creates the error.
   *
   * @param message What was attempted in which state; by default one naming the state.
   * @param options The plugin's state, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { state: string }) {
    super(message ?? `The plugin is ${options.state}`, options);
    this.name = "PluginStateError";
    this.state = options.state;
  }
}

/**
 * No plugin with that id is loaded in the manager.
 *
 * @example
 * ```ts
 * import { PluginNotFoundError } from "@wasmplug/wasmplug";
 * console.log(new PluginNotFoundError(undefined, { id: "p-1" }).id); // p-1
 * ```
 */
export class PluginNotFoundError extends WasmError {
  /** Always `"plugin_not_found"`. */
  readonly kind: "plugin_not_found" = "plugin_not_found";
  /** The unknown id. */
  readonly id: string;

  /**
   * Creates the error.
   *
   * @param message A more specific message; by default one naming the id.
   * @param options The unknown id, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { id: string }) {
    super(message ?? `Plugin not found: no loaded plugin has the id "${options.id}"`, options);
    this.name = "PluginNotFoundError";
    this.id = options.id;
  }
}

/**
 * The worker that hosted the plugin died unexpectedly.
 *
 * @example
 * ```ts
 * import { WorkerCrashedError } from "@wasmplug/wasmplug";
 * console.log(new WorkerCrashedError("Worker exited").kind); // worker_crashed
 * ```
 */
export class WorkerCrashedError extends WasmError {
  /** Always `"worker_crashed"`. */
  readonly kind: "worker_crashed" = "worker_crashed";

  /**
   * Creates the error.
   *
   * @param message What happened to the worker.
   * @param options The cause.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? "The plugin's worker crashed", options);
    this.name = "WorkerCrashedError";
  }
}

/**
 * A plugin function reported that it failed, with a message of its own
 * (`env.host_set_error`, which the guest SDKs call when a plugin function
 * returns an error). The call ends with this error once the function has
 * returned and the host has freed the call's buffers; the plugin stays usable.
 *
 * @example
 * ```ts
 * import { GuestError } from "@wasmplug/wasmplug";
 * const err = new GuestError('missing "name"', { functionName: "greet" });
 * console.log(err.kind, err.functionName, err.message); // guest greet missing "name"
 * ```
 */
export class GuestError extends WasmError {
  /** Always `"guest"`. */
  readonly kind: "guest" = "guest";
  /** The export that reported the failure. */
  readonly functionName: string;

  /**
   * Creates the error.
   *
   * @param message The guest's message, as the guest wrote it (UTF-8, at most 16 KiB);
   * an empty one is treated as none.
   * @param options The export that failed, and the cause.
   */
  constructor(message: string | undefined, options: ErrorOptions & { functionName: string }) {
    super(
      message || `Plugin function "${options.functionName}" failed without a message`,
      options,
    );
    this.name = "GuestError";
    this.functionName = options.functionName;
  }
}

/**
 * `: <what went wrong>` for a host function's exception: an error's message,
 * or any other thrown value as a string (a host function may throw
 * anything, `undefined` too), or its type when it cannot be made one;
 * nothing when it says nothing.
 */
function reasonOf(cause: unknown): string {
  const text = thrownText(cause);
  return text === "" ? "" : `: ${text}`;
}

import assert from "node:assert/strict";
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
  type WasmErrorKind,
  WorkerCrashedError,
} from "../mod.ts";

interface Case {
  readonly error: WasmError;
  readonly kind: WasmErrorKind;
  readonly name: string;
  readonly fields: Record<string, unknown>;
  readonly message: string | RegExp;
}

const cause = new Error("boom");

/** One error of each class with the fields of the table in API.md. */
const CASES: readonly Case[] = [
  {
    error: new CompilationError("Unexpected token", { line: 3, column: 9, cause }),
    kind: "compilation",
    name: "CompilationError",
    fields: { line: 3, column: 9, offset: undefined },
    message: "Unexpected token",
  },
  {
    error: new InstantiationError("Start function trapped", { cause }),
    kind: "instantiation",
    name: "InstantiationError",
    fields: {},
    message: "Start function trapped",
  },
  {
    error: new InvalidFunctionError("nope"),
    kind: "invalid_function",
    name: "InvalidFunctionError",
    fields: { functionName: "nope" },
    message: 'Function not found: "nope" is not an exported function',
  },
  {
    error: new ImportNotFoundError("env", "missing"),
    kind: "import_not_found",
    name: "ImportNotFoundError",
    fields: { module: "env", importName: "missing" },
    message: /"env"\."missing"/,
  },
  {
    error: new TypeMismatchError("expected i32"),
    kind: "type_mismatch",
    name: "TypeMismatchError",
    fields: {},
    message: "expected i32",
  },
  {
    error: new TimeoutError(1000),
    kind: "timeout",
    name: "TimeoutError",
    fields: { timeoutMs: 1000 },
    message: "Plugin execution timed out after 1000 ms",
  },
  {
    error: new OutOfMemoryError("Memory 0 needs 20 pages"),
    kind: "out_of_memory",
    name: "OutOfMemoryError",
    fields: {},
    message: "Memory 0 needs 20 pages",
  },
  {
    error: new FuelExhaustedError(500),
    kind: "fuel_exhausted",
    name: "FuelExhaustedError",
    fields: { fuelLimit: 500 },
    message: /500 units/,
  },
  {
    error: new CallDepthExceededError(100),
    kind: "call_depth_exceeded",
    name: "CallDepthExceededError",
    fields: { maxCallDepth: 100 },
    message: "Call depth exceeded the limit of 100",
  },
  {
    error: new MemoryOutOfBoundsError(65536, 4, 65536),
    kind: "memory_out_of_bounds",
    name: "MemoryOutOfBoundsError",
    fields: { offset: 65536, size: 4 },
    message:
      "Memory access out of bounds: 4 bytes at offset 65536 exceed the memory of 65536 bytes",
  },
  {
    error: new TrapError("unreachable"),
    kind: "trap",
    name: "TrapError",
    fields: { trap: "unreachable" },
    message: "Plugin trapped: unreachable",
  },
  {
    error: new ResourceLimitError("maxInstances", "Too many plugins"),
    kind: "resource_limit",
    name: "ResourceLimitError",
    fields: { limit: "maxInstances" },
    message: "Too many plugins",
  },
  {
    error: new CapabilityDeniedError("read_config", 'Calling "env"."host_get_config"'),
    kind: "capability_denied",
    name: "CapabilityDeniedError",
    fields: { capability: "read_config" },
    message:
      'Capability denied: Calling "env"."host_get_config" needs the "read_config" capability',
  },
  {
    error: new HostFunctionError("env", "log", { cause }),
    kind: "host_function",
    name: "HostFunctionError",
    fields: { module: "env", functionName: "log", cause },
    message: 'Host function "env"."log" failed: boom',
  },
  {
    error: new PluginStateError("stopped", 'Cannot call "add"'),
    kind: "plugin_state",
    name: "PluginStateError",
    fields: { state: "stopped" },
    message: 'Cannot call "add": the plugin is stopped',
  },
  {
    error: new PluginNotFoundError("p-1"),
    kind: "plugin_not_found",
    name: "PluginNotFoundError",
    fields: { id: "p-1" },
    message: /"p-1"/,
  },
  {
    error: new WorkerCrashedError("Worker exited"),
    kind: "worker_crashed",
    name: "WorkerCrashedError",
    fields: {},
    message: "Worker exited",
  },
];

Deno.test("WasmError subclasses carry a kind and their context", {
  permissions: "none",
}, async (t) => {
  for (const { error, kind, name, fields, message } of CASES) {
    await t.step(`${name} has kind "${kind}"`, () => {
      assert.ok(error instanceof WasmError);
      assert.ok(error instanceof Error);
      assert.equal(error.kind, kind);
      assert.equal(error.name, name);
      if (typeof message === "string") assert.equal(error.message, message);
      else assert.match(error.message, message);
      for (const [key, value] of Object.entries(fields)) {
        assert.equal((error as unknown as Record<string, unknown>)[key], value, key);
      }
      assert.match(String(error.stack), new RegExp(`^${name}`));
    });
  }

  await t.step("every kind belongs to exactly one class", () => {
    const kinds = CASES.map((c) => c.kind);
    assert.equal(new Set(kinds).size, 17);
  });

  await t.step("a switch on kind narrows like a Rust match", () => {
    const describe = (err: WasmError): string => {
      switch (err.kind) {
        case "timeout":
          return "timed out";
        case "invalid_function":
          return `no ${(err as InvalidFunctionError).functionName}`;
        default:
          return err.kind;
      }
    };
    assert.equal(describe(new TimeoutError(5)), "timed out");
    assert.equal(describe(new InvalidFunctionError("f")), "no f");
    assert.equal(describe(new TrapError("unreachable")), "trap");
  });
});

Deno.test("WasmError constructors accept a more specific message and a cause", {
  permissions: "none",
}, async (t) => {
  await t.step("the cause is kept as Error.cause", () => {
    assert.equal(new TrapError("unreachable", { cause }).cause, cause);
    assert.equal(new CompilationError("bad", { cause }).cause, cause);
    assert.equal(new TimeoutError(10, { cause }).cause, cause);
  });

  await t.step("CompilationError keeps a byte offset for binary modules", () => {
    const error = new CompilationError("bad magic", { offset: 0 });
    assert.equal(error.offset, 0);
    assert.equal(error.line, undefined);
    assert.equal(error.column, undefined);
  });

  await t.step("InvalidFunctionError, CallDepthExceededError and MemoryOutOfBoundsError", () => {
    assert.equal(
      new InvalidFunctionError("alloc", { message: "No allocator" }).message,
      "No allocator",
    );
    assert.equal(new CallDepthExceededError(5, { message: "Too deep" }).message, "Too deep");
    const oob = new MemoryOutOfBoundsError(1, 2, 0, { message: "No memory" });
    assert.equal(oob.message, "No memory");
    assert.deepEqual([oob.offset, oob.size], [1, 2]);
  });

  await t.step("HostFunctionError does not invent a reason for a non-Error cause", () => {
    const error = new HostFunctionError("env", "f", { cause: "text" });
    assert.equal(error.message, 'Host function "env"."f" failed');
    assert.equal(error.cause, "text");
  });
});

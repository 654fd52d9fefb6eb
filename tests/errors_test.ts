import assert from "node:assert/strict";
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
    error: new InvalidFunctionError(undefined, { functionName: "nope" }),
    kind: "invalid_function",
    name: "InvalidFunctionError",
    fields: { functionName: "nope" },
    message: 'Function not found: "nope" is not an exported function',
  },
  {
    error: new ImportNotFoundError(undefined, { module: "env", importName: "missing" }),
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
    error: new TimeoutError(undefined, { timeoutMs: 1000 }),
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
    error: new FuelExhaustedError(undefined, { fuelLimit: 500 }),
    kind: "fuel_exhausted",
    name: "FuelExhaustedError",
    fields: { fuelLimit: 500 },
    message: /500 units/,
  },
  {
    error: new CallDepthExceededError(undefined, { maxCallDepth: 100 }),
    kind: "call_depth_exceeded",
    name: "CallDepthExceededError",
    fields: { maxCallDepth: 100 },
    message: "Call depth exceeded the limit of 100",
  },
  {
    error: new MemoryOutOfBoundsError(undefined, { offset: 65536, size: 4 }),
    kind: "memory_out_of_bounds",
    name: "MemoryOutOfBoundsError",
    fields: { offset: 65536, size: 4 },
    message: "Memory access out of bounds: 4 bytes at offset 65536",
  },
  {
    error: new TrapError(undefined, { trap: "unreachable" }),
    kind: "trap",
    name: "TrapError",
    fields: { trap: "unreachable" },
    message: "Plugin trapped: unreachable",
  },
  {
    error: new ResourceLimitError("Too many plugins", { limit: "maxInstances" }),
    kind: "resource_limit",
    name: "ResourceLimitError",
    fields: { limit: "maxInstances" },
    message: "Too many plugins",
  },
  {
    error: new CapabilityDeniedError(undefined, { capability: "read_config" }),
    kind: "capability_denied",
    name: "CapabilityDeniedError",
    fields: { capability: "read_config" },
    message: 'Capability denied: the plugin needs the "read_config" capability',
  },
  {
    error: new HostFunctionError(undefined, { module: "env", functionName: "log", cause }),
    kind: "host_function",
    name: "HostFunctionError",
    fields: { module: "env", functionName: "log", cause },
    message: 'Host function "env"."log" failed: boom',
  },
  {
    error: new PluginStateError(undefined, { state: "stopped" }),
    kind: "plugin_state",
    name: "PluginStateError",
    fields: { state: "stopped" },
    message: "The plugin is stopped",
  },
  {
    error: new PluginNotFoundError(undefined, { id: "p-1" }),
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
  {
    error: new GuestError('missing "name"', { functionName: "greet" }),
    kind: "guest",
    name: "GuestError",
    fields: { functionName: "greet" },
    message: 'missing "name"',
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
    assert.equal(new Set(kinds).size, 18);
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
    assert.equal(describe(new TimeoutError(undefined, { timeoutMs: 5 })), "timed out");
    assert.equal(describe(new InvalidFunctionError(undefined, { functionName: "f" })), "no f");
    assert.equal(describe(new TrapError(undefined, { trap: "unreachable" })), "trap");
  });
});

Deno.test("WasmError constructors take a message, then their fields and a cause", {
  permissions: "none",
}, async (t) => {
  await t.step("the cause is kept as Error.cause", () => {
    assert.equal(new TrapError(undefined, { trap: "unreachable", cause }).cause, cause);
    assert.equal(new CompilationError("bad", { cause }).cause, cause);
    assert.equal(new TimeoutError(undefined, { timeoutMs: 10, cause }).cause, cause);
  });

  await t.step("without a cause there is no cause property", () => {
    assert.equal("cause" in new TrapError(undefined, { trap: "unreachable" }), false);
    assert.equal("cause" in new WorkerCrashedError(), false);
  });

  await t.step("CompilationError keeps a byte offset for binary modules", () => {
    const error = new CompilationError("bad magic", { offset: 0 });
    assert.equal(error.offset, 0);
    assert.equal(error.line, undefined);
    assert.equal(error.column, undefined);
  });

  await t.step("a message replaces the one the class writes from its fields", () => {
    const missing = new InvalidFunctionError("No allocator", { functionName: "alloc" });
    assert.deepEqual([missing.message, missing.functionName], ["No allocator", "alloc"]);
    const deep = new CallDepthExceededError("Too deep", { maxCallDepth: 5 });
    assert.deepEqual([deep.message, deep.maxCallDepth], ["Too deep", 5]);
    const oob = new MemoryOutOfBoundsError("No memory", { offset: 1, size: 2 });
    assert.equal(oob.message, "No memory");
    assert.deepEqual([oob.offset, oob.size], [1, 2]);
    const trap = new TrapError("Plugin trapped twice", { trap: "unreachable" });
    assert.deepEqual([trap.message, trap.trap], ["Plugin trapped twice", "unreachable"]);
  });

  await t.step("classes without required fields have a default message", () => {
    const messages = [
      new CompilationError(),
      new InstantiationError(),
      new TypeMismatchError(),
      new OutOfMemoryError(),
      new WorkerCrashedError(),
    ].map((error) => error.message);
    assert.deepEqual(messages, [
      "The module is not valid WebAssembly",
      "The module could not be instantiated",
      "A value does not match the function's signature",
      "The plugin ran out of memory",
      "The plugin's worker crashed",
    ]);
  });

  await t.step("a GuestError without a message says that the guest gave none", () => {
    const expected = 'Plugin function "greet" failed without a message';
    assert.equal(new GuestError("", { functionName: "greet" }).message, expected);
    assert.equal(new GuestError(undefined, { functionName: "greet" }).message, expected);
  });

  await t.step("HostFunctionError names a non-Error cause by its string", () => {
    // A host function may throw anything; a worker plugin's error says it the same way.
    const error = new HostFunctionError(undefined, {
      module: "env",
      functionName: "f",
      cause: "text",
    });
    assert.equal(error.message, 'Host function "env"."f" failed: text');
    assert.equal(error.cause, "text");
    const unprintable = { toString: () => Symbol() };
    assert.equal(
      new HostFunctionError(undefined, { module: "env", functionName: "f", cause: unprintable })
        .message,
      'Host function "env"."f" failed: a thrown object',
    );
    assert.equal(
      new HostFunctionError(undefined, { module: "env", functionName: "f" }).message,
      'Host function "env"."f" failed',
    );
  });
});

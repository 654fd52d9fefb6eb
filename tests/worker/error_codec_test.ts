import assert from "node:assert/strict";
import {
  CallDepthExceededError,
  GuestError,
  HostFunctionError,
  ResourceLimitError,
  TimeoutError,
  TrapError,
  WasmError,
  type WasmErrorKind,
  WorkerCrashedError,
} from "../../src/errors.ts";
import * as errors from "../../src/errors.ts";
import {
  decodeError,
  encodeError,
  ERROR_CLASSES,
  type ResolveRef,
} from "../../src/worker/_error_codec.ts";

/** Sends an error to the other side and back, as the worker channel does. */
function roundTrip(err: unknown, resolve?: ResolveRef): unknown {
  return decodeError(encodeError(err), resolve);
}

/** Fields for an instance of each class; a new kind fails to type-check until it has some. */
const SAMPLE_FIELDS: { readonly [K in WasmErrorKind]: Readonly<Record<string, unknown>> } = {
  compilation: { offset: 7, line: 3, column: 9 },
  instantiation: {},
  invalid_function: { functionName: "nope" },
  import_not_found: { module: "env", importName: "missing" },
  type_mismatch: {},
  timeout: { timeoutMs: 1000 },
  out_of_memory: {},
  fuel_exhausted: { fuelLimit: 500 },
  call_depth_exceeded: { maxCallDepth: 100 },
  memory_out_of_bounds: { offset: 65536, size: 4 },
  trap: { trap: "unreachable" },
  resource_limit: { limit: "maxInstances" },
  capability_denied: { capability: "read_config" },
  host_function: { module: "env", functionName: "log" },
  plugin_state: { state: "stopped" },
  plugin_not_found: { id: "p-1" },
  worker_crashed: {},
  guest: { functionName: "greet" },
};

/** How every class is called, whatever its fields. */
type AnyWasmErrorClass = new (
  message: string | undefined,
  options: ErrorOptions & Record<string, unknown>,
) => WasmError;

/** One instance of the class of `kind`, built from the table. */
function sample(kind: WasmErrorKind, message: string | undefined, options: ErrorOptions = {}) {
  const ErrorClass = ERROR_CLASSES[kind] as unknown as AnyWasmErrorClass;
  return { ErrorClass, error: new ErrorClass(message, { ...SAMPLE_FIELDS[kind], ...options }) };
}

const KINDS = Object.keys(ERROR_CLASSES) as WasmErrorKind[];

Deno.test("Every WasmError class crosses the worker boundary as itself", {
  permissions: "none",
}, async (t) => {
  await t.step("every class exported by errors.ts is in the table, under its kind", () => {
    const exported = Object.values(errors).filter((value) =>
      typeof value === "function" && value.prototype instanceof WasmError
    );
    assert.ok(exported.length >= 18, `only ${exported.length} classes found`);
    const tabled = new Set<unknown>(Object.values(ERROR_CLASSES));
    for (const ErrorClass of exported) {
      assert.ok(tabled.has(ErrorClass), `${ErrorClass.name} is missing from ERROR_CLASSES`);
    }
    assert.equal(tabled.size, exported.length);
    for (const kind of KINDS) assert.equal(sample(kind, undefined).error.kind, kind);
  });

  for (const kind of KINDS) {
    const { ErrorClass, error } = sample(kind, `A ${kind} error`, { cause: new Error("below") });
    await t.step(`${error.name} keeps its kind, name, message, fields and cause`, () => {
      const back = roundTrip(error) as WasmError;
      assert.ok(back instanceof ErrorClass);
      assert.equal(back.kind, kind);
      assert.equal(back.name, error.name);
      assert.equal(back.message, `A ${kind} error`);
      assert.deepEqual({ ...back }, { ...error });
      assert.ok(back.cause instanceof Error);
      assert.equal(back.cause.message, "below");
    });
  }

  await t.step("a message the class wrote from its fields comes back the same", () => {
    for (const kind of KINDS) {
      const { error } = sample(kind, undefined);
      assert.equal((roundTrip(error) as WasmError).message, error.message, kind);
    }
  });
});

Deno.test("Errors cross the worker boundary as the same classes", {
  permissions: "none",
}, async (t) => {
  await t.step("a WasmError keeps its class, message and fields", () => {
    const error = roundTrip(new WorkerCrashedError("gone"));
    assert.ok(error instanceof WorkerCrashedError);
    assert.equal(error.message, "gone");
    assert.equal(error.kind, "worker_crashed");
  });

  await t.step("unlimited budgets stay Infinity", () => {
    const timeout = roundTrip(new TimeoutError(undefined, { timeoutMs: Infinity }));
    assert.equal((timeout as TimeoutError).timeoutMs, Infinity);
    const depth = roundTrip(new CallDepthExceededError(undefined, { maxCallDepth: Infinity }));
    assert.equal((depth as CallDepthExceededError).maxCallDepth, Infinity);
  });

  await t.step("the chain of causes comes along, with engine and Deno error classes", () => {
    const trap = new TrapError(undefined, {
      trap: "unreachable",
      cause: new WebAssembly.RuntimeError("unreachable"),
    });
    assert.ok((roundTrip(trap) as TrapError).cause instanceof WebAssembly.RuntimeError);
    const denied = new HostFunctionError(undefined, {
      module: "env",
      functionName: "host_http_fetch",
      cause: new Deno.errors.NotCapable("Requires net access"),
    });
    const error = roundTrip(denied) as HostFunctionError;
    assert.ok(error.cause instanceof Deno.errors.NotCapable);
    assert.equal(error.message, denied.message);
    const abort = roundTrip(new DOMException("The signal timed out", "TimeoutError"));
    assert.ok(abort instanceof DOMException && abort.name === "TimeoutError");
  });

  await t.step("errors that are not WasmErrors keep their standard class and message", () => {
    const type = roundTrip(new TypeError("not a number"));
    assert.ok(type instanceof TypeError);
    assert.equal(type.message, "not a number");
    const range = roundTrip(new RangeError("too big"));
    assert.ok(range instanceof RangeError);
    assert.equal(range.message, "too big");
    const abort = roundTrip(new DOMException("stopped", "AbortError"));
    assert.ok(abort instanceof DOMException && abort.name === "AbortError");
  });

  await t.step("thrown values that are not errors arrive as errors with their text", () => {
    const object = roundTrip({ code: 1 });
    assert.ok(object instanceof Error);
    assert.equal(object.message, "[object Object]");
    const text = roundTrip("plain text");
    assert.ok(text instanceof Error);
    assert.equal(text.message, "plain text");
  });

  await t.step("an unknown kind or class name arrives as a plain Error with that name", () => {
    for (const name of ["MartianError", "constructor", "__proto__", "toString"]) {
      const error = decodeError(JSON.stringify({ kind: name, name, message: "odd" }));
      assert.ok(error instanceof Error, name);
      assert.equal(Object.getPrototypeOf(error), Error.prototype, name);
      assert.deepEqual([error.name, error.message], [name, "odd"]);
    }
  });

  await t.step("the revived stack ends with the frames where the error was thrown", () => {
    function failInTheWorker(): Error {
      return new GuestError("failed", { functionName: "greet" });
    }
    const back = roundTrip(failInTheWorker()) as GuestError;
    assert.match(String(back.stack), /^GuestError: failed\n/);
    assert.match(
      String(back.stack),
      /--- thrown on the other side of the worker boundary ---\n\s+at failInTheWorker /,
    );
  });

  await t.step("stacks are formatted only where they are read", () => {
    // Formatting a stack costs tens of microseconds, and every failed worker call sends one.
    let formatted = 0;
    const saved = (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
    (Error as { prepareStackTrace?: unknown }).prepareStackTrace = (error: Error) => {
      formatted++;
      return `${error}\n    at formatted (file:///count.ts:${formatted}:1)`;
    };
    try {
      const trap = new TrapError(undefined, {
        trap: "unreachable",
        cause: new WebAssembly.RuntimeError("unreachable"),
      });
      const flat = JSON.parse(encodeError(trap));
      assert.equal(formatted, 1, "only the last error of the chain carries its stack");
      assert.equal(flat.stack, undefined);
      assert.match(flat.cause.stack, /^RuntimeError: unreachable/);

      const back = decodeError(JSON.stringify(flat)) as TrapError;
      assert.equal(formatted, 1, "a revived error's stack waits until it is read");
      const stack = String((back.cause as Error).stack);
      assert.equal(formatted, 2);
      assert.match(stack, /thrown on the other side of the worker boundary ---\n {4}at formatted/);
      (back.cause as Error).stack = "replaced";
      assert.equal((back.cause as Error).stack, "replaced");
    } finally {
      (Error as { prepareStackTrace?: unknown }).prepareStackTrace = saved;
    }
  });

  await t.step("an error of the host comes back as the host's own object", () => {
    class QuotaError extends Error {}
    const thrown = new QuotaError("over quota");
    // The host throws it into the worker by reference; the worker wraps it and sends it back.
    const inWorker = decodeError(encodeError(thrown, 0));
    const wrapped = new HostFunctionError(undefined, {
      module: "env",
      functionName: "charge",
      cause: inWorker,
    });
    const back = roundTrip(wrapped, (ref) => ({ value: [thrown][ref] })) as HostFunctionError;
    assert.equal(back.cause, thrown);
    assert.equal(back.message, 'Host function "env"."charge" failed: over quota');
  });

  await t.step("an error of the host travels with its text bounded, and comes back whole", () => {
    // A host function's own WasmError may say anything: 1 GiB of text did not fit the channel.
    const thrown = new TrapError("€".repeat(1_000_000), { trap: "unreachable" });
    const text = encodeError(thrown, 0);
    assert.ok(text.length < 20_000 * 3, `${text.length} characters`);
    const inWorker = decodeError(text) as TrapError;
    assert.ok(inWorker instanceof TrapError);
    assert.match(inWorker.message, /^€+… \(\d+ more characters\)$/);
    assert.equal(roundTrip(inWorker, (ref) => ({ value: [thrown][ref] })), thrown);
  });

  await t.step("every text of a host's error is bounded: its name and fields too", () => {
    const thrown = new ResourceLimitError("short", { limit: "L".repeat(1_000_000) });
    thrown.name = "N".repeat(1_000_000);
    const text = encodeError(thrown, 0);
    assert.ok(text.length < 60_000, `${text.length} characters`);
    assert.equal(roundTrip(decodeError(text), (ref) => ({ value: [thrown][ref] })), thrown);
  });

  await t.step("a host that threw undefined gets undefined back, not a stand-in", () => {
    const inWorker = decodeError(encodeError(undefined, 0));
    assert.ok(inWorker instanceof Error);
    assert.equal(roundTrip(inWorker, (ref) => ({ value: [undefined][ref] })), undefined);
  });

  await t.step("an error of the host travels without its stack or causes", () => {
    // Reading a stack formats it (tens of microseconds): a guest that catches what a host
    // function throws, in a loop, paid that on both sides for every throw.
    let stackReads = 0;
    const thrown = new TypeError("bad input", { cause: new Error("deeper") });
    Object.defineProperty(thrown, "stack", {
      get: () => {
        stackReads++;
        return "TypeError: bad input\n    at host (file:///host.ts:1:1)";
      },
    });
    const text = encodeError(thrown, 3);
    assert.equal(stackReads, 0);
    assert.deepEqual(JSON.parse(text), {
      kind: "error",
      name: "TypeError",
      message: "bad input",
      ref: 3,
    });
    const inWorker = decodeError(text);
    assert.ok(inWorker instanceof TypeError);
    assert.equal(inWorker.message, "bad input");
    assert.doesNotMatch(String(inWorker.stack), /thrown on the other side/);
  });
});

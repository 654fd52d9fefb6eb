import assert from "node:assert/strict";
import {
  CallDepthExceededError,
  HostFunctionError,
  TimeoutError,
  TrapError,
  WorkerCrashedError,
} from "../../mod.ts";
import { decodeError, encodeError } from "../../src/worker/_error_codec.ts";

/** Sends an error to the other side and back, as the worker channel does. */
function roundTrip(err: unknown, resolve?: (ref: number) => unknown): unknown {
  return decodeError(encodeError(err), resolve);
}

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
    assert.equal((roundTrip(new TimeoutError(Infinity)) as TimeoutError).timeoutMs, Infinity);
    const depth = roundTrip(new CallDepthExceededError(Infinity)) as CallDepthExceededError;
    assert.equal(depth.maxCallDepth, Infinity);
  });

  await t.step("the chain of causes comes along, with engine and Deno error classes", () => {
    const trap = new TrapError("unreachable", {
      cause: new WebAssembly.RuntimeError("unreachable"),
    });
    assert.ok((roundTrip(trap) as TrapError).cause instanceof WebAssembly.RuntimeError);
    const denied = new HostFunctionError("env", "host_http_fetch", {
      cause: new Deno.errors.NotCapable("Requires net access"),
    });
    const error = roundTrip(denied) as HostFunctionError;
    assert.ok(error.cause instanceof Deno.errors.NotCapable);
    assert.equal(error.message, denied.message);
    const abort = roundTrip(new DOMException("The signal timed out", "TimeoutError"));
    assert.ok(abort instanceof DOMException && abort.name === "TimeoutError");
  });

  await t.step("an error of the host comes back as the host's own object", () => {
    class QuotaError extends Error {}
    const thrown = new QuotaError("over quota");
    // The host throws it into the worker by reference; the worker wraps it and sends it back.
    const inWorker = decodeError(encodeError(thrown, 0));
    const wrapped = new HostFunctionError("env", "charge", { cause: inWorker });
    const back = roundTrip(wrapped, (ref) => [thrown][ref]) as HostFunctionError;
    assert.equal(back.cause, thrown);
    assert.equal(back.message, 'Host function "env"."charge" failed: over quota');
  });
});

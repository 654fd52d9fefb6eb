/**
 * Turns what a wasm call throws into a typed {@linkcode WasmError}.
 *
 * @module
 */

import { CallDepthExceededError, TrapError, TypeMismatchError, WasmError } from "../errors.ts";

const WasmException = (WebAssembly as unknown as { Exception?: abstract new () => object })
  .Exception;

/** Maps an engine exception from a wasm call to the matching `WasmError`. */
export function classifyCallError(err: unknown, maxCallDepth: number): WasmError {
  if (err instanceof WasmError) return err;
  if (err instanceof RangeError && /call stack size/i.test(err.message)) {
    return new CallDepthExceededError(
      `Call depth exceeded: the engine's stack overflowed (limit maxCallDepth = ${maxCallDepth})`,
      { maxCallDepth, cause: err },
    );
  }
  if (err instanceof WebAssembly.RuntimeError) {
    return new TrapError(undefined, { trap: err.message, cause: err });
  }
  // A JS value the engine cannot convert at the boundary (e.g. a plain function for a funcref).
  if (err instanceof TypeError && /type incompatibility when transforming/.test(err.message)) {
    return new TypeMismatchError(`A value crossing into wasm has the wrong type: ${err.message}`, {
      cause: err,
    });
  }
  if (WasmException !== undefined && err instanceof WasmException) {
    // Not its cause: the exception holds the guest's values (and a worker cannot carry it).
    return new TrapError(undefined, { trap: "uncaught wasm exception" });
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new TrapError(undefined, { trap: message, cause: err });
}

/**
 * How a plugin's worker formats the stacks of its errors. Every failed call
 * reads its error's stack, to send it to the host (see `_error_codec.ts`),
 * and formatting a JS frame computes its source position: with wasmplug's
 * frames around a guest's trap, that took 40-60 µs a stack in Deno 2.9.6,
 * more than the rest of a failed call. A stack that passes through wasm
 * shows only its wasm frames, the guest's own, which are what a trap's
 * reader needs and cost little; any other stack (a fault in wasmplug's own
 * worker code) shows every frame.
 *
 * @module
 */

/** What the formatter reads of a V8 call site. */
export interface CallSiteLike {
  /** The script's name or source URL: `wasm://…` for a wasm frame. */
  getScriptNameOrSourceURL(): string | null | undefined;
  /** The frame as V8 writes it after `at `. */
  toString(): string;
}

/**
 * Formats a stack as {@linkcode installWorkerStackTraces} does: the error's
 * header, then `    at ` lines for its wasm frames if it has any, else for
 * every frame.
 *
 * @example
 * ```ts ignore
 * formatWorkerStack(new Error("boom"), callSites); // "Error: boom\n    at wasm://…"
 * ```
 *
 * @param error The error whose stack it is.
 * @param frames Its call sites, innermost first.
 * @returns The stack text.
 */
export function formatWorkerStack(error: Error, frames: readonly CallSiteLike[]): string {
  const wasm = frames.filter((frame) =>
    frame.getScriptNameOrSourceURL()?.startsWith("wasm://") === true
  );
  const shown = wasm.length > 0 ? wasm : frames;
  let stack = errorHeader(error);
  for (const frame of shown) stack += `\n    at ${frame}`;
  return stack;
}

/** `Name: message`, as V8 starts a stack; an error whose `toString` fails still gets one. */
function errorHeader(error: Error): string {
  try {
    return String(error);
  } catch {
    return "Error";
  }
}

/**
 * Makes {@linkcode formatWorkerStack} format every stack of this isolate
 * (V8's `Error.prepareStackTrace`). For a plugin's worker only: its isolate
 * runs nothing but wasmplug's worker code and the guest.
 *
 * @example
 * ```ts ignore
 * installWorkerStackTraces();
 * ```
 */
export function installWorkerStackTraces(): void {
  (Error as { prepareStackTrace?: unknown }).prepareStackTrace = formatWorkerStack;
}

/**
 * Typed access to JavaScript Promise Integration (JSPI), which lets a wasm
 * call wait for a promise without blocking the thread.
 *
 * @module
 */

interface JspiApi {
  Suspending: new (fn: (...args: never[]) => unknown) => object;
  promising: (fn: unknown) => (...args: unknown[]) => Promise<unknown>;
}

const api = WebAssembly as unknown as Partial<JspiApi>;

/** Whether the engine ships JSPI. */
export const hasJspi: boolean = typeof api.Suspending === "function" &&
  typeof api.promising === "function";

/** Wraps an async host function so that calling it suspends the guest. */
export function suspending(fn: (...args: never[]) => unknown): object {
  return new api.Suspending!(fn);
}

/** Wraps an export so that it can suspend, returning a promise of its result. */
export function promising(fn: unknown): (...args: unknown[]) => Promise<unknown> {
  return api.promising!(fn);
}

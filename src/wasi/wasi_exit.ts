/**
 * The exception that unwinds a WASI program out of `proc_exit`.
 *
 * @module
 */

/**
 * Thrown by the `proc_exit` import to unwind the guest's stack.
 * {@linkcode WasiPreview1.start} turns it into the exit code it returns; a
 * runner that calls `_start` itself catches it and reads
 * {@linkcode WasiExit.code}. It is control flow, not a failure, which is
 * why it is not a `WasmError`.
 *
 * @example Run `_start` without `start()`
 * ```ts
 * import { WasiExit } from "@wasmplug/wasmplug";
 *
 * function runStart(start: () => void): number {
 *   try {
 *     start();
 *     return 0;
 *   } catch (err) {
 *     if (err instanceof WasiExit) return err.code;
 *     throw err;
 *   }
 * }
 * console.log(runStart(() => { throw new WasiExit(3); })); // 3
 * ```
 */
export class WasiExit extends Error {
  /** The exit code the guest passed to `proc_exit`. */
  readonly code: number;

  /**
   * Creates the exception.
   *
   * @param code The guest's exit code.
   */
  constructor(code: number) {
    super(`The WASI program exited with code ${code}`);
    this.name = "WasiExit";
    this.code = code;
  }
}

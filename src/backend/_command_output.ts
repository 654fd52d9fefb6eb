/**
 * The output of a WASI command that failed, carried on its error (see
 * `WasmError.output`).
 *
 * @module
 */

import { WasmError } from "../errors.ts";

/** What a command wrote: its streams, as `plugin.run()` returns them. */
export interface CommandOutput {
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  readonly outputTruncated: boolean;
}

/**
 * Puts `output` on `err` as its non-enumerable `output` when it is a
 * `WasmError` without one (an error the host threw is left as it is).
 * Returns `err`.
 */
export function withCommandOutput(err: unknown, output: CommandOutput): unknown {
  if (err instanceof WasmError && err.output === undefined) {
    Object.defineProperty(err, "output", { value: output, configurable: true, writable: true });
  }
  return err;
}

/** The output a failed command's error carries, if any. */
export function commandOutputOf(err: unknown): CommandOutput | undefined {
  return err instanceof WasmError ? err.output : undefined;
}

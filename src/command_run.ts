/**
 * Running WASI commands: `plugin.run()`'s options and result.
 *
 * @module
 */

import type { CallOptions } from "./call_options.ts";

/**
 * Options of `plugin.run()`: what the command reads, and the call's budgets.
 *
 * @example
 * ```ts
 * import type { RunOptions } from "@wasmplug/wasmplug";
 * const options: RunOptions = { stdin: new TextEncoder().encode("hello\n"), timeoutMs: 1000 };
 * ```
 */
export interface RunOptions extends CallOptions {
  /**
   * What the command reads from standard input.
   *
   * @default {an empty input}
   */
  stdin?: Uint8Array;
}

/**
 * What a WASI command did.
 *
 * @example
 * ```ts
 * import type { RunResult } from "@wasmplug/wasmplug";
 * function report(result: RunResult): string {
 *   return `exit ${result.exitCode}: ${new TextDecoder().decode(result.stdout)}`;
 * }
 * ```
 */
export interface RunResult {
  /** The code passed to `proc_exit`, or 0 when `_start` returned. */
  readonly exitCode: number;
  /** Everything the command wrote to standard output (up to 1 MiB). */
  readonly stdout: Uint8Array;
  /** Everything the command wrote to standard error (up to 1 MiB). */
  readonly stderr: Uint8Array;
  /** Whether output beyond the cap was dropped. */
  readonly outputTruncated: boolean;
}

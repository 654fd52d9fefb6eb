/**
 * Opcodes and setup messages of the host ↔ worker protocol. After setup
 * (one `postMessage` each way), everything goes over the SAB channel.
 *
 * @module
 */

import type { InstrumentMetadata } from "../instrument/instrument.ts";
import type { ImportPlan } from "../_instance.ts";
import type { ChannelBuffers } from "./_channel.ts";

/** Host → worker opcodes. */
export const ToWorker = {
  /** name, fuel (number | null), timeoutMs, ...args */
  Call: 1,
  /** offset, length */
  ReadMemory: 2,
  /** offset, bytes */
  WriteMemory: 3,
  /** the result value of a linker or service call */
  Return: 4,
  /** an encoded error thrown by a linker or service call */
  Throw: 5,
} as const;

/** Worker → host opcodes. */
export const ToHost = {
  /** fuelUsed, memoryBytes, ...results */
  Result: 10,
  /** encoded error, fuelUsed, memoryBytes */
  Failure: 11,
  /** import index, ...args */
  LinkerCall: 12,
  /** service name, ...args */
  ServiceCall: 13,
  /** bytes (read memory), or nothing (write memory) */
  Done: 14,
} as const;

/** What the host posts to a new worker. */
export interface WorkerSetup {
  readonly module: WebAssembly.Module;
  readonly instrumentation: InstrumentMetadata | null;
  readonly imports: readonly ImportPlan[];
  readonly pluginName: string;
  readonly capabilities: readonly string[];
  readonly allowedHosts: readonly string[];
  readonly maxCallDepth: number;
  readonly startFuel: number | null;
  readonly startTimeoutMs: number;
  readonly channel: ChannelBuffers;
}

/** What a worker posts back once its instance exists (or failed to). */
export type WorkerReady =
  | {
    readonly ok: true;
    readonly memoryBytes: number;
    readonly interrupt: SharedArrayBuffer | null;
  }
  | { readonly ok: false; readonly error: string };

/**
 * Opcodes and setup messages of the host ↔ worker protocol. After setup
 * (one `postMessage` each way), everything goes over the SAB channel.
 *
 * @module
 */

import type { InstanceSpec } from "../backend/mod.ts";
import type { ChannelBuffers } from "./_channel.ts";

/** Host → worker opcodes. */
export const ToWorker = {
  /**
   * ...args, export, fuel (number | null), timeoutMs (last, so the worker
   * pops them off in place). The export travels as its index in
   * `WebAssembly.Module.exports()` of the plugin's module (see
   * {@linkcode exportIndex}), or as its name when it has none.
   */
  Call: 1,
  /** offset, length */
  ReadMemory: 2,
  /** offset, bytes */
  WriteMemory: 3,
  /** the result of a linker or service call */
  Return: 4,
  /** an encoded error thrown by a linker or service call */
  Throw: 5,
  /** fuel (number | null), timeoutMs: run the module's deferred start function */
  Start: 6,
  /** the results of a linker function with several (an array) */
  ReturnMany: 7,
  /** stdin, fuel (number | null), timeoutMs: run the module as a WASI command */
  Run: 8,
  /** hand over the instance's state, so the worker can be terminated (see `ParkedState`) */
  Park: 9,
  /** export (as for `Call`), fuel (number | null), timeoutMs, shape (see `packBytesShape`), input */
  Bytes: 15,
  /**
   * drop the instance and wait for the next setup: the worker answers with
   * whether it is clean (nothing of the instance can still run), and stops
   * serving its channels
   */
  Retire: 16,
  /**
   * A flag on `Return`, `ReturnMany` or `Throw`: the host served the host
   * call after the call's deadline (its thread was busy with other work), and
   * the answer's last value is how many milliseconds from now the guest has
   * to end (the wait was the host's): its deadline moves there if sooner.
   */
  LateServed: 0x40,
} as const;

/**
 * The index of each export of `module` in `WebAssembly.Module.exports()`:
 * both sides have the same module, so a request can name its export with a
 * small integer (a request's size then does not grow with the name's, and
 * the worker decodes no string).
 */
export function exportIndex(module: WebAssembly.Module): Map<string, number> {
  return new Map(WebAssembly.Module.exports(module).map(({ name }, index) => [name, index]));
}

/**
 * The export a request names: by index (see {@linkcode exportIndex}) or by name.
 *
 * @throws {RangeError} If the index is not one of the module's exports.
 */
export function exportName(names: readonly string[], sent: unknown): string {
  if (typeof sent !== "number") return String(sent);
  const name = names[sent];
  if (name === undefined) {
    throw new RangeError(`The module has no export at index ${sent} (it has ${names.length})`);
  }
  return name;
}

/** A bytes call's exports and output kind, as the `ToWorker.Bytes` request carries them. */
export interface BytesShape {
  readonly packedOutput: boolean;
  readonly alloc: "alloc" | "malloc";
  readonly free: "dealloc" | "free" | null;
}

const FREES = [null, "dealloc", "free"] as const;

/**
 * Packs a bytes call's shape into one small integer (bit 0: packed output,
 * bit 1: `malloc`, bits 2–3: no free, `dealloc` or `free`), so the request
 * carries no names and fits the channel's first cache line.
 */
export function packBytesShape({ packedOutput, alloc, free }: BytesShape): number {
  return (packedOutput ? 1 : 0) | (alloc === "malloc" ? 2 : 0) | (FREES.indexOf(free) << 2);
}

/** The inverse of {@linkcode packBytesShape}. */
export function unpackBytesShape(shape: number): BytesShape {
  return {
    packedOutput: (shape & 1) !== 0,
    alloc: (shape & 2) !== 0 ? "malloc" : "alloc",
    free: FREES[(shape >> 2) & 3] ?? null,
  };
}

/** Worker → host opcodes. */
export const ToHost = {
  /** ...results (of a call, the start function or a command), fuelUsed, memoryBytes */
  Result: 10,
  /** encoded error, fuelUsed, memoryBytes */
  Failure: 11,
  /** import index, ...args */
  LinkerCall: 12,
  /** service name, ...args */
  ServiceCall: 13,
  /**
   * bytes (read memory), nothing (write memory), or for `Park`: `null`, the
   * number of memories, each memory's bytes, each global's value; or why
   * the state cannot be handed over (a string); for `Retire`: 1 when the
   * worker is clean, 0 when not
   */
  Done: 14,
} as const;

/** What the host posts to a new worker. */
export interface WorkerSetup {
  /**
   * The instance to create, as is; its `restore` is the state of the parked
   * worker this one takes over, if any, in place of running the start function.
   */
  readonly spec: InstanceSpec;
  /**
   * The buffers of the channels everything after setup goes over: the host
   * posts each request to the one after the last one's, in turn, so it can
   * post a call ahead while the worker runs the one before.
   */
  readonly channels: readonly ChannelBuffers[];
}

/** What a worker posts back once its instance exists (or failed to). */
export type WorkerReady =
  | {
    readonly ok: true;
    readonly memoryBytes: number;
    /**
     * A flag the host raises, and notifies, to cancel what a suspended guest
     * waits on; running wasm code stops at its next clock check instead.
     */
    readonly interrupt: SharedArrayBuffer;
    /** Whether the host must send `Start` to run the module's start function. */
    readonly hasStart: boolean;
    /**
     * The worker's `performance.now()` as it posts this: the host's clock
     * minus it, taken as this arrives, bounds the offset of the two clocks
     * from above (late by the message's way); see `clockOffsetOf`.
     */
    readonly now: number;
    /** The worker's `performance.timeOrigin`: with the host's, the exact offset of the two clocks. */
    readonly timeOrigin: number;
  }
  | { readonly ok: false; readonly error: string };

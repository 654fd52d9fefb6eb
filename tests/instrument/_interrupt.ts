/**
 * Runs an export of a module instrumented with a deadline in a worker and
 * asks it to stop after a delay (a shared flag its clock hook reads), as a
 * plugin's host does at the deadline.
 *
 * @module
 */

import type { InstrumentResult } from "../../src/instrument/instrument.ts";
import type { CallRequest } from "./_call_worker.ts";

/** How a call run by {@linkcode callAndInterrupt} ended. */
export interface InterruptedCall {
  /** The name of the error the call threw, or `null`. */
  readonly error: string | null;
  /** What the call returned. */
  readonly value: unknown;
  /** The trap reason after the call. */
  readonly reason: number;
  /** Fuel consumed (`0n` without fuel). */
  readonly consumed: bigint;
  /** Milliseconds from raising the flag to the call's end (negative when it ended first). */
  readonly afterFlag: number;
}

/**
 * Calls `name(...args)` in a worker and raises the flag `delayMs` after the
 * call starts.
 */
export async function callAndInterrupt(
  result: InstrumentResult,
  name: string,
  options: { args?: readonly unknown[]; delayMs: number; fuel?: bigint },
): Promise<InterruptedCall> {
  const worker = new Worker(new URL("./_call_worker.ts", import.meta.url), { type: "module" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    let raisedAt = Infinity;
    const done = new Promise<InterruptedCall>((resolve, reject) => {
      worker.onerror = (event) => reject(event.error ?? new Error(event.message));
      worker.onmessage = (event) => {
        const message = event.data;
        if (message.type === "ready") {
          const flag = new Int32Array(message.buffer as SharedArrayBuffer);
          timer = setTimeout(() => {
            raisedAt = performance.now();
            Atomics.store(flag, 0, 1);
          }, options.delayMs);
        } else {
          resolve({ ...message, afterFlag: performance.now() - raisedAt });
        }
      };
    });
    const request: CallRequest = {
      result,
      name,
      args: options.args ?? [],
      fuel: options.fuel ?? 0n,
    };
    worker.postMessage(request);
    return await done;
  } finally {
    clearTimeout(timer);
    worker.terminate();
  }
}

// Runs one export of an instrumented module in a worker, so that the test's
// main thread can ask it to stop (a shared flag the clock hook reads, as a
// plugin's worker reads its channel's stop signal) while it runs, and reports
// how the call ended and the fuel it consumed.
import { InstanceLimits, type InstrumentResult } from "../../src/instrument/instrument.ts";

/** What the test sends: the module, the export to call and its arguments. */
export interface CallRequest {
  readonly result: InstrumentResult;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly fuel: bigint;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent<CallRequest>) => void) | null;
  postMessage(message: unknown): void;
}

const scope = self as unknown as WorkerScope;
scope.onmessage = (event) => {
  const { result, name, args, fuel } = event.data;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const limits = new InstanceLimits(instance, result, {
    stopRequested: () => Atomics.load(flag, 0) !== 0,
  });
  limits.prepare({ fuel });
  scope.postMessage({ type: "ready", buffer: flag.buffer });
  let error: string | null = null;
  let value: unknown = undefined;
  try {
    value = (instance.exports[name] as (...a: unknown[]) => unknown)(...args);
  } catch (caught) {
    error = (caught as Error).name;
  }
  const consumed = fuel - limits.fuelRemaining;
  scope.postMessage({ type: "done", error, value, reason: limits.trapReason, consumed });
};

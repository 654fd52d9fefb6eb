// Runs an instrumented module's "spin" export in a worker, so that the test's
// main thread can ask it to stop (a shared flag the clock hook reads) while it runs.
import { InstanceLimits, type InstrumentResult } from "../../src/instrument/instrument.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<InstrumentResult>) => void) | null;
  postMessage(message: unknown): void;
}

const scope = self as unknown as WorkerScope;
scope.onmessage = (event) => {
  const result = event.data;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const limits = new InstanceLimits(instance, result, {
    stopRequested: () => Atomics.load(flag, 0) !== 0,
  });
  limits.prepare({ fuel: 1n << 60n });
  scope.postMessage({ type: "ready", buffer: flag.buffer });
  try {
    (instance.exports.spin as () => void)();
    scope.postMessage({ type: "done", error: null, reason: limits.trapReason });
  } catch (error) {
    scope.postMessage({ type: "done", error: (error as Error).name, reason: limits.trapReason });
  }
};

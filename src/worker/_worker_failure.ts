/**
 * How a plugin's worker reports its own failure: an uncaught exception or
 * an unhandled rejection in the worker (never the guest's doing: it is
 * wasmplug's code, or a fault a test injects) ends the worker. The worker
 * reports it itself, naming the plugin it served, and closes; Deno would
 * otherwise print it on the host's stderr, under the name the worker was
 * started with (its first plugin's, when a kept worker served others), and
 * the host would learn only its message.
 *
 * @module
 */

/**
 * What a worker posts when it fails and closes.
 *
 * @example
 * ```ts ignore
 * const failure: WorkerFailure = { failure: "Error: boom", stack: undefined, plugin: "beta" };
 * ```
 */
export interface WorkerFailure {
  /** The uncaught exception or rejection reason, as `String()` gives it. */
  readonly failure: string;
  /** Its stack, when it is an `Error`. */
  readonly stack: string | undefined;
  /** The plugin the worker served then (`""` between plugins). */
  readonly plugin: string;
}

/**
 * Calls `failed` with a description when `worker` fails: when it reports
 * its own failure, or when Deno reports an error the worker could not
 * (one while its script loads). Replaces the worker's `onmessage` and
 * `onerror`; `onReady`, when given, receives every other message.
 *
 * @example
 * ```ts ignore
 * onWorkerFailure(worker, (description) => console.error(`worker failed: ${description}`));
 * ```
 */
export function onWorkerFailure(
  worker: Worker,
  failed: (description: string, cause: Error | undefined) => void,
  onMessage?: (data: unknown) => void,
): void {
  worker.onmessage = (event: MessageEvent) => {
    const data = event.data as Partial<WorkerFailure> | null;
    if (typeof data?.failure !== "string") return onMessage?.(event.data);
    failed(describeFailure(data as WorkerFailure), causeOf(data as WorkerFailure));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failed(event.message, undefined);
  };
}

/**
 * Lets go of a worker's messages and errors (see {@linkcode onWorkerFailure}).
 *
 * @example
 * ```ts ignore
 * ignoreWorker(worker);
 * worker.terminate();
 * ```
 */
export function ignoreWorker(worker: Worker): void {
  worker.onmessage = null;
  worker.onerror = null;
}

/** `Uncaught <failure>`, and the plugin it happened in. */
function describeFailure({ failure, plugin }: WorkerFailure): string {
  return plugin === ""
    ? `Uncaught ${failure} (between plugins)`
    : `Uncaught ${failure} (while it served plugin "${plugin}")`;
}

/** The worker's exception, rebuilt with its stack, as the cause of the host's error. */
function causeOf({ failure, stack }: WorkerFailure): Error | undefined {
  if (stack === undefined) return undefined;
  const cause = new Error(failure);
  cause.stack = stack;
  return cause;
}

/**
 * Load for side-by-side measurement: child processes that each keep one core
 * busy, started and stopped around a measurement.
 *
 * ```ts ignore
 * await using _load = await startBusyCores(); // all cores but one
 * // … measure the "busy" condition …
 * ```
 *
 * Needs `--allow-run` (for `Deno.execPath()`) and `--allow-read`.
 *
 * @module
 */

/** Busy cores that stop (their processes are killed) when disposed. */
export interface BusyCores extends AsyncDisposable {
  /** How many processes spin. */
  readonly count: number;
  /** Kills the spinning processes and waits until they are gone; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `count` child processes, each spinning `for(;;){}` on a core of its
 * own (as the scheduler sees fit), and resolves once they all run.
 *
 * @param count How many cores to keep busy; default: all cores but one, at
 * least one.
 */
export async function startBusyCores(
  count: number = Math.max(1, navigator.hardwareConcurrency - 1),
): Promise<BusyCores> {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot start busy cores as 'count' must be a non-negative integer: current value is ${count}`,
    );
  }
  const children: Deno.ChildProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      children.push(
        new Deno.Command(Deno.execPath(), {
          // The child says when it spins, so that a measurement never starts
          // against a core still busy loading a runtime.
          args: ["eval", "console.log('spinning'); for (;;) {}"],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).spawn(),
      );
    }
    await Promise.all(children.map(untilSpinning));
  } catch (err) {
    await killAll(children);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => stopped ??= killAll(children);
  return { count, stop, [Symbol.asyncDispose]: stop };
}

/** Resolves when the child has printed its first line (and then stops reading). */
async function untilSpinning(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stdout.getReader();
  try {
    const { done } = await reader.read();
    if (done) throw new Error("A busy-core process ended before it started spinning");
  } finally {
    reader.releaseLock();
    await child.stdout.cancel();
  }
}

async function killAll(children: readonly Deno.ChildProcess[]): Promise<void> {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await Promise.all(children.map((child) => child.status));
}

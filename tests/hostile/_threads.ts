/**
 * The thread count of the test process, to prove that a stopped guest left
 * no thread behind.
 *
 * @module
 */

/**
 * How many threads this process has. Deno asks for `--allow-all` to read
 * `/proc/self`, so another process lists them (the test needs `run: ["ls"]`).
 */
export async function threads(): Promise<number> {
  const { stdout } = await new Deno.Command("ls", { args: [`/proc/${Deno.pid}/task`] }).output();
  return new TextDecoder().decode(stdout).trim().split(/\s+/).length;
}

/** Waits until the process has at most `count` threads (workers end asynchronously). */
export async function settleThreads(count: number): Promise<number> {
  const end = performance.now() + 3_000;
  let now = await threads();
  while (now > count && performance.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    now = await threads();
  }
  return now;
}

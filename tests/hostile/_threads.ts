/**
 * What a stopped guest may leave behind: threads of the test process, and a
 * process that cannot exit.
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

/**
 * Runs `script` in a new Deno process (`deno eval`, worker options on, no
 * prompts) and returns its trimmed stdout once it exited by itself with code
 * 0. Fails when it is still alive after 15 s: something (a blocked worker
 * thread) kept it from exiting.
 */
export async function runToExit(script: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-worker-options", "--no-prompt", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.output(),
    new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 15_000)),
  ]);
  clearTimeout(timer);
  if (exited === undefined) {
    child.kill("SIGKILL");
    await child.output();
    throw new Error("The process did not exit within 15 s of close()");
  }
  const stderr = new TextDecoder().decode(exited.stderr);
  if (exited.code !== 0) throw new Error(`The process exited with ${exited.code}: ${stderr}`);
  return new TextDecoder().decode(exited.stdout).trim();
}

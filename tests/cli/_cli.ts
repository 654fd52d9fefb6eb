/**
 * Runs the CLI for the tests: in this process through `runCli()` with
 * collectors, or as a real `deno run` of `cli.ts` with the Deno flags a test
 * names.
 *
 * @module
 */

import { runCli } from "../../cli.ts";
import { DENO, textOf } from "../_helpers.ts";

/** What one run of the CLI printed, and its exit code. */
export interface CliOutput {
  readonly code: number;
  /** Standard output as text (lines and raw bytes, in the order written). */
  readonly stdout: string;
  /** Standard output as bytes. */
  readonly stdoutBytes: Uint8Array;
  readonly stderr: string;
}

/** Options of {@linkcode cli} and {@linkcode denoCli}. */
export interface CliOptions {
  /** What the CLI reads as standard input. */
  readonly stdin?: Uint8Array | string;
}

const encoder = new TextEncoder();

function bytesOfInput(stdin: Uint8Array | string | undefined): Uint8Array {
  return typeof stdin === "string" ? encoder.encode(stdin) : stdin ?? new Uint8Array();
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Runs `wasmplug <args>` in this process, collecting what it writes. */
export async function cli(args: readonly string[], options: CliOptions = {}): Promise<CliOutput> {
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  const code = await runCli(args, {
    stdout: (line) => stdout.push(encoder.encode(`${line}\n`)),
    stderr: (line) => stderr.push(encoder.encode(`${line}\n`)),
    writeStdout: (bytes) => stdout.push(bytes.slice()),
    writeStderr: (bytes) => stderr.push(bytes.slice()),
    readStdin: () => Promise.resolve(bytesOfInput(options.stdin)),
  });
  const stdoutBytes = concat(stdout);
  return { code, stdout: textOf(stdoutBytes), stdoutBytes, stderr: textOf(concat(stderr)) };
}

/** The repository's root, where the CLI's subprocesses run. */
export const ROOT: URL = new URL("../../", import.meta.url);

/**
 * Runs `deno run <denoFlags> cli.ts <args>` from the repository's root, as a
 * user would.
 */
export async function denoCli(
  denoFlags: readonly string[],
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliOutput> {
  const child = new Deno.Command(DENO, {
    args: ["run", ...denoFlags, "cli.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  // The CLI may exit before it reads all of it (a refusal): the pipe breaks then.
  await writer.write(bytesOfInput(options.stdin)).then(() => writer.close()).catch(() => {});
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: textOf(stdout), stdoutBytes: stdout, stderr: textOf(stderr) };
}

/** Everything a run printed, for assertion messages. */
export function shown(output: CliOutput): string {
  return `exit ${output.code}\nstdout:\n${output.stdout}\nstderr:\n${output.stderr}`;
}

/**
 * Whether Deno runs with `--unstable-worker-options`, without which a worker
 * cannot be given narrower permissions than the host. Deno offers no API for
 * it and ends the process (exit code 70, with a message naming the flag) when
 * a worker asks for permissions without it, so this looks at the command line
 * and the nearest `deno.json`. Deno lets a program read its command line
 * (`/proc/self/cmdline`) only with `--allow-all`: with fewer permissions the
 * answer is `"unknown"`.
 *
 * @module
 */

/** What could be found out. */
export type WorkerOptionsState = "enabled" | "disabled" | "unknown";

const FLAG = "--unstable-worker-options";

/** Deno options whose value is the next argument (when not given as `--option=value`). */
const VALUE_OPTIONS: ReadonlySet<string> = new Set([
  "-c",
  "--config",
  "--ext",
  "--import-map",
  "--node-modules-linker",
  "--cert",
  "--min-dep-age",
  "--inspect-publish-uid",
  "--location",
  "--seed",
  "--preload",
  "--require",
  "--conditions",
  "--filter",
  "--coverage-threshold",
  "--reporter",
  "--junit-path",
  "--retry",
  "--repeats",
  "--shard",
  "--related",
]);

/** Subcommands that run code; `deno main.ts` is short for `deno run main.ts`. */
const RUN_COMMANDS: ReadonlySet<string> = new Set(["run", "serve", "eval", "repl", "jupyter"]);

/** Subcommands whose positional arguments are all files of Deno's (script arguments follow `--`). */
const FILE_LIST_COMMANDS: ReadonlySet<string> = new Set(["test", "bench", "check", "cache"]);

function readable(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

/** The process's arguments, where the platform shows them and permissions allow (Linux). */
function commandLine(): string[] | undefined {
  if (Deno.build.os !== "linux" || !readable("/proc/self/cmdline")) return undefined;
  try {
    const args = Deno.readTextFileSync("/proc/self/cmdline").split("\u0000");
    if (args.at(-1) === "") args.pop();
    return args;
  } catch {
    return undefined;
  }
}

/**
 * The options Deno itself received, with their values: those before the
 * script (`deno run --flag main.ts --not-deno's`), or before `--` for
 * commands that take a list of files.
 */
export function denoOptions(args: readonly string[]): string[] {
  const options: string[] = [];
  const command = args[1];
  const fileList = command !== undefined && FILE_LIST_COMMANDS.has(command);
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    if (arg.startsWith("-")) {
      options.push(arg);
      if (VALUE_OPTIONS.has(arg) && i + 1 < args.length) options.push(args[++i]!);
      continue;
    }
    // The subcommand, a file of `deno test`, or the script: after the script, arguments are its own.
    if (fileList || (i === 1 && RUN_COMMANDS.has(arg))) continue;
    break;
  }
  return options;
}

/** Whether a config file's text lists `"worker-options"` among its unstable features. */
function listsWorkerOptions(text: string): boolean {
  return /"unstable"\s*:\s*\[[^\]]*"worker-options"/.test(text);
}

/** The config file named on the command line (`--config`), `null` for `--no-config`. */
function configOption(options: readonly string[]): string | null | undefined {
  if (options.includes("--no-config")) return null;
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    if (option === "-c" || option === "--config") return options[i + 1];
    if (option.startsWith("--config=")) return option.slice("--config=".length);
    if (option.startsWith("-c=")) return option.slice("-c=".length);
  }
  return undefined;
}

/** What the config file Deno uses says; `undefined` when it cannot be found out. */
function configEnables(options: readonly string[] | undefined): boolean | undefined {
  const named = options === undefined ? undefined : configOption(options);
  if (named === null) return false;
  let dir: string;
  try {
    if (Deno.permissions.querySync({ name: "read" }).state !== "granted") return undefined;
    if (named !== undefined) return listsWorkerOptions(Deno.readTextFileSync(named));
    dir = Deno.cwd();
  } catch {
    return undefined;
  }
  for (let i = 0; i < 32; i++) {
    for (const file of ["deno.json", "deno.jsonc"]) {
      try {
        return listsWorkerOptions(Deno.readTextFileSync(`${dir}/${file}`));
      } catch {
        // not here; look in the parent
      }
    }
    const parent = dir.replace(/[\\/][^\\/]*$/, "");
    if (parent === dir || parent === "") break;
    dir = parent;
  }
  return undefined;
}

/**
 * Detects `--unstable-worker-options` (or `"unstable": ["worker-options"]` in
 * the config file Deno uses: the nearest `deno.json`, the one `--config`
 * names, none with `--no-config`). Deno 2 dropped the catch-all `--unstable`,
 * so it does not count.
 */
export function detectWorkerOptions(): WorkerOptionsState {
  // A `deno compile` binary keeps the flags it was compiled with out of its command line.
  if ((Deno.build as { standalone?: boolean }).standalone === true) return "unknown";
  const args = commandLine();
  const options = args === undefined ? undefined : denoOptions(args);
  if (options?.includes(FLAG)) return "enabled";
  if (configEnables(options) === true) return "enabled";
  return args === undefined ? "unknown" : "disabled";
}

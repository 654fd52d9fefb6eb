/**
 * Whether Deno runs with `--unstable-worker-options`, without which a worker
 * cannot be given narrower permissions than the host. Deno 2.9 offers no API
 * for it and ends the process (exit code 70, with a message naming the flag)
 * when a worker asks for permissions without it, so this looks at what can be
 * read without asking anyone:
 *
 * - the command line (`/proc/self/cmdline`), which Deno lets a program read
 *   only with `--allow-all`;
 * - the `unstable` list of the config file Deno uses: the one `--config`
 *   names, none with `--no-config`, else the nearest `deno.json(c)` above the
 *   main module (`deno run`) or the working directory (`deno test`), or the
 *   root of the workspace it is a member of.
 *
 * Nothing here prompts: a path is read only when Deno already grants it. A
 * wrong "enabled" would let Deno end the process, so the answer is
 * `"enabled"` only on positive evidence, and `"unknown"` whenever a step
 * cannot be taken (a file that cannot be read, a command line that cannot be
 * seen, a `deno compile` binary). Two setups can still mislead it, both with
 * the command line hidden: a `deno.json` that enables worker options while
 * Deno was told to ignore it (`--no-config`, `--config`), and one that is a
 * member of a workspace whose root, in a folder that cannot be read, does
 * not enable them (Deno warns that a member's `unstable` list is ignored).
 *
 * @module
 */

/** What could be found out. */
export type WorkerOptionsState = "enabled" | "disabled" | "unknown";

/**
 * What detection may look at; tests pass their own. Every member reports
 * `undefined` for what it cannot tell without a prompt.
 */
export interface DetectionProbe {
  /** The process's arguments (`deno`, its subcommand, options, …). */
  commandLine(): readonly string[] | undefined;
  /** A file's text, `null` when it does not exist. */
  readText(path: string): string | null | undefined;
  /** The working directory. */
  readonly cwd: string | undefined;
  /** The main module's URL. */
  readonly mainModule: string | undefined;
  /** Whether this is a `deno compile` binary (its flags are not on its command line). */
  readonly standalone: boolean;
}

const FLAG = "--unstable-worker-options";
const FEATURE = "worker-options";
const CONFIG_FILES = ["deno.json", "deno.jsonc"];
/** How many folders up a config file is looked for. */
const MAX_DEPTH = 64;

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

/** Subcommands that find their config file from the main module's folder, not the working one. */
const MAIN_MODULE_COMMANDS: ReadonlySet<string> = new Set(["run", "serve"]);

/**
 * The options Deno itself received, with their values: those before the
 * script (`deno run --flag main.ts --not-deno's`), or before `--` for
 * commands that take a list of files.
 *
 * @param args The whole command line, `deno` first.
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

/** The subcommand of a command line; `deno [options] main.ts` is `run`. */
function subcommand(args: readonly string[]): string {
  const first = args[1];
  return first !== undefined && /^[a-z]+$/.test(first) ? first : "run";
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

/**
 * Parses JSON with comments and trailing commas (what `deno.jsonc` allows);
 * `undefined` when it is not that.
 */
export function parseJsonc(text: string): unknown {
  let plain = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '"') {
      const end = stringEnd(text, i);
      plain += text.slice(i, end);
      i = end - 1;
    } else if (char === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      plain += "\n";
    } else if (char === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end === -1) return undefined;
      plain += " ";
      i = end + 1;
    } else {
      plain += char;
    }
  }
  try {
    return JSON.parse(plain.replace(/,(\s*[\]}])/g, "$1"));
  } catch {
    return undefined;
  }
}

/** The index just past the JSON string starting at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}

/** A parsed config file. */
interface Config {
  readonly dir: string;
  readonly unstable: readonly unknown[] | undefined;
  readonly workspace: readonly string[] | undefined;
}

function parseConfig(path: string, text: string): Config | undefined {
  const value = parseJsonc(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { unstable, workspace } = value as Record<string, unknown>;
  const members = Array.isArray(workspace)
    ? workspace
    : (workspace as { members?: unknown } | undefined)?.members;
  return {
    dir: parentOf(path) ?? path,
    unstable: Array.isArray(unstable) ? unstable : undefined,
    workspace: Array.isArray(members)
      ? members.filter((member): member is string => typeof member === "string")
      : undefined,
  };
}

function separatorOf(path: string): string {
  return path.includes("\\") && !path.includes("/") ? "\\" : "/";
}

function join(dir: string, name: string): string {
  const separator = separatorOf(dir);
  return dir.endsWith(separator) ? dir + name : dir + separator + name;
}

/** The folder above `path`, `undefined` at the root. */
function parentOf(path: string): string | undefined {
  const trimmed = path.length > 1 ? path.replace(/[\\/]+$/, "") : path;
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  if (cut < 0) return undefined;
  const parent = cut === 0 ? trimmed.slice(0, 1) : trimmed.slice(0, cut);
  // `C:` alone is not a folder: keep its separator.
  const root = /^[A-Za-z]:$/.test(parent) ? parent + trimmed[cut] : parent;
  return root === trimmed ? undefined : root;
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:[\\/]/.test(path);
}

/** A path without `.` and `..` components. */
function normalize(path: string): string {
  const separator = separatorOf(path);
  const parts: string[] = [];
  for (const part of path.split(/[\\/]+/)) {
    if (part === "." || (part === "" && parts.length > 0)) continue;
    if (part === ".." && parts.length > 1) parts.pop();
    else if (part !== "..") parts.push(part);
  }
  return parts.length === 1 && parts[0] === "" ? separator : parts.join(separator);
}

/** The folder of a `file:` URL, `undefined` for other URLs. */
function folderOfFileUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "file:") return undefined;
  let path = decodeURIComponent(parsed.pathname);
  if (/^\/[A-Za-z]:\//.test(path)) path = path.slice(1).replaceAll("/", "\\");
  return parentOf(path);
}

/**
 * The nearest config file at or above `dir`; `null` when there is none,
 * `undefined` when a folder on the way cannot be read.
 */
function nearestConfig(probe: DetectionProbe, dir: string): Config | null | undefined {
  let current: string | undefined = dir;
  for (let depth = 0; current !== undefined && depth < MAX_DEPTH; depth++) {
    for (const name of CONFIG_FILES) {
      const path = join(current, name);
      const text = probe.readText(path);
      if (text === undefined) return undefined;
      if (text !== null) return parseConfig(path, text);
    }
    current = parentOf(current);
  }
  return current === undefined ? null : undefined;
}

/** Whether `config` is a member of the workspace whose root is `root`. */
function isMember(root: Config, config: Config): boolean {
  const separator = separatorOf(root.dir);
  return (root.workspace ?? []).some((member) => {
    const path = normalize(join(root.dir, member.replace(/[\\/]\*$/, "")));
    if (member.endsWith("*")) return parentOf(config.dir) === path;
    return path === config.dir || path + separator === config.dir;
  });
}

/**
 * What the config file Deno finds from `dir` says: the `unstable` list of
 * the workspace root when the nearest config is a member (Deno ignores a
 * member's own list), else the nearest config's list. `undefined` when it
 * cannot be found out.
 */
function configFoundFrom(probe: DetectionProbe, dir: string): boolean | undefined {
  const config = nearestConfig(probe, dir);
  if (config === undefined) return undefined;
  if (config === null) return false;
  const own = config.unstable?.includes(FEATURE) ?? false;
  if (config.workspace !== undefined) return own;
  const above = parentOf(config.dir);
  const root = above === undefined ? null : nearestConfig(probe, above);
  if (root !== undefined && root !== null && isMember(root, config)) {
    return root.unstable?.includes(FEATURE) ?? false;
  }
  // Folders above that cannot be read may hold a workspace root that enables worker options.
  // One that would disable them for a config that enables them is taken to be absent: Deno
  // warns about a member's own `unstable` list, so such a setup does not go unnoticed.
  return root === undefined && !own ? undefined : own;
}

/** What the config file named with `--config` says. */
function configAt(probe: DetectionProbe, path: string): boolean | undefined {
  const cwd = probe.cwd;
  if (!isAbsolute(path) && cwd === undefined) return undefined;
  const absolute = normalize(isAbsolute(path) ? path : join(cwd!, path));
  const text = probe.readText(absolute);
  if (text === undefined || text === null) return undefined;
  const config = parseConfig(absolute, text);
  return config === undefined ? undefined : config.unstable?.includes(FEATURE) ?? false;
}

/**
 * Detects `--unstable-worker-options` (or `"unstable": ["worker-options"]` in
 * the config file Deno uses). Deno 2 dropped the catch-all `--unstable`, so it
 * does not count.
 *
 * @param probe What to look at; by default this process (see {@linkcode processProbe}).
 */
export function detectWorkerOptions(probe: DetectionProbe = processProbe()): WorkerOptionsState {
  if (probe.standalone) return "unknown";
  const args = probe.commandLine();
  if (args === undefined) {
    // Without the command line, the config Deno uses is not known either: the flag is on only
    // when every candidate (`deno run` looks above the main module, `deno test` above the
    // working directory) enables it, and no `--no-config` can be ruled out. Worth it: a
    // `deno.json` that enables worker options is a statement of intent.
    const candidates = [probe.cwd, folderOfFileUrl(probe.mainModule ?? "")];
    const found = candidates.filter((dir) => dir !== undefined)
      .map((dir) => configFoundFrom(probe, dir));
    return found.length > 0 && found.every((enabled) => enabled === true) ? "enabled" : "unknown";
  }
  const options = denoOptions(args);
  if (options.includes(FLAG)) return "enabled";
  const named = configOption(options);
  let enabled: boolean | undefined;
  if (named === null) enabled = false;
  else if (named !== undefined) enabled = configAt(probe, named);
  else {
    const dir = MAIN_MODULE_COMMANDS.has(subcommand(args))
      ? folderOfFileUrl(probe.mainModule ?? "") ?? probe.cwd
      : probe.cwd;
    enabled = dir === undefined ? undefined : configFoundFrom(probe, dir);
  }
  if (enabled === undefined) return "unknown";
  return enabled ? "enabled" : "disabled";
}

/** Whether Deno grants reading `path` now, without asking anyone. */
function readable(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

/** Whether every permission is granted, as with `--allow-all`. */
function allGranted(): boolean {
  const names = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;
  try {
    return names.every((name) => Deno.permissions.querySync({ name }).state === "granted");
  } catch {
    return false;
  }
}

/**
 * This process, as far as it can be seen without a prompt. Deno lets a
 * program read its command line (Linux's `/proc/self/cmdline`) only with
 * `--allow-all`.
 */
export function processProbe(): DetectionProbe {
  let cwd: string | undefined;
  try {
    cwd = Deno.cwd();
  } catch {
    cwd = undefined;
  }
  return {
    commandLine(): readonly string[] | undefined {
      if (Deno.build.os !== "linux" || !allGranted()) return undefined;
      try {
        const args = Deno.readTextFileSync("/proc/self/cmdline").split("\u0000");
        if (args.at(-1) === "") args.pop();
        return args;
      } catch {
        return undefined;
      }
    },
    readText(path: string): string | null | undefined {
      if (!readable(path)) return undefined;
      try {
        return Deno.readTextFileSync(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        // A folder of that name, or one that cannot be read: Deno would not use it as a config.
        return err instanceof Deno.errors.IsADirectory ? null : undefined;
      }
    },
    cwd,
    mainModule: Deno.mainModule,
    standalone: (Deno.build as { standalone?: boolean }).standalone === true,
  };
}

/**
 * Found out as this module loads, with the process's own permissions: later,
 * code may run with fewer (a `deno test` case's `permissions`), and the
 * answer must not depend on which code asked first.
 */
const processState: WorkerOptionsState = detectWorkerOptions();

/** {@linkcode detectWorkerOptions} of this process, found out as wasmplug loaded. */
export function workerOptionsOfProcess(): WorkerOptionsState {
  return processState;
}

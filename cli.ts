/**
 * The wasmplug command line: inspect a module, call one of its functions
 * under limits and capabilities (with numbers, bytes or JSON), run a WASI
 * command, or time repeated calls.
 *
 * ```sh
 * alias wasmplug='deno run --unstable-worker-options --allow-read=. jsr:@wasmplug/wasmplug/cli'
 * wasmplug inspect plugin.wasm
 * wasmplug call math.wat sub -3 4 --worker-permissions narrow
 * wasmplug call plugin.wasm handle --json --input '{"n": 1}' --worker-permissions narrow
 * wasmplug help call
 * ```
 *
 * Plugins run in worker isolation unless `--isolation inline` is given, as
 * in the library. Each worker then gets only its capabilities' Deno
 * permissions when Deno runs with `--unstable-worker-options` and wasmplug
 * can tell (from a readable `deno.json` that enables it, or
 * `--worker-permissions narrow`); otherwise workers share the CLI's
 * permissions, and plugins that need some (`run --dir`) are refused.
 * `wasmplug help <command>` (or `wasmplug <command> --help`) lists a
 * command's options with their defaults.
 *
 * Exit codes:
 * - 0: success; for `run`, the guest's own exit code instead;
 * - 1: plugin error: `error: <kind>: <message>` on stderr, with the stack
 *   trace only under `--debug`; or a file it cannot read (`error: <message>`);
 * - 2: bad usage: a one-line error and the command's usage on stderr.
 *
 * @example Run the CLI from code
 * ```ts ignore
 * import { runCli } from "@wasmplug/wasmplug/cli";
 * const exitCode = await runCli(["call", "math.wat", "add", "10", "5"]);
 * ```
 *
 * @module
 */

import { configure, defaultTextFormatter, type LogRecord } from "@logtape/logtape";
import denoJson from "./deno.json" with { type: "json" };
import {
  Capability,
  CompilationError,
  type CompiledModule,
  type DashboardServer,
  DEFAULT_LIMITS,
  type ExecutionConfig,
  type Isolation,
  type ModuleItem,
  PluginManager,
  type ResourceLimits,
  WasmError,
  WasmRuntime,
} from "./mod.ts";

/**
 * Where the CLI writes, and where it reads standard input from; tests pass
 * collectors.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "@wasmplug/wasmplug/cli";
 * const lines: string[] = [];
 * const code = await runCli(["--version"], {
 *   stdout: (line) => lines.push(line),
 *   stderr: (line) => lines.push(line),
 *   writeStdout: () => {},
 *   writeStderr: () => {},
 *   readStdin: () => Promise.resolve(new Uint8Array()),
 * });
 * ```
 */
export interface CliIo {
  /** Standard output, one line per call. */
  stdout: (line: string) => void;
  /** Standard error, one line per call. */
  stderr: (line: string) => void;
  /** Raw bytes to standard output (a WASI command's output, a bytes-ABI call's output). */
  writeStdout: (bytes: Uint8Array) => void;
  /** Raw bytes to standard error. */
  writeStderr: (bytes: Uint8Array) => void;
  /**
   * Standard input, read to its end (a WASI command's stdin, `--input-file -`).
   *
   * @default {Deno's standard input; nothing when it is a terminal}
   */
  readStdin?: () => Promise<Uint8Array>;
}

function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
  } catch (err) {
    // Whoever read it went away (`| head`): the rest is not wanted, and the exit code stays.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

/** The most standard input or input file a command reads: it is read whole before the guest starts. */
const MAX_INPUT_BYTES = 64 * 1024 * 1024;
/** The largest module file a command reads (V8 compiles modules of up to 1 GiB). */
const MAX_MODULE_BYTES = 256 * 1024 * 1024;

/** Reads `stream` whole, refusing more than `max` bytes (`what` names it in the refusal). */
async function readBounded(
  stream: ReadableStream<Uint8Array>,
  max: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += chunk.length;
    if (length > max) {
      await stream.cancel().catch(() => {});
      throw new Error(
        `${what} holds more than ${
          max / 1024 / 1024
        } MiB: it is read whole before the guest starts`,
      );
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

async function readDenoStdin(): Promise<Uint8Array> {
  if (Deno.stdin.isTerminal()) return new Uint8Array();
  return await readBounded(Deno.stdin.readable, MAX_INPUT_BYTES, "standard input");
}

/**
 * Reads a file given on the command line, at most `max` bytes of it (a
 * pipe such as `<(yes)` or `/dev/zero` has no end: it was read until the
 * process ran out of memory).
 */
async function readFileArgument(path: string, max: number): Promise<Uint8Array> {
  const file = await Deno.open(path);
  try {
    if ((await file.stat()).isDirectory) throw new Error(`${path} is a folder, not a file`);
    return await readBounded(file.readable, max, path);
  } finally {
    try {
      file.close();
    } catch {
      // closed by its stream already
    }
  }
}

const CONSOLE_IO: CliIo = {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
  writeStdout: (bytes) => writeAll(Deno.stdout, bytes),
  writeStderr: (bytes) => writeAll(Deno.stderr, bytes),
  readStdin: readDenoStdin,
};

/** A failure of the command line itself (exit code 2). */
class UsageError extends Error {}

/** What to print after an error, on a line of its own: how the user may fix it. */
const HINTS = new WeakMap<Error, string>();

// ---------------------------------------------------------------------------
// Commands and their options: the help is generated from these tables.

/** One `--option` of a command. */
interface OptionSpec {
  /** The long name, without the dashes. */
  readonly name: string;
  /** The one-letter alias, without the dash. */
  readonly short?: string;
  /** The placeholder of its value (`<n>`); a flag without value when absent. */
  readonly value?: string;
  /** Whether it may be given more than once. */
  readonly multiple?: boolean;
  readonly description: string;
  /** The default, as the help shows it. */
  readonly default?: string;
}

/** What a command receives: its positional arguments and its options. */
interface ParsedArgs {
  readonly positionals: readonly string[];
  /** Every value of each option given (an empty list for a flag). */
  readonly options: ReadonlyMap<string, readonly string[]>;
}

/** One command of the CLI. */
interface CommandSpec {
  readonly name: string;
  /** Its positional arguments, as the usage shows them. */
  readonly arguments: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Other forms of the usage line, after the first. */
  readonly forms?: readonly string[];
  /** Paragraphs between the usage and the options. */
  readonly notes?: readonly string[];
  readonly options: readonly OptionSpec[];
  readonly execute: (args: ParsedArgs, io: CliIo) => Promise<number>;
}

const COMMON_OPTIONS: readonly OptionSpec[] = [
  { name: "help", short: "h", description: "Show this help" },
  { name: "debug", description: "Print the stack trace of an error" },
];

const ISOLATION_OPTION: OptionSpec = {
  name: "isolation",
  value: "<worker|inline>",
  description: "worker: the plugin in its own Deno Worker; inline: on the CLI's thread, " +
    "for trusted code only",
  default: "worker",
};

const WORKER_PERMISSIONS_OPTION: OptionSpec = {
  name: "worker-permissions",
  value: "<narrow|inherit>",
  description: "narrow: each plugin worker gets only its capabilities' Deno permissions (needs " +
    "Deno's --unstable-worker-options); inherit: workers share the CLI's permissions, and " +
    "plugins needing any (run --dir) are refused",
  default: "narrow when wasmplug sees Deno's flag on the command line or in a readable " +
    "deno.json, else inherit",
};

const LIMIT_OPTIONS: readonly OptionSpec[] = [
  {
    name: "max-fuel",
    value: "<n|none>",
    description: "Instruction budget of the call; none: no budget (fuel is still counted)",
    default: String(DEFAULT_LIMITS.maxFuel),
  },
  {
    name: "timeout",
    value: "<ms>",
    description: "Wall-clock limit of the call, in milliseconds",
    default: String(DEFAULT_LIMITS.maxExecutionTimeMs),
  },
  {
    name: "max-memory-pages",
    value: "<n>",
    description: "64 KiB pages the plugin's memories may hold in total",
    default: String(DEFAULT_LIMITS.maxMemoryPages),
  },
  {
    name: "max-call-depth",
    value: "<n>",
    description: "Nesting depth of wasm calls",
    default: String(DEFAULT_LIMITS.maxCallDepth),
  },
  {
    name: "max-table-elements",
    value: "<n>",
    description: "Elements the plugin's tables may hold in total (large C++ programs need more)",
    default: String(DEFAULT_LIMITS.maxTableElements),
  },
];

const INSPECT: CommandSpec = {
  name: "inspect",
  arguments: "<file.wasm|file.wat>",
  summary: "List a module's imports, exports, memories, tables and the capabilities it needs",
  notes: ["Compiles the module and runs none of its code. Deno permissions: read the file."],
  options: [{ name: "json", description: "Print the report as JSON" }],
  execute: inspect,
};

const CALL: CommandSpec = {
  name: "call",
  arguments: "<file> <function> [args…]",
  summary: "Call an export with numbers, bytes or JSON, under limits and capabilities",
  forms: ["call <file> <function> (--input <text> | --input-file <path>) [--json]"],
  notes: [
    "Numeric arguments take the type of the export's parameters: i64 ones are exact integers, " +
    "and negative numbers are arguments, not options (call math.wat sub -3 4). The results " +
    "are printed on one line, separated by spaces.",
    "With --input or --input-file, the function is called through the bytes ABI " +
    "(fn(ptr, len) -> i64 packed (out_ptr << 32) | out_len; the module exports alloc) and " +
    "its output bytes are written to stdout as they are. --json makes both sides JSON.",
    "Deno permissions: read the file (and --input-file). In worker isolation, Deno's " +
    "--unstable-worker-options (or a deno.json enabling it) lets each worker have none of " +
    "them: see --worker-permissions.",
  ],
  options: [
    {
      name: "input",
      value: "<text>",
      description: "Call through the bytes ABI with this UTF-8 text as the input",
    },
    {
      name: "input-file",
      value: "<path>",
      description: 'Call through the bytes ABI with this file\'s bytes ("-" reads stdin)',
    },
    {
      name: "json",
      description: "Without an input, print { results, metrics? } as JSON; with one, parse the " +
        "input as JSON, call through callJson and print its output as JSON",
    },
    {
      name: "cap",
      value: "<name>",
      multiple: true,
      description: `Grant a capability (repeatable): ${Object.values(Capability).join(", ")}`,
      default: "none",
    },
    {
      name: "config",
      value: "<key=value>",
      multiple: true,
      description: "Set an entry of the plugin's config, which host_get_config reads " +
        "(repeatable); the plugin reads it only with --cap read_config",
    },
    ...LIMIT_OPTIONS,
    ISOLATION_OPTION,
    WORKER_PERMISSIONS_OPTION,
    {
      name: "metrics",
      description: "Print the plugin's metrics after the result (on stderr with an input)",
    },
  ],
  execute: call,
};

const RUN: CommandSpec = {
  name: "run",
  arguments: "<file> [args…] [-- args…]",
  summary:
    "Run a WASI command: stdin, stdout and stderr pass through (at most 1 MiB of output each), and its exit code is the CLI's",
  notes: [
    "Grants the command wasi, random and timer; --dir also grants filesystem, limited to the " +
    "given directories: the command may read them and write only the :rw ones, in either " +
    "isolation (in a worker, these are also its only Deno permissions). " +
    "Arguments for the guest that start with a dash go after --.",
    "Deno permissions: read the file; --allow-read of each --dir (and --allow-write of each " +
    ":rw one). In worker isolation, a --dir needs Deno's --unstable-worker-options (or a " +
    "deno.json enabling it), seen by wasmplug: see --worker-permissions.",
  ],
  options: [
    {
      name: "dir",
      value: "<host>[:<guest>][:rw]",
      multiple: true,
      description: "Preopen a host directory as <guest> (the same path when absent), " +
        "read-only, or read-write with :rw (repeatable)",
    },
    {
      name: "env",
      value: "<key=value>",
      multiple: true,
      description: "Set an environment variable of the guest (repeatable)",
    },
    {
      name: "max-open-files",
      value: "<n>",
      description:
        "Descriptors the command may have open at once, stdio and --dirs included (default 256, at most 4096)",
    },
    ...LIMIT_OPTIONS,
    ISOLATION_OPTION,
    WORKER_PERMISSIONS_OPTION,
  ],
  execute: run,
};

const BENCH: CommandSpec = {
  name: "bench",
  arguments: "<file> <function> [args…]",
  summary: "Time repeated calls of an export and print their latency percentiles",
  notes: ["Deno permissions: as for call."],
  options: [
    {
      name: "iterations",
      value: "<n>",
      description: "Number of calls to time",
      default: "10000",
    },
    ISOLATION_OPTION,
    WORKER_PERMISSIONS_OPTION,
    { name: "json", description: "Print the summary as JSON" },
  ],
  execute: bench,
};

/** The port `serve` listens on without `--port`: the dashboard's own default. */
const DEFAULT_PORT = 8787;

const SERVE: CommandSpec = {
  name: "serve",
  arguments: "<file>…",
  summary: "Load plugins and serve their live dashboard, Prometheus metrics and events",
  notes: [
    "Loads every file as a plugin of one manager and serves, until Ctrl-C (SIGINT) or SIGTERM: " +
    "/ the live dashboard, /events its Server-Sent Events, /metrics the Prometheus text " +
    "format, /api/plugins JSON. Prints the URL on stdout once listening.",
    "Deno permissions: read the files, --allow-net for the address (127.0.0.1 by default).",
  ],
  options: [
    {
      name: "port",
      value: "<n>",
      description: "The TCP port; 0 picks a free one",
      default: String(DEFAULT_PORT),
    },
    {
      name: "hostname",
      value: "<address>",
      description: "The address to listen on",
      default: "127.0.0.1",
    },
    {
      name: "cap",
      value: "<name>",
      multiple: true,
      description: "Grant a capability to every plugin (repeatable)",
      default: "none",
    },
    ...LIMIT_OPTIONS,
    ISOLATION_OPTION,
    WORKER_PERMISSIONS_OPTION,
  ],
  execute: serve,
};

const HELP: CommandSpec = {
  name: "help",
  arguments: "[command]",
  summary: "Show the usage of the CLI, or of one command with its options and defaults",
  options: [],
  execute: help,
};

/** Every command, in the order the usage lists them. */
const COMMANDS: readonly CommandSpec[] = [INSPECT, CALL, RUN, BENCH, SERVE, HELP];

const EXIT_CODES = "Exit codes: 0 success (run: the guest's exit code), 1 plugin error (or a " +
  "file it cannot read), 2 bad usage.";

/** The usage of the whole CLI. */
function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length + 2));
  const lines = [
    `wasmplug ${denoJson.version} — run WebAssembly plugins in a sandbox`,
    "",
    "Usage:",
    ...COMMANDS.map((command) => `  wasmplug ${command.name} ${command.arguments} [options]`),
    "  wasmplug --help | --version",
    "",
    "Commands:",
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`),
    "",
    "Options:",
    "  -h, --help     Show this help; after a command, the command's help",
    "  -V, --version  Show the version",
    "  --debug        Print the stack trace of an error",
    "",
    EXIT_CODES,
    'Run "wasmplug help <command>" for the options of a command.',
  ];
  return lines.join("\n");
}

/** The usage lines of one command, for a usage error. */
function shortUsage(command: CommandSpec): string {
  return [
    `Usage: wasmplug ${command.name} ${command.arguments} [options]`,
    ...(command.forms ?? []).map((form) => `       wasmplug ${form} [options]`),
    `Run "wasmplug help ${command.name}" for its options.`,
  ].join("\n");
}

/** The usage of one command, with every option and its default. */
function commandUsage(command: CommandSpec): string {
  const options = [...command.options, ...COMMON_OPTIONS];
  const left = options.map((option) => {
    const names = option.short === undefined
      ? `--${option.name}`
      : `-${option.short}, --${option.name}`;
    return option.value === undefined ? names : `${names} ${option.value}`;
  });
  const width = Math.max(...left.map((text) => text.length)) + 2;
  const lines = [
    ...shortUsage(command).split("\n").slice(0, -1),
    "",
    `${command.summary}.`,
  ];
  for (const note of command.notes ?? []) lines.push("", ...wrap(note, 100));
  lines.push("", "Options:");
  options.forEach((option, i) => {
    // A no-break space keeps "(default:" on the line of its value.
    const text = option.default === undefined
      ? option.description
      : `${option.description} (default:\u00a0${option.default})`;
    const [first = "", ...more] = wrap(text, 100 - width - 2).map((line) =>
      line.replaceAll("\u00a0", " ")
    );
    lines.push(`  ${left[i]!.padEnd(width)}${first}`);
    for (const line of more) lines.push(`  ${" ".repeat(width)}${line}`);
  });
  lines.push("", EXIT_CODES);
  return lines.join("\n");
}

/** Splits `text` into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

// ---------------------------------------------------------------------------
// Parsing the command line.

/** A negative number is an argument, not an option: `-3`, `-1.5`, `-.5`, `-Infinity`, `-inf`, `-nan`. */
const NEGATIVE_NUMBER = /^-(?:\d|\.\d|(?:inf|infinity|nan)$)/i;

function looksLikeOption(arg: string): boolean {
  return arg.startsWith("-") && arg !== "-" && !NEGATIVE_NUMBER.test(arg);
}

/** Whether `args` ask for help before any `--`. */
function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === "--help" || arg === "-h");
}

/**
 * Splits a command's arguments into positionals and options: `--name value`,
 * `--name=value`, flags, `-h`; everything after `--` is positional.
 */
function parseCommandArgs(command: CommandSpec, args: readonly string[]): ParsedArgs {
  const specs = [...command.options, ...COMMON_OPTIONS];
  const positionals: string[] = [];
  const options = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!looksLikeOption(arg)) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, equals === -1 ? undefined : equals) : arg;
    const spec = specs.find((option) =>
      arg.startsWith("--") ? option.name === name : `-${option.short}` === name
    );
    if (spec === undefined) {
      throw new UsageError(
        `unknown option "${arg.startsWith("--") ? `--${name}` : arg}" for ${command.name}`,
      );
    }
    if (spec.value === undefined) {
      if (equals !== -1) throw new UsageError(`--${spec.name} takes no value`);
      options.set(spec.name, []);
      continue;
    }
    let value: string;
    if (equals !== -1) {
      value = arg.slice(equals + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined || looksLikeOption(next)) {
        throw new UsageError(
          `--${spec.name} needs a value ${spec.value} (write --${spec.name}=<value> for one that starts with "-")`,
        );
      }
      value = next;
      i++;
    }
    options.set(spec.name, spec.multiple ? [...(options.get(spec.name) ?? []), value] : [value]);
  }
  return { positionals, options };
}

function flag(args: ParsedArgs, name: string): boolean {
  return args.options.has(name);
}

function option(args: ParsedArgs, name: string): string | undefined {
  return args.options.get(name)?.at(-1);
}

function list(args: ParsedArgs, name: string): readonly string[] {
  return args.options.get(name) ?? [];
}

// ---------------------------------------------------------------------------
// Running the CLI.

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "@wasmplug/wasmplug/cli";
 * Deno.exit(await runCli(Deno.args));
 * ```
 *
 * @param args The command-line arguments.
 * @param io Where to write output and read input.
 * @returns The process exit code: 0 success (for `run`, the guest's exit code), 1 plugin error, 2 bad usage.
 */
export async function runCli(args: readonly string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const end = args.indexOf("--");
  const debug = (end === -1 ? args : args.slice(0, end)).includes("--debug");
  let command: CommandSpec | undefined;
  try {
    let at = 0;
    for (; at < args.length && looksLikeOption(args[at]!); at++) {
      const arg = args[at]!;
      if (arg === "--help" || arg === "-h") {
        io.stdout(usage());
        return 0;
      }
      if (arg === "--version" || arg === "-V") {
        io.stdout(`wasmplug ${denoJson.version}`);
        return 0;
      }
      if (arg !== "--debug") throw new UsageError(`unknown option "${arg}"`);
    }
    const name = args[at];
    if (name === undefined) throw new UsageError("no command given");
    command = COMMANDS.find((candidate) => candidate.name === name);
    if (command === undefined) throw new UsageError(`unknown command "${name}"`);
    const rest = args.slice(at + 1);
    if (asksForHelp(rest)) {
      io.stdout(commandUsage(command));
      return 0;
    }
    return await command.execute(parseCommandArgs(command, rest), io);
  } catch (err) {
    return report(err, { io, debug, command });
  }
}

/** Writes an error to stderr and returns its exit code. */
function report(
  err: unknown,
  { io, debug, command }: { io: CliIo; debug: boolean; command: CommandSpec | undefined },
): number {
  if (err instanceof UsageError) {
    // It may quote a file's name or bytes, or an argument: escaped as any text not ours.
    io.stderr(`error: ${printable(err.message)}`);
    io.stderr(command === undefined || command === HELP ? usage() : shortUsage(command));
    return 2;
  }
  const message = err instanceof WasmError
    ? `${err.kind}: ${err.message}`
    : err instanceof Error
    ? err.message
    : String(err);
  // A guest's text may be part of it (a trap's, a host_set_error message): escaped, on one line,
  // so that it cannot print lines of its own. A compile error keeps its lines, indented.
  io.stderr(
    `error: ${
      err instanceof CompilationError
        ? printable(message, true).replaceAll("\n", "\n  ")
        : printable(message)
    }`,
  );
  const hint = (err instanceof Error ? HINTS.get(err) : undefined) ?? limitHint(err, command);
  if (hint !== undefined) io.stderr(`hint: ${hint}`);
  if (debug && err instanceof Error) io.stderr(printableStack(err));
  return 1;
}

/** The flag that raises the limit `err` hit, if `command` takes the limit flags. */
function limitHint(err: unknown, command: CommandSpec | undefined): string | undefined {
  if (!(err instanceof WasmError) || command?.options.includes(LIMIT_OPTIONS[0]!) !== true) {
    return undefined;
  }
  // A limit the start function hit is the cause of the load's error.
  if (err.kind === "instantiation" && err.cause instanceof WasmError) err = err.cause;
  if (!(err instanceof WasmError)) return undefined;
  const flag = err.kind === "fuel_exhausted"
    ? "--max-fuel <n|none>"
    : err.kind === "timeout"
    ? "--timeout <ms>"
    : err.kind === "call_depth_exceeded"
    ? "--max-call-depth <n>"
    : err.kind === "resource_limit" && "limit" in err && err.limit === "maxTableElements"
    ? "--max-table-elements <n>"
    : err.kind === "resource_limit" && "limit" in err && err.limit === "maxMemoryPages"
    ? "--max-memory-pages <n>"
    : err.kind === "out_of_memory" && err.message.includes("maxMemoryPages")
    ? "--max-memory-pages <n>"
    : undefined;
  return flag === undefined ? undefined : `a larger limit may be given with ${flag}`;
}

function help(args: ParsedArgs, io: CliIo): Promise<number> {
  const [name, extra] = args.positionals;
  if (extra !== undefined) throw new UsageError("help takes at most one command");
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (name !== undefined && command === undefined) {
    throw new UsageError(`unknown command "${name}"`);
  }
  io.stdout(command === undefined ? usage() : commandUsage(command));
  return Promise.resolve(0);
}

// ---------------------------------------------------------------------------
// Shared by the commands.

async function compileFile(runtime: WasmRuntime, file: string): Promise<CompiledModule> {
  const name = file.split(Deno.build.os === "windows" ? /[\\/]/ : "/").pop()!
    .replace(/\.(wasm|wat)$/, "");
  const bytes = await readFileArgument(file, MAX_MODULE_BYTES);
  // A binary module is one whatever its name; text goes as bytes, as wat2wasm reads it.
  const binary = bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!binary && (file.endsWith(".wat") || looksLikeWat(bytes))) {
    return await runtime.compileWat(name, bytes);
  }
  try {
    return await runtime.compile(name, bytes);
  } catch (err) {
    // Which file it was, as a WAT error says (a serve or a load may name several).
    if (!(err instanceof CompilationError)) throw err;
    throw new CompilationError(`${file}: ${err.message}`, {
      ...(err.offset === undefined ? {} : { offset: err.offset }),
      cause: err,
    });
  }
}

/** Whether `bytes` are WAT text rather than a binary (which starts with "\0asm"): a `(` or `;` first. */
function looksLikeWat(bytes: Uint8Array): boolean {
  // A byte order mark may come first.
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (const byte of bytes.subarray(start)) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x28 || byte === 0x3b;
  }
  return false;
}

function positiveInteger(
  args: ParsedArgs,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = option(args, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${name} must be a positive integer, received "${raw}"`);
  }
  if (value > max) throw new UsageError(`--${name} must be at most ${max}, received "${raw}"`);
  return value;
}

function isolationOf(args: ParsedArgs): Isolation {
  const isolation = option(args, "isolation") ?? "worker";
  if (isolation !== "inline" && isolation !== "worker") {
    throw new UsageError(`--isolation must be "worker" or "inline", received "${isolation}"`);
  }
  return isolation;
}

/** The runtime's `execution` options from `--isolation` and `--worker-permissions`. */
function executionOf(args: ParsedArgs): ExecutionConfig & { isolation: Isolation } {
  const isolation = isolationOf(args);
  const mode = option(args, "worker-permissions");
  if (mode === undefined) return { isolation };
  if (mode !== "narrow" && mode !== "inherit") {
    throw new UsageError(
      `--worker-permissions must be "narrow" or "inherit", received "${mode}"`,
    );
  }
  return { isolation, workerPermissions: mode };
}

/** A runtime for `execution`; options this process cannot honour are bad usage. */
function openRuntime(execution: ExecutionConfig): WasmRuntime {
  try {
    return new WasmRuntime({ execution });
  } catch (err) {
    // `--worker-permissions narrow` where wasmplug knows the flag is off.
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Rethrows an error of `runtime.createPlugin()`; one refusing a worker the
 * runtime cannot narrow gets a hint on how to tell the CLI that Deno has the flag.
 */
function hintWorkerPermissions(err: unknown): never {
  if (
    err instanceof WasmError && err.kind === "instantiation" &&
    err.message.includes("--unstable-worker-options")
  ) {
    HINTS.set(
      err,
      "when Deno runs with --unstable-worker-options, add --worker-permissions narrow " +
        "(wasmplug sees the flag only when it may read the command line or deno.json)",
    );
  }
  throw err;
}

const CAPABILITIES: readonly string[] = Object.values(Capability);

/** The capabilities of `--cap`, each once; an unknown one is bad usage. */
function capabilitiesOf(args: ParsedArgs): Capability[] {
  const names = list(args, "cap");
  for (const name of names) {
    if (!CAPABILITIES.includes(name)) {
      throw new UsageError(
        `Cannot grant capability ${JSON.stringify(name)}: expected one of ${
          CAPABILITIES.join(", ")
        }`,
      );
    }
  }
  return [...new Set(names as Capability[])];
}

function limitsOf(args: ParsedArgs): Partial<ResourceLimits> {
  const limits: { -readonly [K in keyof ResourceLimits]?: ResourceLimits[K] } = {};
  const fuel = option(args, "max-fuel") === "none" ? null : positiveInteger(args, "max-fuel");
  const timeout = positiveInteger(args, "timeout");
  // A 32-bit memory has at most 65 536 pages (4 GiB).
  const pages = positiveInteger(args, "max-memory-pages", 65_536);
  // The guest counts its depth in an i32.
  const depth = positiveInteger(args, "max-call-depth", 0x7fff_ffff);
  // A table's size is an i32 (a 64-bit table's beyond what V8 makes).
  const elements = positiveInteger(args, "max-table-elements", 0xffff_ffff);
  if (fuel !== undefined) limits.maxFuel = fuel;
  if (timeout !== undefined) limits.maxExecutionTimeMs = timeout;
  if (pages !== undefined) limits.maxMemoryPages = pages;
  if (depth !== undefined) limits.maxCallDepth = depth;
  if (elements !== undefined) limits.maxTableElements = elements;
  return limits;
}

/** `KEY=VALUE` pairs as a record; `what` names the option in errors. */
function keyValues(pairs: readonly string[], what: string): Record<string, string> {
  const entries = new Map<string, string>();
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at < 1) throw new UsageError(`${what} must be KEY=VALUE, received "${pair}"`);
    entries.set(pair.slice(0, at), pair.slice(at + 1));
  }
  // Own properties for every key, `__proto__` included.
  return Object.fromEntries(entries);
}

/** Parses the arguments of a call after the types of the export's parameters. */
function argumentsFor(
  compiled: CompiledModule,
  fn: string,
  raw: readonly string[],
): unknown[] {
  const exported = compiled.exports.find((item) => item.name === fn && item.kind === "function");
  const params = exported?.params ?? [];
  return raw.map((text, i) => parseArgument(text, params[i]));
}

/**
 * An integer argument as `BigInt()` reads it (decimal, `0x`, `0o`, `0b`), the
 * same for i32 and i64: `1e3` is not one.
 */
function integerArgument(raw: string): bigint {
  // BigInt("") and BigInt(" ") are 0n.
  if (raw.trim() === "") throw new UsageError(`argument "${raw}" is not an integer`);
  try {
    return BigInt(raw);
  } catch {
    throw new UsageError(`argument "${raw}" is not an integer`);
  }
}

function parseArgument(raw: string, type: string | undefined): unknown {
  if (type === "i64") {
    const value = integerArgument(raw);
    // As the runtime takes an i64: signed or unsigned (it failed as a call, exit 1).
    if (value < -(1n << 63n) || value >= 1n << 64n) {
      throw new UsageError(`argument "${raw}" is out of range for an i64 (-2^63 to 2^64-1)`);
    }
    return value;
  }
  if ((type === "f32" || type === "f64") && NON_FINITE.test(raw)) {
    // What C's printf writes and strtod reads: `nan`, `inf`, `-infinity`, any case.
    const [, sign, word] = NON_FINITE.exec(raw)!;
    if (word!.toLowerCase() === "nan") return NaN;
    return sign === "-" ? -Infinity : Infinity;
  }
  const value = Number(raw);
  if (raw.trim() === "" || Number.isNaN(value)) {
    throw new UsageError(`argument "${raw}" is not a number`);
  }
  if (type !== "i32") return value;
  const integer = integerArgument(raw);
  if (integer < -(1n << 31n) || integer >= 1n << 32n) {
    throw new UsageError(`argument "${raw}" is out of range for an i32 (-2^31 to 2^32-1)`);
  }
  return Number(integer);
}

/** A float argument that `Number()` does not read: NaN and infinities as C writes them. */
const NON_FINITE = /^([+-]?)(nan|inf|infinity)$/i;

/** A result as `call` prints it: as `String()` does, but with the sign of -0 kept. */
function formatResult(result: unknown): string {
  return Object.is(result, -0) ? "-0" : String(result);
}

/**
 * Keeps in JSON what it has no number for: a bigint (exact, as a string),
 * NaN or an infinity (as `"NaN"`, `"Infinity"`, `"-Infinity"`: `null` said
 * nothing of which) and -0 (`"-0"`: JSON.stringify writes 0).
 */
function bigintReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && (!Number.isFinite(value) || Object.is(value, -0))) {
    return formatResult(value);
  }
  return value;
}

// ---------------------------------------------------------------------------
// inspect

/** The capability a function import needs, as `inspect` reports it; `undefined` for others. */
function importCapability(item: ModuleItem): string | undefined {
  return item.capability === undefined ? undefined : item.capability ?? "(none)";
}

function describeLimits(
  limits: { min: number; max: number | null; shared: boolean },
): string {
  return `min ${limits.min}, max ${limits.max ?? "none"}${limits.shared ? ", shared" : ""}`;
}

async function inspect(args: ParsedArgs, io: CliIo): Promise<number> {
  const [file, extra] = args.positionals;
  if (file === undefined) throw new UsageError("inspect needs a file");
  if (extra !== undefined) throw new UsageError(`inspect takes one file, received "${extra}" too`);
  // Nothing runs: the runtime only compiles, so it needs no worker.
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await compileFile(runtime, file);
  const report = {
    name: compiled.name,
    sizeBytes: compiled.sizeBytes,
    sha256: compiled.hash,
    imports: compiled.imports.map((item) => ({ ...item, capability: importCapability(item) })),
    exports: compiled.exports,
    memories: compiled.memories.map((memory) => ({
      index: memory.index,
      imported: memory.imported,
      exportNames: memory.exportNames,
      limits: describeLimits({ min: memory.minPages, max: memory.maxPages, shared: memory.shared }),
    })),
    tables: compiled.tables.map((table) => ({
      index: table.index,
      imported: table.imported,
      exportNames: table.exportNames,
      refType: table.elementType,
      limits: describeLimits({ min: table.minElements, max: table.maxElements, shared: false }),
    })),
    customSections: compiled.customSections,
    manifest: compiled.manifest,
    capabilitiesNeeded: [
      ...new Set(
        compiled.imports.flatMap((item) =>
          // WASI's random_get needs `random` too (see the README's WASI commands).
          item.capability === Capability.Wasi && item.name === "random_get"
            ? [Capability.Wasi, Capability.Random]
            : item.capability ?? []
        ),
      ),
    ],
  };
  if (flag(args, "json")) {
    // JSON escapes C0 controls but not C1 ones or bidi overrides: those too, still JSON.
    io.stdout(printable(JSON.stringify(report, bigintReplacer, 2), true));
    return 0;
  }
  io.stdout(`${shownName(report.name)}: ${report.sizeBytes} bytes, sha256 ${report.sha256}`);
  io.stdout(`imports (${report.imports.length}):`);
  for (const item of report.imports) {
    const needs = item.capability === undefined ? "" : `  [${item.capability}]`;
    io.stdout(
      `  ${shownName(item.module ?? "")}.${shownName(item.name)}: ${signature(item)}${needs}`,
    );
  }
  io.stdout(`exports (${report.exports.length}):`);
  for (const item of report.exports) io.stdout(`  ${shownName(item.name)}: ${signature(item)}`);
  for (const memory of report.memories) {
    const names = memory.exportNames.length > 0
      ? ` exported as ${memory.exportNames.map((name) => shownName(name)).join(", ")}`
      : "";
    const imported = memory.imported ? " (imported)" : "";
    io.stdout(`memory ${memory.index}${imported}: ${memory.limits} pages${names}`);
  }
  for (const table of report.tables) {
    const imported = table.imported ? " (imported)" : "";
    io.stdout(`table ${table.index}${imported}: ${table.refType}, ${table.limits}`);
  }
  for (const section of report.customSections) {
    io.stdout(`custom section "${shownName(section.name)}": ${section.sizeBytes} bytes`);
  }
  if (report.manifest !== null) {
    io.stdout(`manifest: ${printable(JSON.stringify(report.manifest))}`);
  }
  io.stdout(`capabilities needed: ${report.capabilitiesNeeded.join(", ") || "none"}`);
  return 0;
}

/**
 * A name or text the module chose, as a terminal may show it: control
 * characters (which could move the cursor, erase lines and print others in
 * their place), line breaks, marks changing direction and characters a
 * reader does not see (zero-width, invisible fillers, tags, variation
 * selectors: the set the library escapes in its messages) escaped as
 * `\uXXXX`. `keepLines` keeps line feeds and tabs (for error messages).
 */
function printable(text: string, keepLines = false): string {
  return text.replace(HIDDEN, (char) => {
    if (keepLines && (char === "\n" || char === "\t")) return char;
    let escaped = "";
    for (let i = 0; i < char.length; i++) {
      escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`;
    }
    return escaped;
  });
}

/** What {@linkcode printable} escapes (lone surrogates too: a terminal cannot show them). */
const HIDDEN =
  // deno-lint-ignore no-control-regex -- the control characters are what it escapes
  /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffd\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}\ud800-\udfff]/gu;

/** The longest name `inspect` prints whole; a longer one is cut and says how long it is. */
const MAX_SHOWN_NAME = 256;

/** A name the module chose, {@linkcode printable} and cut at {@linkcode MAX_SHOWN_NAME}. */
function shownName(name: string): string {
  if (name.length <= MAX_SHOWN_NAME) return printable(name);
  const cut = name.slice(0, MAX_SHOWN_NAME).replace(/[\ud800-\udbff]$/, "");
  return `${printable(cut)}… (${name.length} characters)`;
}

/**
 * An error's stack as `--debug` prints it: its first line (name and message,
 * which may hold a guest's text) escaped whole, its frames on their lines.
 */
function printableStack(err: Error): string {
  const stack = String(err.stack ?? "");
  const head = `${err.name}: ${err.message}`;
  if (!stack.startsWith(head)) return printable(stack, true);
  return printable(head) + printable(stack.slice(head.length), true);
}

function signature(item: Pick<ModuleItem, "kind" | "params" | "results">): string {
  if (item.kind !== "function") return item.kind;
  return `func (${item.params?.join(", ")}) -> (${item.results?.join(", ")})`;
}

// ---------------------------------------------------------------------------
// call

/** The input of a bytes-ABI call, from `--input` or `--input-file`. */
interface CallInput {
  readonly bytes: Uint8Array;
  /** How the input was given, for error messages. */
  readonly source: string;
}

async function inputOf(args: ParsedArgs, io: CliIo): Promise<CallInput | undefined> {
  const text = option(args, "input");
  const path = option(args, "input-file");
  if (text !== undefined && path !== undefined) {
    throw new UsageError("give either --input or --input-file, not both");
  }
  if (text !== undefined) return { bytes: new TextEncoder().encode(text), source: "--input" };
  if (path === undefined) return undefined;
  const bytes = path === "-"
    ? await (io.readStdin ?? readDenoStdin)()
    : await readFileArgument(path, MAX_INPUT_BYTES);
  return { bytes, source: path === "-" ? "stdin" : path };
}

/** The input parsed as JSON; invalid JSON is bad usage. */
function jsonInput({ bytes, source }: CallInput): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    const reason = err instanceof SyntaxError ? err.message : "it is not UTF-8";
    throw new UsageError(`${source} is not valid JSON: ${reason.replaceAll("\n", " ")}`);
  }
}

async function call(args: ParsedArgs, io: CliIo): Promise<number> {
  const [file, fn, ...rawArgs] = args.positionals;
  if (file === undefined || fn === undefined) {
    throw new UsageError("call needs a file and a function name");
  }
  const input = await inputOf(args, io);
  if (input !== undefined && rawArgs.length > 0) {
    throw new UsageError(
      `call takes either numeric arguments or an input, received both ("${rawArgs[0]}")`,
    );
  }
  const json = flag(args, "json");
  const value = input !== undefined && json ? jsonInput(input) : undefined;
  const capabilities = capabilitiesOf(args);
  const config = keyValues(list(args, "config"), "--config");
  const resourceLimits = limitsOf(args);

  await using runtime = openRuntime(executionOf(args));
  const compiled = await compileFile(runtime, file);
  const callArgs = argumentsFor(compiled, fn, rawArgs);
  if (Object.keys(config).length > 0 && !capabilities.includes(Capability.ReadConfig)) {
    const reads = compiled.imports.some((item) =>
      item.module === "env" && item.name === "host_get_config"
    );
    if (reads) {
      io.stderr(
        "hint: the plugin reads --config through host_get_config, which needs --cap read_config",
      );
    }
  }
  await using plugin = await runtime
    .createPlugin(compiled, { name: compiled.name, capabilities, resourceLimits, config })
    .catch(hintWorkerPermissions);
  await plugin.initialize();
  if (input === undefined) {
    const results = await plugin.call(fn, callArgs);
    const metrics = flag(args, "metrics") ? await plugin.metrics() : undefined;
    if (json) {
      io.stdout(JSON.stringify({ results, ...(metrics ? { metrics } : {}) }, bigintReplacer, 2));
      return 0;
    }
    io.stdout(results.map(formatResult).join(" "));
    if (metrics) printMetrics(metrics, io.stdout);
    return 0;
  }
  if (json) {
    // The plugin's text: JSON escapes C0 controls but not C1 ones or bidi overrides.
    io.stdout(printable(JSON.stringify(await plugin.callJson(fn, value), null, 2), true));
  } else {
    io.writeStdout(await plugin.callBytes(fn, input.bytes));
  }
  // Stdout holds the plugin's output alone.
  if (flag(args, "metrics")) printMetrics(await plugin.metrics(), io.stderr);
  return 0;
}

function printMetrics(metrics: object, print: (line: string) => void): void {
  for (const [key, value] of Object.entries(metrics)) print(`${key}: ${String(value)}`);
}

// ---------------------------------------------------------------------------
// run

/** A `--dir` option: the host directory, where the guest sees it, and whether it may write. */
interface Preopen {
  readonly host: string;
  readonly guest: string;
  readonly writable: boolean;
}

function parseDir(spec: string): Preopen {
  const parts = spec.split(":");
  const mode = parts.length > 1 && (parts.at(-1) === "ro" || parts.at(-1) === "rw")
    ? parts.pop()
    : "ro";
  const [host = "", guest = host, extra] = parts;
  if (host === "" || guest === "" || extra !== undefined) {
    throw new UsageError(`--dir must be <host>[:<guest>][:rw], received "${spec}"`);
  }
  return { host, guest, writable: mode === "rw" };
}

/**
 * Refuses `--dir`s that name one guest path twice (the last one won, the
 * first kept its permissions), and those this process may not read, or
 * write when `:rw`: inline, the command started and its writes failed
 * with the guest's exit code; in a worker, the load failed.
 */
function checkDirs(dirs: readonly Preopen[]): void {
  const guests = new Set<string>();
  for (const { host, guest, writable } of dirs) {
    const path = guest.replace(/(?<=.)\/+$/, ""); // "/data/" is "/data"
    if (guests.has(path)) throw new UsageError(`--dir names the guest path "${path}" twice`);
    guests.add(path);
    for (const name of writable ? ["read", "write"] as const : ["read"] as const) {
      if (Deno.permissions.querySync({ name, path: host }).state !== "granted") {
        throw new UsageError(
          `--dir ${host}${writable ? ":rw" : ""} needs --allow-${name}=${host} for deno`,
        );
      }
    }
  }
}

/**
 * Runs a WASI command: stdin passes through, its stdout and stderr are
 * written out, and its exit code becomes the CLI's.
 */
async function run(args: ParsedArgs, io: CliIo): Promise<number> {
  const [file, ...guestArgs] = args.positionals;
  if (file === undefined) throw new UsageError("run needs a file");
  const dirs = list(args, "dir").map(parseDir);
  checkDirs(dirs);
  const env = keyValues(list(args, "env"), "--env");
  const resourceLimits = limitsOf(args);
  const capabilities: Capability[] = [Capability.Wasi, Capability.Random, Capability.Timer];
  if (dirs.length > 0) capabilities.push(Capability.FileSystem);
  const execution = executionOf(args);
  const maxOpenFiles = positiveInteger(args, "max-open-files", 4096);
  if (maxOpenFiles !== undefined && maxOpenFiles < 3 + dirs.length) {
    throw new UsageError(
      `--max-open-files must leave room for stdio and the ${dirs.length} --dir: at least ${
        3 + dirs.length
      }, received ${maxOpenFiles}`,
    );
  }
  await using runtime = openRuntime(execution);
  const compiled = await compileFile(runtime, file);
  await using command = await runtime.createPlugin(compiled, {
    name: compiled.name,
    capabilities,
    resourceLimits,
    wasi: {
      args: guestArgs,
      env,
      preopens: Object.fromEntries(dirs.map((dir) => [dir.guest, dir.host])),
      ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
    },
    // In worker isolation, exactly these become the worker's Deno permissions; in both,
    // WASI changes nothing outside the :rw ones.
    allowedPaths: {
      read: dirs.map((dir) => dir.host),
      write: dirs.filter((dir) => dir.writable).map((dir) => dir.host),
    },
  }).catch(hintWorkerPermissions);
  const stdin = await (io.readStdin ?? readDenoStdin)();
  const result = await command.run({ stdin }).catch((err) => {
    // What the command wrote before it failed comes first, then the error.
    if (err instanceof WasmError && err.output !== undefined) writeOutput(io, err.output, true);
    throw err;
  });
  writeOutput(io, result, result.outputTruncated);
  // A process exit code is a byte: 256 would read as a success.
  return result.exitCode > 255 ? 255 : result.exitCode;
}

/**
 * Writes a command's streams, and a warning if they were cut; `more`: a
 * line follows on stderr (the warning, an error), so it starts a line of its own.
 */
function writeOutput(io: CliIo, output: NonNullable<WasmError["output"]>, more: boolean): void {
  io.writeStdout(output.stdout);
  io.writeStderr(output.stderr);
  const last = output.stderr.at(-1);
  if (more && last !== undefined && last !== 0x0a) io.writeStderr(new Uint8Array([0x0a]));
  if (output.outputTruncated) {
    io.stderr("warning: the command's output was cut: a run keeps at most 1 MiB of each stream");
  }
}

// ---------------------------------------------------------------------------
// bench

async function bench(args: ParsedArgs, io: CliIo): Promise<number> {
  const [file, fn, ...rawArgs] = args.positionals;
  if (file === undefined || fn === undefined) {
    throw new UsageError("bench needs a file and a function name");
  }
  // Each iteration keeps a sample of 8 bytes: at most 100 million (800 MB).
  const iterations = positiveInteger(args, "iterations", 100_000_000) ?? 10_000;
  const execution = executionOf(args);
  const isolation = execution.isolation;
  await using runtime = openRuntime(execution);
  const compiled = await compileFile(runtime, file);
  const callArgs = argumentsFor(compiled, fn, rawArgs);
  await using plugin = await runtime.createPlugin(compiled, { name: compiled.name })
    .catch(hintWorkerPermissions);
  await plugin.initialize();
  const progress = progressBar(iterations);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await plugin.call(fn, callArgs);
    samples[i] = performance.now() - start;
    progress.update(i + 1);
  }
  progress.done();
  samples.sort();
  const at = (q: number): number =>
    samples[Math.min(iterations - 1, Math.floor(q * iterations))]! * 1000;
  const total = samples.reduce((sum, value) => sum + value, 0);
  const summary = {
    function: fn,
    isolation,
    iterations,
    meanUs: (total / iterations) * 1000,
    p50Us: at(0.5),
    p99Us: at(0.99),
    minUs: samples[0]! * 1000,
    maxUs: samples[iterations - 1]! * 1000,
    callsPerSecond: iterations / (total / 1000),
  };
  if (flag(args, "json")) {
    io.stdout(JSON.stringify(summary, null, 2));
    return 0;
  }
  io.stdout(`| ${fn} (${isolation}) | µs per call |`);
  io.stdout("|---|---:|");
  for (const key of ["meanUs", "p50Us", "p99Us", "minUs", "maxUs"] as const) {
    io.stdout(`| ${key.replace("Us", "")} | ${summary[key].toFixed(2)} |`);
  }
  io.stdout(`${Math.round(summary.callsPerSecond)} calls/s over ${iterations} calls`);
  return 0;
}

/** A progress bar on stderr, drawn only when stderr is a terminal. */
function progressBar(total: number): { update(done: number): void; done(): void } {
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let last = -1;
  const draw = (done: number): void => {
    const percent = Math.floor((done / total) * 100);
    if (!tty || percent === last) return;
    last = percent;
    const filled = Math.round(percent / 5);
    Deno.stderr.writeSync(
      encoder.encode(`\r[${"#".repeat(filled)}${" ".repeat(20 - filled)}] ${percent}%`),
    );
  };
  return {
    update: draw,
    done: () => {
      if (tty) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    },
  };
}

/** Log records go to stderr: stdout holds results and a plugin's output alone. */
function stderrSink(record: LogRecord): void {
  // A guest's log text is in it: what a terminal would act on is escaped (one line a record).
  const line = printable(defaultTextFormatter(record).replace(/\n$/, ""));
  writeAll(Deno.stderr, new TextEncoder().encode(`${line}\n`));
}

if (import.meta.main) {
  await configure({
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["wasmplug"], lowestLevel: "info", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
  Deno.exit(await runCli(Deno.args));
}

// ---------------------------------------------------------------------------
// serve

/** `serve()` whose refusal of its options (a `TypeError` or `RangeError`) is a usage error. */
function serveOrUsage(serve: () => DashboardServer): DashboardServer {
  try {
    return serve();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
}

async function serve(args: ParsedArgs, io: CliIo): Promise<number> {
  const files = args.positionals;
  if (files.length === 0) throw new UsageError("serve needs at least one file");
  const rawPort = option(args, "port") ?? String(DEFAULT_PORT);
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65_535) {
    throw new UsageError(`--port must be an integer from 0 to 65535, received "${rawPort}"`);
  }
  const hostname = option(args, "hostname") ?? "127.0.0.1";
  if (hostname.trim() === "") throw new UsageError(`--hostname must name a host, received ""`);
  const capabilities = capabilitiesOf(args);
  const resourceLimits = limitsOf(args);

  await using runtime = openRuntime(executionOf(args));
  await using manager = new PluginManager(runtime);
  for (const file of files) {
    const compiled = await compileFile(runtime, file);
    await manager.load(compiled, { name: compiled.name, capabilities, resourceLimits })
      .catch(hintWorkerPermissions);
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    await using server = serveOrUsage(() => manager.serve({ port, hostname, signal: stop.signal }));
    io.stdout(`Serving the dashboard of ${files.length} plugin(s) at ${server.url}`);
    await server.finished;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  return 0;
}

/**
 * The wasmplug command line: inspect a module, or call one of its functions
 * under limits and capabilities.
 *
 * ```sh
 * deno run --allow-read jsr:@wasmplug/wasmplug/cli inspect plugin.wasm
 * deno run --allow-read jsr:@wasmplug/wasmplug/cli call math.wat add 10 5 --metrics
 * ```
 *
 * Exit codes: 0 success, 1 plugin error (its kind and message on stderr),
 * 2 bad usage (a one-line error and the usage on stderr).
 *
 * @example Run the CLI from code
 * ```ts ignore
 * import { runCli } from "@wasmplug/wasmplug/cli";
 * const exitCode = await runCli(["call", "math.wat", "add", "10", "5"]);
 * ```
 *
 * @module
 */

import { configure, getConsoleSink } from "@logtape/logtape";
import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import {
  type Capability,
  type CompiledModule,
  parseCapabilities,
  type ResourceLimits,
  WasmError,
  WasmRuntime,
} from "./mod.ts";

const USAGE = `wasmplug ${denoJson.version} — run WebAssembly plugins in a sandbox

Usage:
  wasmplug inspect <file.wasm|file.wat> [--json]
  wasmplug call <file> <function> [args…] [--cap <name>]… [--max-fuel <n>] [--timeout <ms>]
                [--max-memory-pages <n>] [--max-call-depth <n>] [--isolation inline] [--json] [--metrics]
  wasmplug --help | --version

Options:
  -h, --help     Show this help
  -V, --version  Show the version
  --debug        Print stack traces of errors`;

/** A failure of the command line itself (exit code 2). */
class UsageError extends Error {}

/** Where the CLI writes; tests pass collectors. */
export interface CliIo {
  /** Standard output, one line per call. */
  stdout: (line: string) => void;
  /** Standard error, one line per call. */
  stderr: (line: string) => void;
}

const CONSOLE_IO: CliIo = {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
};

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
 * @param io Where to write output.
 * @returns The process exit code.
 */
export async function runCli(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  let debug = args.includes("--debug");
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        debug: { type: "boolean" },
        json: { type: "boolean" },
        metrics: { type: "boolean" },
        cap: { type: "string", multiple: true },
        "max-fuel": { type: "string" },
        timeout: { type: "string" },
        "max-memory-pages": { type: "string" },
        "max-call-depth": { type: "string" },
        isolation: { type: "string" },
      },
    });
    debug = values.debug ?? false;
    if (values.version) {
      io.stdout(`wasmplug ${denoJson.version}`);
      return 0;
    }
    const [command, file, ...rest] = positionals;
    if (values.help || command === undefined) {
      io.stdout(USAGE);
      return values.help ? 0 : 2;
    }
    switch (command) {
      case "inspect":
        if (file === undefined) throw new UsageError("inspect needs a file");
        return await inspect(file, values.json ?? false, io);
      case "call": {
        const [fn, ...callArgs] = rest;
        if (file === undefined || fn === undefined) {
          throw new UsageError("call needs a file and a function name");
        }
        return await call(file, fn, callArgs, values, io);
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr(`error: ${(err as Error).message}`);
      io.stderr(USAGE);
      return 2;
    }
    if (err instanceof WasmError) {
      io.stderr(`error: ${err.kind}: ${err.message}`);
      if (debug) io.stderr(err.stack ?? "");
      return 1;
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (debug && err instanceof Error) io.stderr(err.stack ?? "");
    return 1;
  }
}

function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError && "code" in err &&
    String((err as { code: unknown }).code).startsWith("ERR_PARSE_ARGS");
}

async function compileFile(runtime: WasmRuntime, file: string): Promise<CompiledModule> {
  const name = file.split(/[\\/]/).pop()!.replace(/\.(wasm|wat)$/, "");
  if (file.endsWith(".wat")) return await runtime.compileWat(name, await Deno.readTextFile(file));
  return await runtime.compile(name, await Deno.readFile(file));
}

async function inspect(file: string, json: boolean, io: CliIo): Promise<number> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await compileFile(runtime, file);
  const report = {
    name: compiled.name,
    sizeBytes: compiled.sizeBytes,
    sha256: compiled.hash,
    imports: compiled.imports,
    exports: compiled.exports,
  };
  if (json) {
    io.stdout(JSON.stringify(report, null, 2));
    return 0;
  }
  io.stdout(`${report.name}: ${report.sizeBytes} bytes, sha256 ${report.sha256}`);
  io.stdout(`imports (${report.imports.length}):`);
  for (const item of report.imports) io.stdout(`  ${item.module}.${item.name}: ${signature(item)}`);
  io.stdout(`exports (${report.exports.length}):`);
  for (const item of report.exports) io.stdout(`  ${item.name}: ${signature(item)}`);
  return 0;
}

function signature(item: CompiledModule["exports"][number]): string {
  if (item.kind !== "function") return item.kind;
  return `func (${item.params?.join(", ")}) -> (${item.results?.join(", ")})`;
}

interface CallFlags {
  json?: boolean;
  metrics?: boolean;
  cap?: string[];
  "max-fuel"?: string;
  timeout?: string;
  "max-memory-pages"?: string;
  "max-call-depth"?: string;
  isolation?: string;
}

function integerFlag(flags: CallFlags, name: keyof CallFlags): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== "string" || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${name} must be a positive integer, received "${raw}"`);
  }
  return value;
}

async function call(
  file: string,
  fn: string,
  rawArgs: string[],
  flags: CallFlags,
  io: CliIo,
): Promise<number> {
  if (flags.isolation !== undefined && flags.isolation !== "inline") {
    throw new UsageError(`--isolation ${flags.isolation} is not available; use --isolation inline`);
  }
  let capabilities: Capability[];
  try {
    capabilities = [...parseCapabilities((flags.cap ?? []) as Capability[])];
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const limits: Partial<ResourceLimits> = {};
  const fuel = integerFlag(flags, "max-fuel");
  const timeout = integerFlag(flags, "timeout");
  const pages = integerFlag(flags, "max-memory-pages");
  const depth = integerFlag(flags, "max-call-depth");
  if (fuel !== undefined) Object.assign(limits, { maxFuel: fuel });
  if (timeout !== undefined) Object.assign(limits, { maxExecutionTimeMs: timeout });
  if (pages !== undefined) Object.assign(limits, { maxMemoryPages: pages });
  if (depth !== undefined) Object.assign(limits, { maxCallDepth: depth });

  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await compileFile(runtime, file);
  const exported = compiled.exports.find((item) => item.name === fn && item.kind === "function");
  const params = exported?.params ?? [];
  const args = rawArgs.map((raw, i) => parseArgument(raw, params[i]));
  await using plugin = await runtime.createPlugin(compiled, {
    name: compiled.name,
    capabilities,
    resourceLimits: limits,
  });
  await plugin.initialize();
  const results = await plugin.call(fn, args);
  const metrics = flags.metrics ? await plugin.metrics() : undefined;
  if (flags.json) {
    io.stdout(JSON.stringify({ results, ...(metrics ? { metrics } : {}) }, bigintReplacer, 2));
  } else {
    io.stdout(results.map((value) => String(value)).join(" "));
    if (metrics) {
      for (const [key, value] of Object.entries(metrics)) io.stdout(`${key}: ${String(value)}`);
    }
  }
  return 0;
}

function parseArgument(raw: string, type: string | undefined): unknown {
  if (type === "i64") {
    try {
      return BigInt(raw);
    } catch {
      throw new UsageError(`argument "${raw}" is not an integer`);
    }
  }
  const value = Number(raw);
  if (raw.trim() === "" || Number.isNaN(value)) {
    throw new UsageError(`argument "${raw}" is not a number`);
  }
  return value;
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

if (import.meta.main) {
  await configure({
    sinks: { console: getConsoleSink() },
    loggers: [
      { category: ["wasmplug"], lowestLevel: "info", sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  Deno.exit(await runCli(Deno.args));
}

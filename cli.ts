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
  Capability,
  type CompiledModule,
  type Isolation,
  type ModuleItem,
  parseCapabilities,
  type ResourceLimits,
  WasmError,
  WasmRuntime,
} from "./mod.ts";
import { artifactOf } from "./src/_artifact.ts";
import { builtinCapability } from "./src/host/_env.ts";
import { listMemories, listTables } from "./src/instrument/_module.ts";

const USAGE = `wasmplug ${denoJson.version} — run WebAssembly plugins in a sandbox

Usage:
  wasmplug inspect <file.wasm|file.wat> [--json]
  wasmplug call <file> <function> [args…] [--cap <name>]… [--max-fuel <n>] [--timeout <ms>]
                [--max-memory-pages <n>] [--max-call-depth <n>] [--isolation worker|inline]
                [--json] [--metrics]
  wasmplug run <file> [--dir <host>[:<guest>]]… [--env K=V]… [-- args…]
  wasmplug bench <file> <function> [args…] [--iterations <n>] [--isolation worker|inline] [--json]
  wasmplug --help | --version

Options:
  -h, --help     Show this help
  -V, --version  Show the version
  --debug        Print stack traces of errors`;

/** A failure of the command line itself (exit code 2). */
class UsageError extends Error {}

/**
 * Where the CLI writes; tests pass collectors.
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
 * });
 * ```
 */
export interface CliIo {
  /** Standard output, one line per call. */
  stdout: (line: string) => void;
  /** Standard error, one line per call. */
  stderr: (line: string) => void;
  /** Raw bytes to standard output (a WASI command's output). */
  writeStdout: (bytes: Uint8Array) => void;
  /** Raw bytes to standard error. */
  writeStderr: (bytes: Uint8Array) => void;
}

function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

const CONSOLE_IO: CliIo = {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
  writeStdout: (bytes) => writeAll(Deno.stdout, bytes),
  writeStderr: (bytes) => writeAll(Deno.stderr, bytes),
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
        iterations: { type: "string" },
        dir: { type: "string", multiple: true },
        env: { type: "string", multiple: true },
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
      case "run":
        if (file === undefined) throw new UsageError("run needs a file");
        return await run(file, rest, values, io);
      case "bench": {
        const [fn, ...benchArgs] = rest;
        if (file === undefined || fn === undefined) {
          throw new UsageError("bench needs a file and a function name");
        }
        return await bench(file, fn, benchArgs, values, io);
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

/** The capability an import needs, as `inspect` reports it. */
function importCapability(module: string | undefined, name: string): string {
  if (module === "wasi_snapshot_preview1") return Capability.Wasi;
  if (module === "env") {
    const capability = builtinCapability(name);
    if (capability !== undefined) return capability ?? "(none)";
  }
  return Capability.CallHostFunction;
}

function describeLimits(
  limits: { min: number | bigint; max: number | bigint | null; shared: boolean },
): string {
  return `min ${limits.min}, max ${limits.max ?? "none"}${limits.shared ? ", shared" : ""}`;
}

async function inspect(file: string, json: boolean, io: CliIo): Promise<number> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const compiled = await compileFile(runtime, file);
  const { info } = artifactOf(compiled);
  const report = {
    name: compiled.name,
    sizeBytes: compiled.sizeBytes,
    sha256: compiled.hash,
    imports: compiled.imports.map((item) => ({
      ...item,
      capability: item.kind === "function" ? importCapability(item.module, item.name) : undefined,
    })),
    exports: compiled.exports,
    memories: listMemories(info).map(({ index, import: from, exportNames, limits }) => ({
      index,
      imported: from !== null,
      exportNames,
      limits: describeLimits(limits),
    })),
    tables: listTables(info).map(({ index, import: from, exportNames, limits, refType }) => ({
      index,
      imported: from !== null,
      exportNames,
      refType,
      limits: describeLimits(limits),
    })),
    customSections: info.customSections.map((section) => ({
      name: section.name,
      sizeBytes: section.end - section.contentStart,
    })),
    manifest: compiled.manifest,
    capabilitiesNeeded: [
      ...new Set(
        compiled.imports.filter((item) => item.kind === "function")
          .map((item) => importCapability(item.module, item.name))
          .filter((capability) => capability !== "(none)"),
      ),
    ],
  };
  if (json) {
    io.stdout(JSON.stringify(report, bigintReplacer, 2));
    return 0;
  }
  io.stdout(`${report.name}: ${report.sizeBytes} bytes, sha256 ${report.sha256}`);
  io.stdout(`imports (${report.imports.length}):`);
  for (const item of report.imports) {
    const needs = item.capability === undefined ? "" : `  [${item.capability}]`;
    io.stdout(`  ${item.module}.${item.name}: ${signature(item)}${needs}`);
  }
  io.stdout(`exports (${report.exports.length}):`);
  for (const item of report.exports) io.stdout(`  ${item.name}: ${signature(item)}`);
  for (const memory of report.memories) {
    const names = memory.exportNames.length > 0
      ? ` exported as ${memory.exportNames.join(", ")}`
      : "";
    io.stdout(
      `memory ${memory.index}${
        memory.imported ? " (imported)" : ""
      }: ${memory.limits} pages${names}`,
    );
  }
  for (const table of report.tables) {
    io.stdout(
      `table ${table.index}${
        table.imported ? " (imported)" : ""
      }: ${table.refType}, ${table.limits}`,
    );
  }
  for (const section of report.customSections) {
    io.stdout(`custom section "${section.name}": ${section.sizeBytes} bytes`);
  }
  if (report.manifest !== null) io.stdout(`manifest: ${JSON.stringify(report.manifest)}`);
  io.stdout(`capabilities needed: ${report.capabilitiesNeeded.join(", ") || "none"}`);
  return 0;
}

function signature(item: ModuleItem): string {
  if (item.kind !== "function") return item.kind;
  return `func (${item.params?.join(", ")}) -> (${item.results?.join(", ")})`;
}

interface CallFlags {
  dir?: string[];
  env?: string[];
  json?: boolean;
  iterations?: string;
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
  const isolation = isolationFlag(flags);
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

  await using runtime = new WasmRuntime({ execution: { isolation } });
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

/**
 * Runs a WASI command: stdin passes through, its stdout and stderr are
 * written out, and its exit code becomes the CLI's.
 */
async function run(file: string, args: string[], flags: CallFlags, io: CliIo): Promise<number> {
  const isolation = isolationFlag(flags);
  const preopens: Record<string, string> = {};
  for (const spec of flags.dir ?? []) {
    const [host = "", guest = host] = spec.split(":");
    if (host === "" || guest === "") {
      throw new UsageError(`--dir must be <host>[:<guest>], received "${spec}"`);
    }
    preopens[guest] = host;
  }
  const env: Record<string, string> = {};
  for (const pair of flags.env ?? []) {
    const at = pair.indexOf("=");
    if (at < 1) throw new UsageError(`--env must be KEY=VALUE, received "${pair}"`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const capabilities: Capability[] = [Capability.Wasi, Capability.Random, Capability.Timer];
  if (flags.dir !== undefined) capabilities.push(Capability.FileSystem);
  await using runtime = new WasmRuntime({ execution: { isolation } });
  const compiled = await compileFile(runtime, file);
  await using command = await runtime.createPlugin(compiled, {
    name: compiled.name,
    capabilities,
    wasi: { args, env, preopens },
    allowedPaths: { read: Object.values(preopens), write: Object.values(preopens) },
  });
  const stdin = Deno.stdin.isTerminal() ? new Uint8Array() : await readAll(Deno.stdin.readable);
  const result = await command.run({ stdin });
  io.writeStdout(result.stdout);
  io.writeStderr(result.stderr);
  return result.exitCode;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function isolationFlag(flags: CallFlags): Isolation {
  const isolation = flags.isolation ?? "inline";
  if (isolation !== "inline" && isolation !== "worker") {
    throw new UsageError(`--isolation must be "worker" or "inline", received "${isolation}"`);
  }
  return isolation;
}

async function bench(
  file: string,
  fn: string,
  rawArgs: string[],
  flags: CallFlags,
  io: CliIo,
): Promise<number> {
  const iterations = integerFlag(flags, "iterations") ?? 10_000;
  const isolation = isolationFlag(flags);
  await using runtime = new WasmRuntime({ execution: { isolation } });
  const compiled = await compileFile(runtime, file);
  const params = compiled.exports.find((item) => item.name === fn)?.params ?? [];
  const args = rawArgs.map((raw, i) => parseArgument(raw, params[i]));
  await using plugin = await runtime.createPlugin(compiled, { name: compiled.name });
  await plugin.initialize();
  const progress = progressBar(iterations);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await plugin.call(fn, args);
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
  if (flags.json) {
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

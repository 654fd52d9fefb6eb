/**
 * Helpers shared by the runtime tests: runtimes of either isolation, a
 * plugin loaded from WAT with its runtime, tests that run once per
 * isolation, and assertions on typed errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import {
  Capability,
  type Isolation,
  type PluginEventType,
  type RuntimeConfig,
  type WasmPlugin,
  type WasmPluginConfig,
  WasmRuntime,
} from "../mod.ts";

/** Every type of event a `PluginManager` dispatches. */
export const PLUGIN_EVENT_TYPES: readonly PluginEventType[] = [
  "loaded",
  "initialized",
  "state_changed",
  "executed",
  "unloaded",
  "error",
  "message",
  "anomaly",
];

/** Both isolations, in the order the shared tests run them. */
export const ISOLATIONS: readonly Isolation[] = ["inline", "worker"];

/** A runtime whose plugins run in `isolation` unless the config says otherwise. */
export function isolatedRuntime(isolation: Isolation, config: RuntimeConfig = {}): WasmRuntime {
  return new WasmRuntime({ ...config, execution: { isolation, ...config.execution } });
}

/** A runtime whose plugins run inline. */
export function inlineRuntime(config: RuntimeConfig = {}): WasmRuntime {
  return isolatedRuntime("inline", config);
}

/** A runtime whose plugins run in workers. */
export function workerRuntime(config: RuntimeConfig = {}): WasmRuntime {
  return isolatedRuntime("worker", config);
}

/** A plugin and the runtime that owns it; disposing it closes the runtime. */
export interface LoadedPlugin extends AsyncDisposable {
  readonly runtime: WasmRuntime;
  readonly plugin: WasmPlugin;
}

/**
 * Compiles `wat` in a fresh runtime (inline unless `runtimeConfig` says
 * otherwise) and creates one plugin from it. Use it with `await using`.
 */
export async function loadPlugin(
  wat: string,
  config: WasmPluginConfig = {},
  runtimeConfig: RuntimeConfig = {},
): Promise<LoadedPlugin> {
  const runtime = inlineRuntime(runtimeConfig);
  try {
    const plugin = await runtime.createPluginFromWat(wat, config);
    return { runtime, plugin, [Symbol.asyncDispose]: () => runtime.close() };
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/** What a test that runs once per isolation makes its runtimes and plugins with. */
export interface IsolationKit {
  readonly isolation: Isolation;
  /** A runtime of this isolation. */
  createRuntime(config?: RuntimeConfig): WasmRuntime;
  /** {@linkcode loadPlugin} in a runtime of this isolation. */
  loadPlugin(
    wat: string,
    config?: WasmPluginConfig,
    runtimeConfig?: RuntimeConfig,
  ): Promise<LoadedPlugin>;
}

/** The kit of one isolation. */
export function isolationKit(isolation: Isolation): IsolationKit {
  return {
    isolation,
    createRuntime: (config) => isolatedRuntime(isolation, config),
    loadPlugin: (wat, config, runtimeConfig = {}) =>
      loadPlugin(wat, config, {
        ...runtimeConfig,
        execution: { isolation, ...runtimeConfig.execution },
      }),
  };
}

/**
 * The sources a plugin worker is loaded from: Deno checks the host's read
 * permission for the worker's module graph (and `deno test` type-checks it).
 */
export const WORKER_SOURCES: string = new URL("../src/", import.meta.url).pathname;

/** `permissions` widened by what spawning plugin workers needs (reading their sources). */
export function allowingWorkers(permissions: Deno.PermissionOptions): Deno.PermissionOptions {
  if (permissions === "inherit") return permissions;
  const object = permissions === "none" ? {} : permissions;
  const read = object.read ?? false;
  if (read === true || read === "inherit") return object;
  return { ...object, read: [...(read === false ? [] : read), WORKER_SOURCES] };
}

/** Options of {@linkcode testEachIsolation}. */
export interface IsolationTestOptions {
  /** The permissions of the inline run; the worker run adds what workers need. */
  readonly permissions: Deno.PermissionOptions;
  /** Long runs go to `deno task test:slow` (their names start with {@linkcode SLOW}). */
  readonly slow?: boolean;
}

/**
 * The name prefix of tests that run in `deno task test:slow` instead of the
 * default suite (long soaks, fuzzing, hundreds of workers, timing ratios).
 */
export const SLOW = "slow: ";

/**
 * Whether this run is `deno task test:slow` (`WASMPLUG_TESTS=slow`): the slow
 * tests are `ignore`d otherwise, so the default suite lists them as ignored.
 */
export const RUN_SLOW: boolean =
  Deno.permissions.querySync({ name: "env", variable: "WASMPLUG_TESTS" }).state === "granted" &&
  Deno.env.get("WASMPLUG_TESTS") === "slow";

/**
 * Registers one `Deno.test` per isolation, named `<name> (<isolation>)`,
 * whose body gets the {@linkcode IsolationKit} of its isolation.
 */
export function testEachIsolation(
  name: string,
  options: IsolationTestOptions,
  fn: (t: Deno.TestContext, kit: IsolationKit) => Promise<void>,
): void {
  for (const isolation of ISOLATIONS) {
    const permissions = isolation === "worker"
      ? allowingWorkers(options.permissions)
      : options.permissions;
    const slow = options.slow === true;
    Deno.test(
      `${slow ? SLOW : ""}${name} (${isolation})`,
      { permissions, ignore: slow && !RUN_SLOW },
      (t) => fn(t, isolationKit(isolation)),
    );
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = abstract new (...args: any[]) => E;

/** The fields of an error a test may assert, checked with `deepStrictEqual`. */
export type Expected<E> = { readonly [K in keyof E]?: unknown };

function checkError<E extends Error>(err: unknown, type: ErrorClass<E>, expected: Expected<E>): E {
  assert.ok(
    err instanceof type,
    `expected ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : err}`,
  );
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual((err as unknown as Record<string, unknown>)[key], value, `error.${key}`);
  }
  return err;
}

/**
 * Asserts that `run` rejects (never throws synchronously) with an instance of
 * `type` whose fields equal `expected`; returns the error for more checks.
 */
export async function assertRejectsWith<E extends Error>(
  run: () => Promise<unknown>,
  type: ErrorClass<E>,
  expected: Expected<E> = {},
): Promise<E> {
  let promise: Promise<unknown>;
  try {
    promise = run();
  } catch (err) {
    assert.fail(`expected a rejected promise, the call threw synchronously: ${err}`);
  }
  try {
    await promise;
  } catch (err) {
    return checkError(err, type, expected);
  }
  assert.fail(`expected a rejection with ${type.name}, the call succeeded`);
}

/** Asserts that `run` throws an instance of `type` whose fields equal `expected`. */
export function assertThrowsWith<E extends Error>(
  run: () => unknown,
  type: ErrorClass<E>,
  expected: Expected<E> = {},
): E {
  try {
    run();
  } catch (err) {
    return checkError(err, type, expected);
  }
  assert.fail(`expected ${type.name} to be thrown, the call returned`);
}

const utf8 = new TextEncoder();

/** Encodes text as UTF-8. */
export function bytesOf(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Decodes UTF-8. */
export function textOf(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
}

/** Writes `text` into the plugin's memory at `ptr`; returns `[ptr, byteLength]`. */
export async function putString(
  plugin: WasmPlugin,
  ptr: number,
  text: string,
): Promise<[ptr: number, len: number]> {
  const bytes = bytesOf(text);
  await plugin.writeMemory(ptr, bytes);
  return [ptr, bytes.length];
}

/**
 * The fastest of `runs` timings of each job, in milliseconds, with the jobs
 * run in turn (a, b, a, b, …): for tests that compare sizes, since a load
 * that comes or goes while they run then slows every size alike. A job
 * returns its own timing, so that it can leave its setup out.
 *
 * @example
 * ```ts ignore
 * const [small, large] = await fastestInTurn(3, [() => timed(1), () => timed(4)]);
 * assert.ok(large / small < 11);
 * ```
 */
export async function fastestInTurn<const Jobs extends readonly (() => number | Promise<number>)[]>(
  runs: number,
  jobs: Jobs,
): Promise<{ -readonly [K in keyof Jobs]: number }> {
  const best = jobs.map(() => Infinity);
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < jobs.length; i++) best[i] = Math.min(best[i]!, await jobs[i]!());
  }
  return best as { -readonly [K in keyof Jobs]: number };
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The Deno executable running the tests, for tests that start a subprocess. */
export const DENO: string = Deno.execPath();

/** What a finished subprocess printed. */
export interface DenoOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `deno <args>` in the repository root and collects its output. */
export async function runDeno(args: readonly string[]): Promise<DenoOutput> {
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: [...args],
    cwd: new URL("..", import.meta.url),
    stdin: "null",
  }).output();
  return { code, stdout: textOf(stdout), stderr: textOf(stderr) };
}

/** Plugin log records captured through LogTape; disposing it resets LogTape. */
export interface CapturedLogs extends AsyncDisposable {
  readonly records: LogRecord[];
}

/**
 * Routes the `["wasmplug", "plugin"]` LogTape category into memory for the
 * length of a test (`await using logs = await capturePluginLogs()`).
 */
export async function capturePluginLogs(): Promise<CapturedLogs> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (record) => void records.push(record) },
    loggers: [
      { category: ["wasmplug", "plugin"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  return { records, [Symbol.asyncDispose]: () => reset() };
}

/**
 * A plugin whose `go()` calls the linker function `env.fail`, which throws
 * what `thrown()` returns, and whose `ok()` answers 7.
 */
export async function pluginThatThrows(
  runtime: WasmRuntime,
  thrown: () => unknown,
): Promise<WasmPlugin> {
  const linker = runtime.createLinker().funcWrap("env", "fail", () => {
    throw thrown();
  });
  return await runtime.createPluginWithLinker(
    await runtime.compileWat(
      "fails",
      `(module (import "env" "fail" (func $fail))
        (func (export "go") (call $fail)) (func (export "ok") (result i32) (i32.const 7)))`,
    ),
    { capabilities: [Capability.CallHostFunction] },
    linker,
  );
}

/** A tool that answers only when told to: calls made meanwhile wait in line behind its call. */
export interface HeldTool {
  /** Lets the tool's calls (made or to come) answer. */
  release(): void;
}

/**
 * Registers tool `name` on `runtime`, answering 0 once released: a plugin
 * call that reaches it stays running until then (in both isolations).
 */
export function holdingTool(runtime: WasmRuntime, name: string): HeldTool {
  const gate = Promise.withResolvers<void>();
  runtime.registerTool(name, async () => {
    await gate.promise;
    return 0;
  });
  return { release: () => gate.resolve() };
}

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const settled = promise.then(() => true, () => true);
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

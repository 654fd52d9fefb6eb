/**
 * Fuzzing of the public API with untrusted input, in one isolation, shared
 * by the CI tests (`api_inline_test.ts`, `api_worker_test.ts`) and the long
 * run (`fuzz.ts`). Every case is reproducible from the seed and its index
 * (cases run in order, and long-lived plugins carry state between them).
 *
 * Four kinds of case:
 *
 * - **module**: a mutated binary (truncated, extended, bit-flipped,
 *   section-shuffled, crossed over…) through `runtime.compile` (as a
 *   `Uint8Array`, an `ArrayBuffer` or a view into a larger buffer) or
 *   `PluginManager.load`, or mutated text through `compileWat`,
 *   `createPluginFromWat` or `PluginManager.loadWat`; then `createPlugin`,
 *   `createPluginWithLinker` (a linker whose functions return wrong-typed
 *   values, promises, or throw) or `loadCompiled`, every export called, bytes
 *   and memory exercised, and the plugin stopped (sometimes aborting a call),
 *   then called once more.
 * - **pool**: one to three hostile operations at once (`_operations.ts`) on
 *   one of a few long-lived plugins, then a normal call that must still
 *   return the right answer.
 * - **config**: a known-good module created with a drawn plugin config.
 * - **runtime**: a drawn runtime config, and a plugin in it when it is valid.
 *
 * Each case runs under a watchdog; unhandled rejections and uncaught errors
 * are watched for the whole run; at the end a fresh plugin must answer, and
 * the runtime must close with no plugin left.
 *
 * @module
 */

import { type Isolation, PluginManager, type RuntimeConfig, WasmRuntime } from "../../mod.ts";
import { type InternalOptions, withInternalOptions } from "../../src/backend/_internal_options.ts";
import { random } from "../instrument/_random_program.ts";
import { CALLS_WAT } from "../fixtures/wat.ts";
import { ALL_HOST_FUNCTIONS_WAT, corpus, readRepositoryFile } from "./_corpus.ts";
import { configCase, moduleCase } from "./_fresh.ts";
import { createPool, poolCase } from "./_pool.ts";
import { PropertyViolation, show, Tally, UncaughtWatch, watchdog } from "./_property.ts";
import { checkCanary, type Run, runOne } from "./_run.ts";
import type { FuzzSettings } from "./_settings.ts";
import { type ConfigPaths, runtimeConfig } from "./_configs.ts";

/** Options of {@linkcode fuzzApi}. */
export interface ApiFuzzOptions {
  /** Where the plugins run. */
  readonly isolation: Isolation;
  /** How long one case may take before it counts as a hang. @default {10_000} */
  readonly caseTimeoutMs?: number;
  /** Called every 100 cases. */
  readonly onProgress?: (done: number, tally: Tally) => void;
  /** Told when a worker of the run's runtime is spawned or parked. */
  readonly onWorkerEvent?: InternalOptions["onWorkerEvent"];
}

/**
 * The limits of the fuzzing runtime: small, so that runaway guests end fast
 * (fuel stops a spinning guest in milliseconds; hostile calls that wait set
 * their own short `timeoutMs`), but with time enough for a normal call to a
 * parked worker plugin, which includes respawning its worker, on a loaded
 * machine.
 */
const LIMITS = {
  maxExecutionTimeMs: 500,
  maxFuel: 2_000_000,
  maxCallDepth: 200,
  maxMemoryPages: 32,
  maxTableElements: 1000,
  maxInstances: 16,
};

/** Host tools for `host_call_tool`, answering in every way a tool can. */
const TOOLS: Record<string, (args: unknown) => unknown> = {
  echo: (args) => args,
  throws: () => {
    throw new Error("the tool throws");
  },
  throws_string: () => {
    // deno-lint-ignore no-throw-literal -- a hostile tool throws anything
    throw "the tool throws a string";
  },
  cyclic: () => {
    const value: Record<string, unknown> = {};
    value.self = value;
    return value;
  },
  bigint: () => 1n,
  slow: () => new Promise((resolve) => setTimeout(resolve, 2)),
  nothing: () => undefined,
};

/** A drawn runtime config; when valid, a plugin in that runtime answers and the runtime closes. */
async function runtimeCase(run: Run, where: string): Promise<void> {
  const drawn = runtimeConfig(run.next);
  const settled = await runOne(run, "runtime", {
    what: `new WasmRuntime(${show(drawn.value)})`,
    run: () => new WasmRuntime(drawn.value as RuntimeConfig),
    jsInvalid: drawn.jsInvalid,
    synchronous: true,
  }, where);
  if (!settled.ok) return;
  const runtime = settled.value as WasmRuntime;
  try {
    await runOne(run, "runtime", {
      what: "the runtime's plugin answers",
      run: async () => {
        const plugin = await runtime.createPluginFromWat(CALLS_WAT);
        const sum = await plugin.callI32("add", [2, 3]);
        if (sum !== 5) throw new PropertyViolation(`${where}: add(2, 3) returned ${sum}`);
      },
      jsInvalid: false,
    }, where);
  } finally {
    await runOne(run, "runtime", {
      what: "runtime.close()",
      run: () => runtime.close(),
      jsInvalid: false,
    }, where);
  }
}

/** Creates the shared state of a run: runtime, manager, pool, corpus. */
async function startRun(
  settings: FuzzSettings,
  options: ApiFuzzOptions,
  tally: Tally,
): Promise<Run> {
  const { isolation, onWorkerEvent } = options;
  const next = random(settings.seed ^ (isolation === "worker" ? 0x3c3c3c3c : 0x5a5a5a5a));
  const { texts, binaries } = corpus(next);
  const runtime = new WasmRuntime(withInternalOptions({
    execution: { isolation },
    resourceLimits: LIMITS,
    cache: { maxEntries: 32 },
    // Long-lived worker plugins get parked between cases, and their state restored.
    idleTimeoutMs: 200,
  }, onWorkerEvent === undefined ? {} : { onWorkerEvent }));
  for (const [name, fn] of Object.entries(TOOLS)) runtime.registerTool(name, fn);
  const manager = new PluginManager(runtime);
  // Events are only built for listeners: have one, so that every call builds them.
  manager.addEventListener("executed", () => {});
  const pool = await createPool(runtime, manager);
  const known = await Promise.all([
    runtime.compileWat("calls", CALLS_WAT),
    runtime.compileWat("host", ALL_HOST_FUNCTIONS_WAT),
    runtime.compile("c_wasi", readRepositoryFile("examples/c_wasi/c_wasi.wasm")),
    runtime.compile("c_plugin", readRepositoryFile("examples/c_plugin/plugin.wasm")),
  ]);
  const root = new URL("../../", import.meta.url);
  const paths: ConfigPaths = {
    readable: new URL("tests/fixtures/", root).pathname,
    missing: new URL("tests/fixtures/no-such-directory/", root).pathname,
  };
  return { isolation, runtime, manager, pool, known, texts, binaries, paths, tally, next };
}

/** After the run: every pool plugin and a fresh plugin answer, and everything closes. */
async function finishRun(run: Run, caseTimeoutMs: number): Promise<void> {
  const where = "after the last case";
  for (const entry of run.pool) await watchdog(checkCanary(entry, where), caseTimeoutMs, where);
  await watchdog(
    (async () => {
      const plugin = await run.runtime.createPluginFromWat(CALLS_WAT, { name: "afterwards" });
      const sum = await plugin.callI32("add", [2, 3]);
      if (sum !== 5) {
        throw new PropertyViolation(`${where}: a fresh plugin's add(2, 3) returned ${sum}`);
      }
      await plugin.stop();
    })(),
    caseTimeoutMs,
    `${where}: a fresh plugin`,
  );
  await watchdog(run.manager.close(), caseTimeoutMs, `${where}: manager.close()`);
  await watchdog(run.runtime.close(), caseTimeoutMs, `${where}: runtime.close()`);
  if (run.runtime.pluginCount !== 0) {
    throw new PropertyViolation(
      `${where}: ${run.runtime.pluginCount} plugins outlived runtime.close()`,
    );
  }
}

/**
 * Runs `settings.cases` cases against a runtime of `options.isolation`.
 *
 * @returns The outcomes, counted by stage and label.
 * @throws {PropertyViolation} Naming the seed and case, at the first outcome that violates the property.
 */
export async function fuzzApi(settings: FuzzSettings, options: ApiFuzzOptions): Promise<Tally> {
  const { isolation, caseTimeoutMs = 10_000, onProgress } = options;
  const tally = new Tally();
  using watch = new UncaughtWatch();
  const run = await startRun(settings, options, tally);
  try {
    for (let index = 0; index < settings.cases; index++) {
      const where = `case ${index} (seed ${settings.seed}, ${isolation})`;
      watch.enter(where);
      const roll = run.next();
      const work = roll < 0.45
        ? moduleCase(run, index, where)
        : roll < 0.85
        ? poolCase(run, where)
        : roll < 0.96
        ? configCase(run, where)
        : runtimeCase(run, where);
      await watchdog(work, caseTimeoutMs, where);
      watch.check();
      if (onProgress !== undefined && (index + 1) % 100 === 0) onProgress(index + 1, tally);
    }
    await finishRun(run, caseTimeoutMs);
  } finally {
    // After a violation a hung plugin may keep the runtime from closing: report the violation.
    await watchdog(run.runtime.close(), caseTimeoutMs, "closing the runtime").catch(() => {});
  }
  // Rejections are reported a turn late: give the last ones a chance to show.
  await new Promise((resolve) => setTimeout(resolve, 0));
  watch.check();
  return tally;
}

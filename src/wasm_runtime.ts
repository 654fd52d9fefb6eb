/**
 * The runtime: compiles modules (with a content-keyed cache), creates
 * plugins under resource limits, and owns the host tools.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  artifactOf,
  buildArtifact,
  createCompiledModule,
  type Instrumentation,
  type ModuleArtifact,
  type PreparedModule,
  prepareModule,
} from "./compile/mod.ts";
import type { PluginBackend } from "./backend/mod.ts";
import type { CacheStats } from "./cache_stats.ts";
import { Capability } from "./capability.ts";
import { parseCapabilities } from "./_capability_grants.ts";
import type { CompiledModule } from "./compile/compiled_module.ts";
import {
  CapabilityDeniedError,
  InstantiationError,
  InvalidFunctionError,
  PluginStateError,
  ResourceLimitError,
} from "./errors.ts";
import type { PluginManifest } from "./plugin_manifest.ts";
import { parseManifest } from "./compile/mod.ts";
import { describeValue } from "./common/mod.ts";
import { assertKnownKeys, MAX_TIMER_MS, optionFields, shownName } from "./common/mod.ts";
import { type InternalOptions, internalOptionsOf } from "./backend/mod.ts";
import type { ToolFunction } from "./host/tool_function.ts";
import { createInlineBackend } from "./backend/mod.ts";
import { planImports, type PlannedImports } from "./backend/mod.ts";
import type { HostEnvironment } from "./host/mod.ts";
import { type BackendParts, describeInstance, type PluginHostSide } from "./backend/mod.ts";
import { createWorkerBackend, WorkerPool, type WorkerPoolOptions } from "./worker/mod.ts";
import { permissionsOfWorker, resolveWorkerPermissions } from "./worker/mod.ts";
import { Linker } from "./linker.ts";
import { LruCache } from "./compile/mod.ts";
import type { WasmPluginConfig } from "./plugin_config.ts";
import { checkIsolation, checkPluginConfig } from "./_plugin_config_check.ts";
import { DEFAULT_LIMITS, type ResourceLimits } from "./resource_limits.ts";
import { resolveLimits } from "./compile/mod.ts";
import type { Isolation, RuntimeConfig } from "./runtime_config.ts";
import { sha256Hex } from "./compile/mod.ts";
import {
  checkStopOptions,
  createWasmPlugin,
  type StopOptions,
  stopRefusal,
  type WasmPlugin,
} from "./wasm_plugin.ts";
import { WAT_CACHE_VERSION, watSource, watToBinary } from "./compile/mod.ts";
import { readCachedBinary, writeCachedBinary } from "./compile/mod.ts";

const logger = getLogger(["wasmplug", "runtime"]);

/**
 * {@linkcode WasmRuntime.createPlugin} (with a linker when one is given)
 * whose start function `until` ends as the runtime's `close()` ends it: a
 * manager's loads, which its own `close()` ends. Set by the class.
 *
 * @example
 * ```ts ignore
 * const plugin = await createPluginUntil(runtime, compiled, config, undefined, signal);
 * ```
 */
export let createPluginUntil: (
  runtime: WasmRuntime,
  compiled: CompiledModule,
  config: WasmPluginConfig | undefined,
  linker: Linker | undefined,
  until: AbortSignal,
) => Promise<WasmPlugin>;

const DEFAULT_CACHE_ENTRIES = 128;
/** The most bytes of modules and their prepared forms the cache holds by default. */
const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** The compiled-module cache: by count, and by the bytes the artifacts hold. */
function artifactCache(maxEntries: number, maxBytes: number): LruCache<string, ModuleArtifact> {
  return new LruCache(maxEntries, {
    maxWeight: maxBytes,
    weigh: (artifact) => artifact.held.bytes,
  });
}
/** How long a worker plugin may idle before it is parked (see `RuntimeConfig.idleTimeoutMs`). */
const DEFAULT_IDLE_TIMEOUT_MS = 2000;

/**
 * The execution settings a runtime resolved from its config.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * console.log(runtime.execution.isolation); // inline
 * ```
 */
export interface ResolvedExecution {
  /** Whether modules get a fuel counter. */
  readonly fuelMetering: boolean;
  /** Whether modules get deadline checks. */
  readonly epochInterruption: boolean;
  /** Where plugins run by default. */
  readonly isolation: Isolation;
  /**
   * Whether plugin workers get Deno permissions of their own (`"narrow"`)
   * or share the host's (`"inherit"`): see `ExecutionConfig.workerPermissions`.
   */
  readonly workerPermissions: "narrow" | "inherit";
}

/**
 * The WebAssembly plugin runtime, like MoFA's `WasmRuntime`: compile once,
 * instantiate many sandboxed plugins, each with enforced limits.
 *
 * @example The guide's walkthrough
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({
 *   execution: { fuelMetering: false, epochInterruption: false, isolation: "inline" },
 * });
 * const compiled = await runtime.compileWat("math-module", `
 *   (module
 *     (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
 * `);
 * console.log(`Compiled module: ${compiled.name}`);
 * await using plugin = await runtime.createPlugin(compiled, {
 *   name: "math-plugin",
 *   resourceLimits: { maxFuel: null },
 * });
 * await plugin.initialize();
 * console.log(`10 + 5 = ${await plugin.callI32("add", [10, 5])}`); // 10 + 5 = 15
 * ```
 */
export class WasmRuntime implements AsyncDisposable {
  /** The limits every plugin starts from. */
  readonly limits: Readonly<ResourceLimits>;
  /** The execution settings in force. */
  readonly execution: ResolvedExecution;

  readonly #cache: LruCache<string, ModuleArtifact>;
  /** Artifacts being built, by hash: compiles of the same bytes that overlap share one. */
  readonly #building = new Map<string, Promise<ModuleArtifact>>();
  readonly #cacheDir: string | undefined;
  readonly #idleTimeoutMs: number;
  /** Options for wasmplug's own tests (see `_internal_options.ts`). */
  readonly #internal: InternalOptions;
  /** Idle workers of stopped and parked plugins, kept for the next plugins to start. */
  readonly #workerPool: WorkerPool;
  readonly #tools = new Map<string, ToolFunction>();
  readonly #plugins = new Set<WasmPlugin>();
  /** Plugins being created, each with what `close()` aborts their start function with. */
  readonly #creations = new Map<AbortController, Promise<unknown>>();
  #reserved = 0;
  #closed = false;

  /**
   * Creates a runtime.
   *
   * @param config Execution settings, limits and cache; every field is optional.
   * @throws {TypeError} If a setting has the wrong type.
   * @throws {RangeError} If a limit or cache size is out of range.
   */
  constructor(given: RuntimeConfig = {}) {
    if (typeof given !== "object" || given === null) {
      throw new TypeError(
        `Cannot create a runtime: expected a config object, received ${describeValue(given)}`,
      );
    }
    assertKnownKeys("the runtime config", given, RUNTIME_CONFIG_KEYS);
    const config = optionFields(given, RUNTIME_CONFIG_KEYS) as RuntimeConfig;
    this.execution = resolveExecution(config.execution);
    assertFuelMetered(this.execution, config.resourceLimits, "the runtime config's resourceLimits");
    this.limits = resolveLimits(
      this.execution.fuelMetering ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, maxFuel: null },
      config.resourceLimits,
    );
    const idleTimeoutMs = config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (typeof idleTimeoutMs !== "number") {
      throw new TypeError(
        `Cannot use 'idleTimeoutMs': expected a number, received ${describeValue(idleTimeoutMs)}`,
      );
    }
    if (!(idleTimeoutMs >= 0)) {
      throw new RangeError(
        `Cannot use 'idleTimeoutMs' = ${idleTimeoutMs}: it must be a non-negative number of milliseconds or Infinity`,
      );
    }
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#internal = internalOptionsOf(given);
    this.#workerPool = new WorkerPool(resolveWorkerPool(config.workerPool));
    const cache = config.cache ?? true;
    if (typeof cache === "boolean") {
      this.#cache = artifactCache(cache ? DEFAULT_CACHE_ENTRIES : 0, DEFAULT_CACHE_BYTES);
    } else if (typeof cache === "object" && cache !== null) {
      assertKnownKeys("'cache'", cache, CACHE_KEYS);
      const {
        maxEntries = DEFAULT_CACHE_ENTRIES,
        maxBytes = DEFAULT_CACHE_BYTES,
        dir,
      } = optionFields(cache, CACHE_KEYS) as {
        maxEntries?: number;
        maxBytes?: number;
        dir?: string;
      };
      if (!Number.isInteger(maxEntries) || maxEntries < 0) {
        throw new RangeError(
          `Cannot use 'cache.maxEntries' = ${maxEntries}: it must be a non-negative integer`,
        );
      }
      if (typeof maxBytes !== "number" || !(maxBytes >= 0)) {
        throw new RangeError(
          `Cannot use 'cache.maxBytes' = ${
            describeValue(maxBytes)
          }: it must be a non-negative number of bytes or Infinity`,
        );
      }
      if (dir !== undefined && typeof dir !== "string") {
        throw new TypeError(
          `Cannot use 'cache.dir': expected a string, received ${describeValue(dir)}`,
        );
      }
      // "" would put the cache's files at the root of the file system.
      if (dir !== undefined && dir.trim() === "") {
        throw new TypeError(`Cannot use 'cache.dir' = ${JSON.stringify(dir)}: it names no folder`);
      }
      // No file system takes it: every compile would only log a warning.
      if (dir?.includes("\0")) {
        throw new TypeError(
          `Cannot use 'cache.dir' = ${shownName(dir)}: a path cannot hold a NUL character`,
        );
      }
      this.#cache = artifactCache(maxEntries, maxBytes);
      this.#cacheDir = dir;
    } else {
      throw new TypeError(
        `Cannot use 'cache': expected a boolean or an object, received ${describeValue(cache)}`,
      );
    }
  }

  /**
   * Compiles and validates a binary module. Identical bytes are compiled once
   * (the cache is keyed by their SHA-256, not by name).
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
   * const compiled = await runtime.compile("empty", bytes);
   * console.log(compiled.sizeBytes, compiled.hash.length); // 8 64
   * ```
   *
   * @param name A name for messages and metrics.
   * @param bytes The binary module.
   * @throws {CompilationError} If the bytes are not a valid module, with the byte offset.
   * @throws {PluginStateError} If the runtime is closed (`state` `"closed"`).
   */
  async compile(name: string, bytes: Uint8Array | ArrayBuffer): Promise<CompiledModule> {
    this.#assertOpen("compile a module");
    assertName(name);
    let view: Uint8Array;
    if (bytes instanceof Uint8Array) view = bytes;
    else if (bytes instanceof ArrayBuffer) view = new Uint8Array(bytes);
    else {
      throw new TypeError(
        `Cannot compile "${name}": expected a Uint8Array or an ArrayBuffer, received ${
          describeValue(bytes)
        }`,
      );
    }
    const start = performance.now();
    return await this.#compileBinary(name, view.slice(), start);
  }

  /**
   * Compiles WebAssembly text (through wabt, loaded on first use).
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const compiled = await runtime.compileWat("math-module", '(module (func (export "f")))');
   * console.log(compiled.exports); // [ { name: "f", kind: "function", params: [], results: [] } ]
   * ```
   *
   * @param name A name for messages and metrics.
   * @param text The WAT source: text, or the bytes of a `.wat` file, taken as `wat2wasm`
   * reads them (bytes that are not UTF-8 may stand in comments, and in strings stand for
   * themselves). A leading byte order mark is dropped.
   * @throws {CompilationError} With wabt's message, line and column (the column counts
   * bytes of UTF-8); also where the text nests deeper than 128 levels, more than wabt (the
   * WAT compiler) can parse, holds a lone surrogate, is UTF-16 (its byte order mark says so)
   * or is over 256 MiB.
   * @throws {TypeError} If the name holds a lone surrogate.
   * @throws {PluginStateError} If the runtime is closed (`state` `"closed"`).
   */
  async compileWat(name: string, text: string | Uint8Array): Promise<CompiledModule> {
    this.#assertOpen("compile a module");
    assertName(name);
    if (typeof text !== "string" && !(text instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot compile "${name}": expected WAT text, received ${describeValue(text)}`,
      );
    }
    const start = performance.now();
    // Checked before the cache is asked: a lone surrogate would hash as U+FFFD.
    const source = watSource(name, text);
    let bytes: Uint8Array | undefined;
    let key: string | undefined;
    if (this.#cacheDir !== undefined) {
      const version = new TextEncoder().encode(`${WAT_CACHE_VERSION}\n`);
      const keyed = new Uint8Array(version.length + source.length);
      keyed.set(version);
      keyed.set(source, version.length);
      key = await sha256Hex(keyed);
      // A module compiled from text is smaller than its UTF-8 (headers aside).
      bytes = await readCachedBinary(this.#cacheDir, key, 2 * source.length + 4096);
    }
    if (bytes === undefined) {
      bytes = await watToBinary(name, source);
      if (this.#cacheDir !== undefined) await writeCachedBinary(this.#cacheDir, key!, bytes);
    }
    return await this.#compileBinary(name, bytes, start);
  }

  async #compileBinary(name: string, bytes: Uint8Array, start: number): Promise<CompiledModule> {
    const hash = await sha256Hex(bytes);
    const artifact = this.#cache.get(hash) ?? await this.#build(bytes, hash);
    const compiled = createCompiledModule(artifact, {
      name,
      compileTimeMs: performance.now() - start,
    });
    logger.debug("Compiled {name} ({sizeBytes} bytes) in {compileTimeMs} ms", { ...compiled });
    return compiled;
  }

  /**
   * Builds the artifact of bytes the cache does not hold, once for the
   * compiles of the same bytes that overlap (each would pay it in full).
   */
  #build(bytes: Uint8Array, hash: string): Promise<ModuleArtifact> {
    let building = this.#building.get(hash);
    if (building === undefined) {
      const passes = this.#passes(this.limits, this.execution.isolation);
      building = buildArtifact(bytes, hash, {
        // Prepared for the runtime's own limits now, so the common case instantiates at once.
        alongside: (artifact) => prepareModule(artifact, this.limits, passes),
      });
      this.#building.set(hash, building);
      // A runtime closed meanwhile keeps nothing (close() emptied the cache).
      building.then((artifact) => this.#closed || this.#cache.set(hash, artifact), () => {})
        .finally(() => this.#building.delete(hash));
    }
    return building;
  }

  /**
   * Instantiates a compiled module as a plugin.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const compiled = await runtime.compileWat("m", '(module (func (export "one") (result i32) i32.const 1))');
   * await using plugin = await runtime.createPlugin(compiled, { name: "one" });
   * console.log(await plugin.callI32("one")); // 1
   * ```
   *
   * @param compiled A module from {@linkcode compile} or {@linkcode compileWat}.
   * @param config Name, capabilities, limits and host data of the plugin.
   * @throws {ResourceLimitError} If `maxInstances` plugins are alive, or a table is too large.
   * @throws {OutOfMemoryError} If a declared memory is larger than `maxMemoryPages`.
   * @throws {ImportNotFoundError} If an import is not provided.
   * @throws {InstantiationError} If the start function traps or a segment does not fit.
   * @throws {PluginStateError} If the runtime is closed, or closes before the plugin is created
   * (`state` `"closed"`; its start function, if running, is ended).
   */
  createPlugin(compiled: CompiledModule, config?: WasmPluginConfig): Promise<WasmPlugin> {
    return this.#createPlugin(compiled, config, undefined);
  }

  /**
   * Instantiates a compiled module with host functions from a {@linkcode Linker}.
   *
   * @example
   * ```ts
   * import { Capability, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const linker = runtime.createLinker().funcWrap("env", "twice", (x: number) => 2 * x);
   * const compiled = await runtime.compileWat("m", `(module
   *   (import "env" "twice" (func $twice (param i32) (result i32)))
   *   (func (export "quad") (param i32) (result i32) (call $twice (call $twice (local.get 0)))))`);
   * await using plugin = await runtime.createPluginWithLinker(compiled, {
   *   capabilities: [Capability.CallHostFunction],
   * }, linker);
   * console.log(await plugin.callI32("quad", [3])); // 12
   * ```
   */
  createPluginWithLinker(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    linker: Linker,
  ): Promise<WasmPlugin> {
    return this.#createLinked(compiled, config, linker, undefined);
  }

  #createLinked(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    linker: Linker,
    until: AbortSignal | undefined,
  ): Promise<WasmPlugin> {
    if (!(linker instanceof Linker)) {
      return Promise.reject(
        new TypeError(`Cannot link a plugin: expected a Linker, received ${describeValue(linker)}`),
      );
    }
    return this.#createPlugin(compiled, config, linker, until);
  }

  static {
    createPluginUntil = (runtime, compiled, config, linker, until) =>
      linker === undefined
        ? runtime.#createPlugin(compiled, config, undefined, until)
        : runtime.#createLinked(compiled, config, linker, until);
  }

  /**
   * Compiles WAT and instantiates it in one step.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)", { name: "p2" });
   * console.log(plugin.name); // p2
   * ```
   */
  async createPluginFromWat(wat: string, config?: WasmPluginConfig): Promise<WasmPlugin> {
    const compiled = await this.compileWat(config?.name ?? "plugin", wat);
    return await this.createPlugin(compiled, config);
  }

  /**
   * A new, empty linker for {@linkcode createPluginWithLinker}.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const linker = runtime.createLinker();
   * linker.funcWrap("env", "log", (msg: number) => console.log(`Plugin log: ${msg}`));
   * ```
   */
  createLinker(): Linker {
    return new Linker();
  }

  /**
   * Registers a host tool that plugins with `Capability.CallTool` call through
   * `host_call_tool` (JSON in, JSON out). Async tools suspend the guest, not the host.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * runtime.registerTool("add", (args) => {
   *   const { a, b } = args as { a: number; b: number };
   *   return a + b;
   * });
   * ```
   */
  registerTool(name: string, fn: ToolFunction): void {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `Cannot register a tool: expected a non-empty name, received ${describeValue(name)}`,
      );
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot register tool "${name}": expected a function, received ${describeValue(fn)}`,
      );
    }
    this.#tools.set(name, fn);
  }

  /**
   * Counters of the compiled-module cache.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * console.log(runtime.cacheStats().entries); // 0
   * ```
   */
  cacheStats(): CacheStats {
    return this.#cache.stats();
  }

  /**
   * Live plugins of this runtime.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)");
   * console.log(runtime.pluginCount); // 1
   * ```
   */
  get pluginCount(): number {
    return this.#plugins.size;
  }

  /**
   * Stops every plugin and releases the cache. Idempotent. It waits for the
   * plugins' running calls; with `{ abort: true }` it ends them, also when
   * an earlier close is still waiting for them.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * const runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await runtime.close();
   * ```
   */
  async close(options: StopOptions = {}): Promise<void> {
    const abort = checkStopOptions(options, "Cannot close the runtime");
    this.#closed = true;
    const creations = [...this.#creations];
    for (const [controller] of creations) {
      controller.abort(
        new PluginStateError("Cannot create a plugin: the runtime was closed while it started", {
          state: "closed",
        }),
      );
    }
    await Promise.allSettled([
      ...creations.map(([, creation]) => creation),
      // One whose own host function closes the runtime cannot wait for its call: it ends it.
      ...[...this.#plugins].map((plugin) =>
        plugin.stop({ abort: abort || stopRefusal(plugin, false) !== undefined })
      ),
    ]);
    this.#workerPool.close();
    this.#cache.clear();
  }

  /**
   * Closes the runtime; `await using runtime = …` calls this.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * {
   *   await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The instrumentation passes that enforce `limits`. Both isolations check
   * the clock from a hook the guest calls about once a millisecond. Worker
   * plugins always get it, since it is how a timeout stops a worker without
   * killing it: their hook also stops the call when the host asks, and
   * checks the deadline on the worker's own clock, so that the limit holds
   * while the host's thread is held up. Their modules export their state, so
   * that an idle worker can hand it over and be parked.
   */
  #passes(limits: Readonly<ResourceLimits>, isolation: Isolation): Instrumentation {
    const worker = isolation === "worker";
    const clocked = worker ||
      (this.execution.epochInterruption && Number.isFinite(limits.maxExecutionTimeMs));
    return {
      fuel: this.execution.fuelMetering,
      callDepth: Number.isFinite(limits.maxCallDepth),
      deadline: clocked ? "clock" : false,
      exportState: worker,
    };
  }

  #assertOpen(action: string): void {
    if (this.#closed) {
      throw new PluginStateError(`Cannot ${action}: the runtime is closed`, { state: "closed" });
    }
  }

  async #createPlugin(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    linker: Linker | undefined,
    until?: AbortSignal,
  ): Promise<WasmPlugin> {
    this.#assertOpen("create a plugin");
    // close() ends a start function still running, and waits for the creation to settle; so
    // does `until` (a manager's close).
    const controller = new AbortController();
    const end = (): void => controller.abort(until!.reason);
    if (until?.aborted) end();
    else until?.addEventListener("abort", end, { once: true });
    const creation = this.#create(compiled, config, linker, controller.signal);
    this.#creations.set(controller, creation);
    try {
      return await creation;
    } catch (err) {
      // A close that ended the start function ended the creation: its reason, as when the
      // close came before the start, not a start function that failed.
      const { aborted, reason } = controller.signal;
      if (aborted && err instanceof InstantiationError && err.cause === reason) throw reason;
      throw err;
    } finally {
      this.#creations.delete(controller);
      until?.removeEventListener("abort", end);
    }
  }

  /**
   * Creates a plugin: its config resolved and checked against the module
   * (`#planPlugin`), an instance reserved, its module prepared for its
   * limits, its instance described and its host side built, its backend
   * started where its isolation says, and the plugin registered.
   */
  async #create(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    linker: Linker | undefined,
    signal: AbortSignal,
  ): Promise<WasmPlugin> {
    const plan = this.#planPlugin(compiled, config, linker);
    const { artifact, settings, manifest, limits, isolation } = plan;
    this.#reserveInstance(settings.name ?? compiled.name);
    try {
      const prepared = await prepareModule(artifact, limits, this.#passes(limits, isolation));
      const identity: PluginIdentity = {
        id: settings.id ?? crypto.randomUUID(),
        name: settings.name ?? manifest?.name ?? compiled.name,
        capabilities: plan.capabilities,
      };
      const parts = this.#backendParts(plan, { prepared, identity, signal });
      const backend = await this.#startBackend(plan, parts);
      return this.#register(plan, { ...identity, backend, env: parts.host.env });
    } finally {
      this.#reserved--;
    }
  }

  /**
   * Everything about a new plugin that can be checked before anything is
   * reserved or started: its config, its manifest, its limits (the
   * runtime's, narrowed by the config and the manifest), its isolation and
   * who provides each of its imports.
   */
  #planPlugin(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    linker: Linker | undefined,
  ): PluginPlan {
    const artifact = artifactOf(compiled);
    const settings = checkPluginConfig(config ?? {});
    // Checked before the manifest's needs are held against them.
    const capabilities = parseCapabilities(settings.capabilities);
    const manifest = settings.manifest === undefined
      ? artifact.manifest
      : parseManifest(settings.manifest, "the config's manifest");
    assertFuelMetered(
      this.execution,
      settings.resourceLimits,
      "the plugin config's resourceLimits",
    );
    let limits = resolveLimits(this.limits, settings.resourceLimits);
    if (manifest !== null) limits = checkManifest(manifest, artifact, capabilities, limits);
    // A manifest may ask for a fuel budget; with metering off there is none to narrow.
    if (!this.execution.fuelMetering && limits.maxFuel !== null) {
      limits = Object.freeze({ ...limits, maxFuel: null });
    }
    const isolation = settings.isolation ?? this.execution.isolation;
    const { imports: entries, types } = artifact.info;
    const imports = planImports(entries, types, linker, isolation === "worker");
    return { artifact, settings, manifest, limits, isolation, imports, capabilities };
  }

  /** Counts a plugin being created against `maxInstances`; the caller releases it. */
  #reserveInstance(name: string): void {
    if (this.#plugins.size + this.#reserved >= this.limits.maxInstances) {
      throw new ResourceLimitError(
        `Cannot create plugin "${name}": ${this.limits.maxInstances} instances are alive, the limit maxInstances`,
        { limit: "maxInstances" },
      );
    }
    this.#reserved++;
  }

  /**
   * The plugin's instance as plain data (what a worker is sent), and its
   * host side, which stays on this thread: linker functions, the state
   * behind its built-in host functions, and what aborts its start function.
   */
  #backendParts(
    plan: PluginPlan,
    { prepared, identity, signal }: {
      readonly prepared: PreparedModule;
      readonly identity: PluginIdentity;
      readonly signal: AbortSignal;
    },
  ): BackendParts {
    const { settings, limits } = plan;
    const env: HostEnvironment = {
      pluginId: identity.id,
      pluginName: identity.name,
      capabilities: identity.capabilities,
      config: new Map(Object.entries(settings.config ?? {})),
      storage: new Map(),
      tools: this.#tools,
      allowedHosts: settings.allowedHosts ?? [],
      onMessage: settings.onMessage,
      onLog: settings.onLog,
      logStats: { droppedRecords: 0 },
      maxStorageBytes: limits.maxStorageBytes,
    };
    const spec = describeInstance({
      prepared,
      imports: plan.imports.plan,
      pluginName: identity.name,
      capabilities: identity.capabilities,
      allowedHosts: env.allowedHosts,
      limits,
      wasi: settings.wasi,
      writablePaths: identity.capabilities.has(Capability.FileSystem)
        ? settings.allowedPaths?.write ?? []
        : [],
      idleTimeoutMs: this.#idleTimeoutMs,
    });
    const { linkerFunctions } = plan.imports;
    const host: PluginHostSide = { linkerFunctions, env, startSignal: signal };
    return { spec, host };
  }

  /**
   * Starts the plugin's instance where its isolation says: on this thread,
   * or in a worker with the Deno permissions its capabilities need. A
   * runtime closed meanwhile closes it again and fails.
   */
  async #startBackend(plan: PluginPlan, parts: BackendParts): Promise<PluginBackend> {
    const { settings } = plan;
    const backend = plan.isolation === "inline"
      ? await createInlineBackend(parts)
      : await createWorkerBackend({
        ...parts,
        permissions: permissionsOfWorker(this.execution.workerPermissions, {
          capabilities: parts.host.env.capabilities,
          allowedHosts: settings.allowedHosts,
          allowedPaths: settings.allowedPaths,
          preopens: settings.wasi?.preopens,
        }, parts.spec.pluginName),
        internal: this.#internal,
        pool: this.#workerPool,
      });
    if (this.#closed) {
      await backend.close();
      this.#assertOpen("create a plugin");
    }
    return backend;
  }

  /** Wraps a started backend as a plugin this runtime counts and closes. */
  #register(
    plan: PluginPlan,
    parts: PluginIdentity & { readonly backend: PluginBackend; readonly env: HostEnvironment },
  ): WasmPlugin {
    const plugin = createWasmPlugin({
      id: parts.id,
      name: parts.name,
      capabilities: [...parts.capabilities],
      limits: plan.limits,
      fuelMetered: this.execution.fuelMetering,
      isolation: plan.isolation,
      backend: parts.backend,
      signatures: plan.artifact.signatures,
      manifest: plan.manifest,
      hostScope: parts.env,
      logStats: parts.env.logStats,
      onClose: () => this.#plugins.delete(plugin),
    });
    this.#plugins.add(plugin);
    return plugin;
  }
}

/** A plugin's config checked against its module: what a plugin is created from. */
interface PluginPlan {
  readonly artifact: ModuleArtifact;
  /** The config, checked. */
  readonly settings: WasmPluginConfig;
  /** The config's manifest, or else the module's. */
  readonly manifest: PluginManifest | null;
  readonly limits: Readonly<ResourceLimits>;
  readonly isolation: Isolation;
  readonly imports: PlannedImports;
  /** The capabilities the config grants, checked. */
  readonly capabilities: ReadonlySet<Capability>;
}

/** Who a new plugin is. */
interface PluginIdentity {
  readonly id: string;
  readonly name: string;
  readonly capabilities: ReadonlySet<Capability>;
}

/** The keys of a `RuntimeConfig`, and of its `cache`, `workerPool` and `execution`. */
const RUNTIME_CONFIG_KEYS = ["execution", "resourceLimits", "cache", "idleTimeoutMs", "workerPool"];
const CACHE_KEYS = ["maxEntries", "maxBytes", "dir"];
const WORKER_POOL_KEYS = ["maxIdle", "idleMs", "maxServedBytes"];
const EXECUTION_KEYS = ["fuelMetering", "epochInterruption", "isolation", "workerPermissions"];

/** The checked `workerPool` of a runtime config. */
function resolveWorkerPool(pool: RuntimeConfig["workerPool"]): WorkerPoolOptions {
  if (pool === undefined) return {};
  if (typeof pool !== "object" || pool === null) {
    throw new TypeError(
      `Cannot use 'workerPool': expected an object { maxIdle?, idleMs?, maxServedBytes? }, received ${
        describeValue(pool)
      }`,
    );
  }
  assertKnownKeys("'workerPool'", pool, WORKER_POOL_KEYS);
  const { maxIdle, idleMs, maxServedBytes } = optionFields(pool, WORKER_POOL_KEYS) as {
    maxIdle?: number;
    idleMs?: number;
    maxServedBytes?: number;
  };
  checkPoolNumber("maxIdle", maxIdle, Number.isInteger(maxIdle) && maxIdle! >= 0, "an integer ≥ 0");
  checkPoolNumber(
    "idleMs",
    idleMs,
    idleMs! >= 0 && idleMs! <= MAX_IDLE_MS,
    `a number of milliseconds from 0 to ${MAX_IDLE_MS}`,
  );
  checkPoolNumber(
    "maxServedBytes",
    maxServedBytes,
    Number.isSafeInteger(maxServedBytes) && maxServedBytes! >= 0,
    "an integer ≥ 0",
  );
  return { maxIdle, idleMs, maxServedBytes };
}

/** Throws a `TypeError` for a `workerPool` field that is not a number, a `RangeError` for one out of range. */
function checkPoolNumber(name: string, value: unknown, valid: boolean, what: string): void {
  if (value === undefined || (typeof value === "number" && valid)) return;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot use 'workerPool.${name}': expected a number, received ${describeValue(value)}`,
    );
  }
  throw new RangeError(`Cannot use 'workerPool.${name}' = ${value}: it must be ${what}`);
}

/** The longest time a worker is kept idle: the largest delay a timer takes. */
const MAX_IDLE_MS = MAX_TIMER_MS;

function resolveExecution(given: RuntimeConfig["execution"]): ResolvedExecution {
  if (given !== undefined && (typeof given !== "object" || given === null)) {
    throw new TypeError(
      `Cannot use 'execution': expected an object { ${
        EXECUTION_KEYS.map((key) => `${key}?`).join(", ")
      } }, received ${describeValue(given)}`,
    );
  }
  if (given !== undefined) assertKnownKeys("'execution'", given, EXECUTION_KEYS);
  const execution = optionFields(given ?? {}, EXECUTION_KEYS) as NonNullable<
    RuntimeConfig["execution"]
  >;
  const { fuelMetering = true, epochInterruption = true, isolation = "worker" } = execution;
  for (
    const [key, value] of [["fuelMetering", fuelMetering], [
      "epochInterruption",
      epochInterruption,
    ]] as const
  ) {
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Cannot use 'execution.${key}': expected a boolean, received ${describeValue(value)}`,
      );
    }
  }
  checkIsolation(isolation, "execution.isolation");
  const workerPermissions = resolveWorkerPermissions(execution.workerPermissions);
  return Object.freeze({ fuelMetering, epochInterruption, isolation, workerPermissions });
}

/**
 * Refuses a fuel limit that could not be enforced: with
 * `execution.fuelMetering: false` modules count no fuel, so a number for
 * `maxFuel` would be a limit in name only.
 */
function assertFuelMetered(
  execution: ResolvedExecution,
  limits: Partial<ResourceLimits> | undefined,
  where: string,
): void {
  const maxFuel = typeof limits === "object" && limits !== null ? limits.maxFuel : undefined;
  if (execution.fuelMetering || maxFuel === undefined || maxFuel === null) return;
  throw new RangeError(
    `Cannot use 'maxFuel' = ${
      typeof maxFuel === "number" ? maxFuel : describeValue(maxFuel)
    } in ${where}: execution.fuelMetering is false, so no fuel is counted and the limit could not be enforced; set maxFuel to null or turn fuelMetering on`,
  );
}

/**
 * Checks a manifest against the module and the config, and returns the
 * limits with the manifest's (narrower) requests applied.
 */
function checkManifest(
  manifest: PluginManifest,
  artifact: ModuleArtifact,
  granted: ReadonlySet<Capability>,
  limits: Readonly<ResourceLimits>,
): Readonly<ResourceLimits> {
  const what = `plugin "${manifest.name}"`;
  for (const name of manifest.exports ?? []) {
    if (!artifact.signatures.has(name)) {
      throw new InvalidFunctionError(
        `The manifest of ${what} promises the export ${shownName(name)}, which the module lacks`,
        { functionName: name },
      );
    }
  }
  for (const capability of manifest.capabilities ?? []) {
    if (!granted.has(capability)) {
      throw new CapabilityDeniedError(
        `Capability denied: The manifest of ${what} needs the "${capability}" capability`,
        { capability },
      );
    }
  }
  const asked = resolveLimits(limits, manifest.limits);
  for (const key of Object.keys(manifest.limits ?? {}) as (keyof ResourceLimits)[]) {
    const want = asked[key] ?? Infinity;
    const have = limits[key] ?? Infinity;
    if (want > have) {
      throw new ResourceLimitError(
        `The manifest of ${what} asks for ${key} = ${want}, above the host's ${have}`,
        { limit: key },
      );
    }
  }
  return asked;
}

function assertName(name: unknown): void {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot compile a module: expected a string name, received ${describeValue(name)}`,
    );
  }
  // It names the plugins made of it by default: as a config's name, no lone surrogate (two
  // names would become one label set in /metrics).
  if (!name.isWellFormed()) {
    throw new TypeError(
      `Cannot compile a module: expected a name without lone surrogates, received ${
        shownName(name)
      }`,
    );
  }
}

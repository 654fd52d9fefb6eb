/**
 * Many plugins, one place to load, observe, account for and unload them.
 *
 * @module
 */

import type { CallOptions } from "./call_options.ts";
import type { Capability } from "./capability.ts";
import type { CompiledModule } from "./compile/compiled_module.ts";
import { PluginNotFoundError, PluginStateError } from "./errors.ts";
import { EventQueue } from "./_event_queue.ts";
import { moduleFileName, namedAsWat, readModuleFile } from "./_module_file.ts";
import type { EventSubscription } from "./event_subscription.ts";
import { describeValue, readOptions } from "./common/mod.ts";
import { checkPluginConfig } from "./_plugin_config_check.ts";
import type { PluginMessage } from "./host/plugin_message.ts";
import type { WasmPluginConfig } from "./plugin_config.ts";
import { PluginEvent, type PluginEventDetails, type PluginEventType } from "./plugin_event.ts";
import {
  assertWaitableFor,
  checkStopOptions,
  initializeOnce,
  type StopOptions,
  stopRefusal,
  type WasmPlugin,
  watchStop,
} from "./wasm_plugin.ts";
import { createPluginUntil, type WasmRuntime } from "./wasm_runtime.ts";
import type { Linker } from "./linker.ts";
import type { RunOptions, RunResult } from "./command_run.ts";
import { AnomalyDetector, type AnomalySettings, resolveAnomalySettings } from "./observe/mod.ts";
import type { AnomalyDetail, PluginManagerOptions } from "./observe/anomaly.ts";
import { latencyHistogramOf, type MetricsRecorder, metricsRecorderOf } from "./observe/mod.ts";
import { startDashboardServer } from "./observe/mod.ts";
import { CountedEventTarget, type EventTap, tapEvents } from "./_listener_count.ts";
import type {
  ManagerStats,
  PluginHandle,
  PluginInfo,
  SubscribeOptions,
} from "./plugin_manager_types.ts";
import type { DashboardServer, ServeOptions } from "./observe/dashboard_server.ts";

export type {
  ManagerStats,
  PluginHandle,
  PluginInfo,
  SubscribeOptions,
} from "./plugin_manager_types.ts";

interface Entry {
  readonly plugin: WasmPlugin;
  readonly handle: PluginHandle;
  readonly recorder: MetricsRecorder;
  /** The manager's `anomaly` listener on the plugin, `null` when detection is off. */
  readonly onAnomaly: ((event: Event) => void) | null;
}

/**
 * Messages a plugin's start function may send before its load is done that
 * become `message` events once it is (`onMessage` gets every one).
 */
const MAX_EARLY_MESSAGES = 1024;

/** The plugin events the manager re-emits as its own while someone listens for them. */
const FORWARDED_TYPES = ["state_changed", "executed", "error"] as const;
type ForwardedType = typeof FORWARDED_TYPES[number];
const NOT_FORWARDED: ReadonlySet<ForwardedType> = new Set();

/**
 * Options of {@linkcode PluginManager.load} and its siblings.
 *
 * @example
 * ```ts
 * import { type LoadOptions, PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const linker = runtime.createLinker();
 * linker.funcWrap("env", "twice", (x: number) => x * 2);
 * const options: LoadOptions = { linker };
 * await using manager = new PluginManager(runtime);
 * const handle = await manager.loadWat(
 *   '(module (import "env" "twice" (func $t (param i32) (result i32))) (func (export "f") (result i32) (call $t (i32.const 21))))',
 *   { capabilities: ["call_host_function"] },
 *   options,
 * );
 * console.log(await manager.callI32(handle, "f")); // 42
 * ```
 */
export interface LoadOptions {
  /** The application's host functions the plugin may import (`runtime.createLinker()`). */
  linker?: Linker;
}

/**
 * Hosts many plugins at once, like MoFA's `WasmPluginManager`: load them from
 * bytes, WAT or files, call them by handle, watch their events, account for
 * them, and unload them.
 *
 * It is an `EventTarget` dispatching {@linkcode PluginEvent}s (`loaded`,
 * `initialized`, `state_changed`, `executed`, `unloaded`, `error`, `message`,
 * `anomaly`); `subscribe()` gives the same events as an async iterator.
 *
 * It learns each plugin's normal duration, fuel, memory growth and error
 * rate, and emits an `anomaly` event when calls depart from them; see
 * {@linkcode AnomalyOptions} to tune it or act on it, `{ anomaly: false }` to
 * turn it off.
 *
 * @example The guide's manager walkthrough
 * ```ts
 * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new PluginManager(runtime);
 * const greet = await manager.loadWat('(module (func (export "greet_len") (result i32) i32.const 13))');
 * await manager.initialize(greet);
 * console.log(`Greeting length: ${await manager.callI32(greet, "greet_len", [])}`); // Greeting length: 13
 * console.log(manager.stats().activePlugins); // 1
 * await manager.unloadAll();
 * ```
 */
export class PluginManager extends CountedEventTarget<PluginEventDetails>
  implements AsyncDisposable {
  /** The runtime that compiles and instantiates this manager's plugins. */
  readonly runtime: WasmRuntime;

  readonly #plugins = new Map<string, Entry>();
  /** Plugins unloaded and not yet stopped: their last events and calls still count. */
  /** Plugins being unloaded, each with its unload (which `close()` waits for too). */
  readonly #unloading = new Map<Entry, Promise<void>>();
  /** Aborted by {@linkcode close}: it ends the start functions of the loads in flight. */
  readonly #loadsEnd = new AbortController();
  /** Ids of the loads in flight: neither another load nor a generated id may take them. */
  readonly #loadingIds = new Set<string>();
  readonly #subscriptions = new Set<EventQueue>();
  /** The per-call events the manager takes from its plugins: those someone listens for. */
  #forwarded: ReadonlySet<ForwardedType> = NOT_FORWARDED;
  #nextId = 1;
  #totalLoaded = 0;
  #totalUnloaded = 0;
  /** Calls, failures and time of the plugins already unloaded (the others' are in their metrics). */
  #unloadedCalls = 0;
  #unloadedFailures = 0;
  #unloadedTimeMs = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The loads in flight, until they have registered or stopped their plugin (see {@linkcode close}). */
  readonly #loading = new Set<Promise<void>>();
  /** `null` when anomaly detection is off. */
  readonly #anomaly: AnomalySettings | null;
  readonly #servers = new Set<DashboardServer>();

  /**
   * Creates a manager on top of a runtime (which keeps its own limits,
   * cache and tools).
   *
   * @param runtime The runtime to create plugins with.
   * @param options Anomaly detection: on by default, `{ anomaly: false }`
   *   turns it off, `{ anomaly: { threshold, warmupCalls, actions } }` tunes it
   *   (see {@linkcode AnomalyOptions}).
   * @throws {TypeError} For an unknown option key or a value of the wrong type.
   * @throws {RangeError} For an anomaly setting out of range.
   */
  constructor(runtime: WasmRuntime, options?: PluginManagerOptions) {
    super((target) => (target as PluginManager).#syncForwarding());
    if (typeof runtime?.createPlugin !== "function") {
      throw new TypeError(
        `Cannot create a manager: expected a WasmRuntime, received ${describeValue(runtime)}`,
      );
    }
    this.runtime = runtime;
    this.#anomaly = resolveAnomalySettings(options);
  }

  /**
   * Compiles and loads a binary module.
   *
   * @example
   * ```ts ignore
   * const handle = await manager.load(await Deno.readFile("my_plugin.wasm"), { name: "mine" });
   * ```
   *
   * @throws {TypeError} If `config.id` is already loaded, being loaded, or still unloading.
   * @throws {PluginStateError} If the manager is closed, or closes before the plugin is
   * loaded (`state` `"closed"`; its start function, if running, is ended).
   */
  async load(
    source: Uint8Array | ArrayBuffer | CompiledModule,
    config?: WasmPluginConfig,
    options?: LoadOptions,
  ): Promise<PluginHandle> {
    // Bytes of any kind go to compile(), which names the ones it takes.
    const compiled = isBytesLike(source)
      ? await this.runtime.compile(config?.name ?? "plugin", source as Uint8Array)
      : source as CompiledModule;
    return await this.#add(compiled, config, options);
  }

  /**
   * Compiles and loads a WAT module.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const handle = await manager.loadWat("(module)", { id: "empty" });
   * console.log(handle.id); // empty
   * ```
   */
  async loadWat(
    wat: string,
    config?: WasmPluginConfig,
    options?: LoadOptions,
  ): Promise<PluginHandle> {
    const compiled = await this.runtime.compileWat(config?.name ?? "plugin", wat);
    return await this.#add(compiled, config, options);
  }

  /**
   * Loads a `.wasm` (or `.wat`) file from a path or URL (`file:`, `http:`,
   * `https:`; a `URL`, or text that starts so), read with the caller's
   * permissions: a regular file or a
   * response body of at most 256 MiB. The plugin is named after the file
   * unless its config names it. Closing the manager ends a read in flight.
   *
   * @example
   * ```ts ignore
   * const handle = await manager.loadFile(new URL("./plugins/math.wasm", import.meta.url));
   * ```
   *
   * @throws {TypeError} If `path` is neither a string nor a URL, names no file to name the
   * plugin after, is not a regular file, or the server answered an error; as {@linkcode load}.
   * @throws {Deno.errors.NotFound} If there is no such file (and Deno's other file errors).
   * @throws {CompilationError} If the file is over 256 MiB, or not a valid module.
   * @throws {PluginStateError} If the manager is closed, or closes while it reads the file or
   * loads the plugin (`state` `"closed"`).
   */
  async loadFile(
    path: string | URL,
    config?: WasmPluginConfig,
    options?: LoadOptions,
  ): Promise<PluginHandle> {
    if (typeof path !== "string" && !(path instanceof URL)) {
      throw new TypeError(
        `Cannot load a plugin file: its path is ${describeValue(path)}, not a string or a URL`,
      );
    }
    this.#assertLoadable();
    const name = config?.name ?? moduleFileName(path);
    const bytes = await readModuleFile(path, this.#loadsEnd.signal);
    const named = { ...config, name };
    // A binary module is one whatever its name, text starting as WAT does is WAT (as the CLI
    // reads them).
    const binary = bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
    if (!binary && (namedAsWat(path) || looksLikeWat(bytes))) {
      // Its bytes as they are (as wat2wasm reads them): decoded, any that were not UTF-8
      // became U+FFFD, in strings too.
      const compiled = await this.runtime.compileWat(name, bytes);
      return await this.#add(compiled, named, options);
    }
    return await this.load(bytes, named, options);
  }

  /**
   * Loads an already compiled module.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const compiled = await runtime.compileWat("m", "(module)");
   * const [a, b] = [await manager.loadCompiled(compiled), await manager.loadCompiled(compiled)];
   * console.log(a.id !== b.id); // true
   * ```
   */
  loadCompiled(
    compiled: CompiledModule,
    config?: WasmPluginConfig,
    options?: LoadOptions,
  ): Promise<PluginHandle> {
    return this.#add(compiled, config, options);
  }

  /**
   * Whether a plugin has `id`, loaded or still unloading: the events of one
   * that is unloading still carry it, and would be taken for the new one's.
   */
  #idTaken(id: string): boolean {
    if (this.#plugins.has(id)) return true;
    for (const entry of this.#unloading.keys()) if (entry.plugin.id === id) return true;
    return false;
  }

  /** {@linkcode #idTaken}, or reserved by a load in flight. */
  #idBusy(id: string): boolean {
    return this.#loadingIds.has(id) || this.#idTaken(id);
  }

  #assertIdFree(id: string): void {
    if (!this.#idBusy(id)) return;
    const why = this.#plugins.has(id)
      ? "already loaded"
      : this.#loadingIds.has(id)
      ? "being loaded"
      : "still unloading";
    throw new TypeError(`Cannot load plugin "${id}": a plugin with that id is ${why}`);
  }

  /** Throws the `PluginStateError` of a closed manager. */
  #assertLoadable(): void {
    if (this.#closed) {
      throw new PluginStateError("Cannot load a plugin: the manager is closed", {
        state: "closed",
      });
    }
  }

  async #add(
    compiled: CompiledModule,
    config: WasmPluginConfig | undefined,
    options: LoadOptions | undefined,
  ): Promise<PluginHandle> {
    this.#assertLoadable();
    const linker = options === undefined
      ? undefined
      : readOptions("the load options", options, ["linker"]).linker as Linker | undefined;
    // The config as the runtime will read it (checked there): never a field of Object.prototype.
    const settings = config === undefined ? undefined : checkPluginConfig(config);
    let id = settings?.id;
    if (id !== undefined) this.#assertIdFree(id);
    while (id === undefined || this.#idBusy(id)) id = `plugin-${this.#nextId++}`;
    const userOnMessage = settings?.onMessage;
    const pluginId = id;
    // A message sent before the plugin is the manager's (by its start function) is its event
    // only once "loaded" is; a load that fails drops them (they came before "loaded", or under
    // the id of another plugin that had it).
    let registered: WasmPlugin | undefined;
    const early: PluginMessage[] = [];
    const managedConfig = {
      ...settings,
      id: pluginId,
      onMessage: (message: PluginMessage) => {
        if (registered === undefined) {
          if (early.length < MAX_EARLY_MESSAGES) early.push(message);
        } else if (this.#holds(registered)) {
          this.#emit("message", pluginId, message);
        }
        userOnMessage?.(message);
      },
    };
    // Its start function ends when the manager closes (a close from its own tool waited for it).
    const creating = createPluginUntil(
      this.runtime,
      compiled,
      managedConfig,
      linker,
      this.#loadsEnd.signal,
    );
    // close() waits for the loads in flight, until they have stopped what they made (a
    // worker's plugin stops after its creation: close() answered first, with its instance
    // still counted against maxInstances).
    const loaded = Promise.withResolvers<void>();
    this.#loading.add(loaded.promise);
    this.#loadingIds.add(pluginId);
    try {
      const plugin = await creating;
      const handle = await this.#register(pluginId, plugin);
      registered = plugin;
      for (const message of early.splice(0)) this.#emit("message", pluginId, message);
      return handle;
    } finally {
      this.#loading.delete(loaded.promise);
      this.#loadingIds.delete(pluginId);
      loaded.resolve();
    }
  }

  /** Makes the plugin a load created the manager's, unless the manager closed or its id was taken. */
  async #register(pluginId: string, plugin: WasmPlugin): Promise<PluginHandle> {
    if (this.#closed) {
      await plugin.stop();
      throw new PluginStateError(
        `Cannot load plugin "${pluginId}": the manager was closed meanwhile`,
        {
          state: "closed",
        },
      );
    }
    if (this.#idTaken(pluginId)) {
      // Another load with the same id finished first while this one was instantiating.
      const why = this.#plugins.has(pluginId) ? "already loaded" : "still unloading";
      await plugin.stop();
      throw new TypeError(`Cannot load plugin "${pluginId}": a plugin with that id is ${why}`);
    }
    const handle: PluginHandle = Object.freeze({ id: pluginId });
    const recorder = metricsRecorderOf(plugin)!;
    const onAnomaly = this.#anomaly === null ? null : this.#watchAnomalies(plugin, recorder);
    if (onAnomaly !== null) plugin.addEventListener("anomaly", onAnomaly);
    tapEvents(plugin, this.#reEmit, this.#forwarded);
    const entry = { plugin, handle, recorder, onAnomaly };
    this.#plugins.set(pluginId, entry);
    // Stopped behind the manager's back (runtime.close(), its own stop()): it leaves the manager.
    watchStop(plugin, () => {
      if (this.#plugins.get(pluginId) !== entry) return;
      this.#plugins.delete(pluginId);
      this.#forget(entry);
    });
    this.#totalLoaded++;
    this.#emit("loaded", pluginId, { name: plugin.name });
    return handle;
  }

  /**
   * Gives the plugin an anomaly detector (it feeds it every call) and returns
   * the listener of the anomalies it finds: re-emitted, then acted on.
   */
  #watchAnomalies(plugin: WasmPlugin, recorder: MetricsRecorder): (event: Event) => void {
    const detector = new AnomalyDetector(this.#anomaly!, recorder.currentMemoryBytes);
    recorder.detector = detector;
    let reported = 0;
    return (event) => {
      if (!(event instanceof PluginEvent)) return;
      this.#emit("anomaly", plugin.id, event.detail as AnomalyDetail);
      // A call's anomalies are emitted together, and counted before: act after the last one.
      if (++reported >= detector.count) this.#actOnAnomalies(plugin, detector);
    };
  }

  /** Pauses or unloads a plugin whose anomalies reached the configured counts. */
  #actOnAnomalies(plugin: WasmPlugin, detector: AnomalyDetector): void {
    const { pauseAfter, unloadAfter } = this.#anomaly!;
    const failed = (action: string) => (err: unknown): void => {
      if (this.#holds(plugin)) this.#emit("error", plugin.id, { error: err, function: action });
    };
    if (detector.count >= unloadAfter) {
      if (this.#plugins.get(plugin.id)?.plugin !== plugin) return;
      this.unload({ id: plugin.id }).catch(failed("unload"));
    } else if (detector.count >= pauseAfter && plugin.state !== "paused") {
      plugin.pause().catch(failed("pause"));
    }
  }

  /**
   * Returns the plugin behind a handle, for the calls the manager does not wrap.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const handle = await manager.loadWat("(module)", { name: "empty" });
   * console.log(manager.get(handle).name); // empty
   * ```
   *
   * @throws {PluginNotFoundError} If the handle is unknown or unloaded.
   */
  get(handle: PluginHandle): WasmPlugin {
    return this.#entry(handle).plugin;
  }

  #entry(handle: PluginHandle): Entry {
    const id = typeof handle === "object" && handle !== null ? handle.id : undefined;
    const entry = typeof id === "string" ? this.#plugins.get(id) : undefined;
    if (entry === undefined) {
      throw new PluginNotFoundError(undefined, {
        id: typeof id === "string" ? id : describeValue(handle),
      });
    }
    return entry;
  }

  /** Runs `use` on the plugin behind `handle`; an unknown handle rejects, it never throws. */
  #with<T>(handle: PluginHandle, use: (plugin: WasmPlugin) => Promise<T>): Promise<T> {
    let entry: Entry;
    try {
      // A handle's `id` may be a getter that throws: that rejects too.
      entry = this.#entry(handle);
    } catch (err) {
      return Promise.reject(err);
    }
    return use(entry.plugin);
  }

  /**
   * Runs a plugin's initializers.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const handle = await manager.loadWat("(module)");
   * await manager.initialize(handle);
   * ```
   */
  async initialize(handle: PluginHandle): Promise<void> {
    const plugin = this.get(handle);
    // Calls made while one initializes wait for it, and only it emits "initialized": a
    // plugin that is ready already emits nothing.
    const running = this.#initializing.get(plugin);
    if (running !== undefined) {
      // From the plugin's own host function, the initialization waits for this very call.
      assertWaitableFor(plugin, "initialize");
      return await running;
    }
    if (plugin.state === "ready") return;
    const initializing = this.#initialize(plugin);
    this.#initializing.set(plugin, initializing);
    try {
      await initializing;
    } finally {
      this.#initializing.delete(plugin);
    }
  }

  /** The initializations running, by plugin (see {@linkcode initialize}). */
  readonly #initializing = new Map<WasmPlugin, Promise<void>>();

  async #initialize(plugin: WasmPlugin): Promise<void> {
    let ran: boolean;
    try {
      ran = await initializeOnce(plugin);
    } catch (error) {
      // A refusal (the plugin is paused, stopping or stopped) is no failure, as a call's.
      if (this.#holds(plugin) && !(error instanceof PluginStateError)) {
        this.#emit("error", plugin.id, { error, function: "initialize" });
      }
      throw error;
    }
    // Ready already (while a call ran, the state said "running"): nothing to tell.
    if (ran && this.#holds(plugin)) this.#emit("initialized", plugin.id, { name: plugin.name });
  }

  /**
   * Whether `plugin` is still the manager's (loaded, or unloading): no event
   * of a plugin follows its `unloaded` (a reloaded id names another plugin).
   */
  #holds(plugin: WasmPlugin): boolean {
    if (this.#plugins.get(plugin.id)?.plugin === plugin) return true;
    for (const entry of this.#unloading.keys()) if (entry.plugin === plugin) return true;
    return false;
  }

  /**
   * `plugin.callI32()` by handle.
   *
   * @example
   * ```ts ignore
   * const len = await manager.callI32(handle, "greet_len", []);
   * ```
   */
  callI32(
    handle: PluginHandle,
    fn: string,
    args?: readonly number[],
    options?: CallOptions,
  ): Promise<number> {
    return this.#with(handle, (plugin) => plugin.callI32(fn, args, options));
  }

  /**
   * `plugin.callI64()` by handle.
   *
   * @example
   * ```ts ignore
   * const big = await manager.callI64(handle, "f", [1n]);
   * ```
   */
  callI64(
    handle: PluginHandle,
    fn: string,
    args?: readonly (bigint | number)[],
    options?: CallOptions,
  ): Promise<bigint> {
    return this.#with(handle, (plugin) => plugin.callI64(fn, args, options));
  }

  /**
   * `plugin.callF64()` by handle.
   *
   * @example
   * ```ts ignore
   * const x = await manager.callF64(handle, "sqrt", [2]);
   * ```
   */
  callF64(
    handle: PluginHandle,
    fn: string,
    args?: readonly number[],
    options?: CallOptions,
  ): Promise<number> {
    return this.#with(handle, (plugin) => plugin.callF64(fn, args, options));
  }

  /**
   * `plugin.callF32()` by handle.
   *
   * @example
   * ```ts ignore
   * const half = await manager.callF32(handle, "half", [3]);
   * ```
   */
  callF32(
    handle: PluginHandle,
    fn: string,
    args?: readonly number[],
    options?: CallOptions,
  ): Promise<number> {
    return this.#with(handle, (plugin) => plugin.callF32(fn, args, options));
  }

  /**
   * `plugin.callVoid()` by handle.
   *
   * @example
   * ```ts ignore
   * await manager.callVoid(handle, "reset", []);
   * ```
   */
  callVoid(
    handle: PluginHandle,
    fn: string,
    args?: readonly unknown[],
    options?: CallOptions,
  ): Promise<void> {
    return this.#with(handle, (plugin) => plugin.callVoid(fn, args, options));
  }

  /**
   * `plugin.call()` (all results) by handle.
   *
   * @example
   * ```ts ignore
   * const [q, r] = await manager.call(handle, "divmod", [7, 2]);
   * ```
   */
  call(
    handle: PluginHandle,
    fn: string,
    args?: readonly unknown[],
    options?: CallOptions,
  ): Promise<unknown[]> {
    return this.#with(handle, (plugin) => plugin.call(fn, args, options));
  }

  /**
   * `plugin.callBytes()` by handle.
   *
   * @example
   * ```ts ignore
   * const out = await manager.callBytes(handle, "transform", new Uint8Array([1, 2]));
   * ```
   */
  callBytes(
    handle: PluginHandle,
    fn: string,
    input: Uint8Array,
    options?: CallOptions,
  ): Promise<Uint8Array> {
    return this.#with(handle, (plugin) => plugin.callBytes(fn, input, options));
  }

  /**
   * `plugin.callWithBytes()` by handle.
   *
   * @example
   * ```ts ignore
   * const n = await manager.callWithBytes(handle, "process_data", new Uint8Array([1, 2, 3]));
   * ```
   */
  callWithBytes(
    handle: PluginHandle,
    fn: string,
    input: Uint8Array,
    options?: CallOptions,
  ): Promise<number> {
    return this.#with(handle, (plugin) => plugin.callWithBytes(fn, input, options));
  }

  /**
   * `plugin.run()` (a WASI command) by handle.
   *
   * @example
   * ```ts ignore
   * const { exitCode, stdout } = await manager.run(handle, { stdin: new Uint8Array() });
   * ```
   */
  run(handle: PluginHandle, options?: RunOptions): Promise<RunResult> {
    return this.#with(handle, (plugin) => plugin.run(options));
  }

  /**
   * `plugin.callJson()` by handle.
   *
   * @example
   * ```ts ignore
   * const reply = await manager.callJson(handle, "handle", { ping: true });
   * ```
   */
  callJson(
    handle: PluginHandle,
    fn: string,
    value: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    return this.#with(handle, (plugin) => plugin.callJson(fn, value, options));
  }

  /**
   * Stops a plugin and forgets it: after its running call, or ending that call
   * with `{ abort: true }`. Called again while the plugin is still unloading
   * (its call still running), it waits for that unload, and with
   * `{ abort: true }` ends the call.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const handle = await manager.loadWat("(module)");
   * await manager.unload(handle);
   * console.log(manager.listPlugins().length); // 0
   * ```
   *
   * @throws {PluginNotFoundError} If the handle is unknown or already unloaded.
   * @throws {PluginStateError} If called from one of the plugin's own host functions without
   *   `{ abort: true }` (it would wait for itself); the plugin stays loaded.
   */
  async unload(handle: PluginHandle, options: StopOptions = {}): Promise<void> {
    const leaving = this.#unloadingEntry(handle);
    if (leaving !== undefined) {
      const abort = checkStopOptions(options, `Cannot unload plugin "${leaving.plugin.id}"`);
      // From its own host function it would wait for itself, as a first unload would.
      const refused = stopRefusal(leaving.plugin, abort);
      if (refused !== undefined) throw refused;
      return await this.#joinUnload(leaving, abort);
    }
    const entry = this.#entry(handle);
    // Checked before the plugin leaves the manager: bad options leave it loaded.
    const abort = checkStopOptions(options, `Cannot unload plugin "${entry.plugin.id}"`);
    const { plugin } = entry;
    // So is a stop it would refuse (from its own host function: it would wait for itself).
    const refused = stopRefusal(plugin, abort);
    if (refused !== undefined) throw refused;
    this.#plugins.delete(plugin.id);
    const unloaded = plugin.stop(options).finally(() => {
      this.#unloading.delete(entry);
      this.#forget(entry);
    });
    this.#unloading.set(entry, unloaded);
    await unloaded;
  }

  /** The entry of the plugin behind `handle` if it is unloading (and not loaded). */
  #unloadingEntry(handle: PluginHandle): Entry | undefined {
    if (typeof handle !== "object" || handle === null) return undefined;
    let id: unknown;
    try {
      id = handle.id;
    } catch {
      return undefined; // #entry() reports it
    }
    if (typeof id !== "string" || this.#plugins.has(id)) return undefined;
    for (const entry of this.#unloading.keys()) if (entry.plugin.id === id) return entry;
    return undefined;
  }

  /**
   * Waits for an unload begun already; with `abort`, it ends the call it
   * waits for (an unload or a close that waited for a call that never ends
   * can so be escalated).
   */
  #joinUnload(entry: Entry, abort: boolean): Promise<void> {
    if (abort) entry.plugin.stop({ abort: true }).catch(() => {}); // reported by the unload
    return this.#unloading.get(entry) ?? Promise.resolve();
  }

  /** Lets go of a plugin that left the manager: its events, its counts kept, `unloaded`. */
  #forget(entry: Entry): void {
    const { plugin, recorder, onAnomaly } = entry;
    watchStop(plugin, null);
    tapEvents(plugin, null);
    if (onAnomaly !== null) plugin.removeEventListener("anomaly", onAnomaly);
    this.#unloadedCalls += recorder.callCount;
    this.#unloadedFailures += recorder.failureCount;
    this.#unloadedTimeMs += recorder.totalExecutionTimeMs;
    this.#totalUnloaded++;
    this.#emit("unloaded", plugin.id, { name: plugin.name });
  }

  /**
   * Unloads every plugin, and waits for those unloading already (with
   * `{ abort: true }`, ending their calls too). A load still in flight is
   * not waited for: its plugin is loaded when it ends (`close()` ends it).
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * await manager.loadWat("(module)");
   * await manager.unloadAll();
   * console.log(manager.stats().totalUnloaded); // 1
   * ```
   */
  async unloadAll(options: StopOptions = {}): Promise<void> {
    const abort = checkStopOptions(options, "Cannot unload the plugins");
    // Those unloading already first: the unloads begun here join them (refused from a host
    // function of one of them, as its own unload is).
    const unloading = [...this.#unloading.keys()].map((entry) => {
      const refused = stopRefusal(entry.plugin, abort);
      return refused === undefined ? this.#joinUnload(entry, abort) : Promise.reject(refused);
    });
    const results = await Promise.allSettled([
      ...[...this.#plugins.values()].map(({ handle }) => this.unload(handle, options)),
      ...unloading,
    ]);
    const failure = results.find((result) => result.status === "rejected");
    if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
  }

  /**
   * Handles of the loaded plugins, in load order.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * await manager.loadWat("(module)", { id: "a" });
   * console.log(manager.listPlugins().map((h) => h.id)); // [ "a" ]
   * ```
   */
  listPlugins(): PluginHandle[] {
    return [...this.#plugins.values()].map((entry) => entry.handle);
  }

  /**
   * Id, name, state, capabilities and metrics of a plugin.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const handle = await manager.loadWat("(module)");
   * console.log((await manager.getInfo(handle)).state); // created
   * ```
   *
   * @throws {PluginNotFoundError} If the handle is unknown or unloaded.
   */
  async getInfo(handle: PluginHandle): Promise<PluginInfo> {
    const plugin = this.get(handle);
    return {
      id: plugin.id,
      name: plugin.name,
      state: plugin.state,
      capabilities: plugin.capabilities,
      metrics: await plugin.metrics(),
    };
  }

  /**
   * Totals across every plugin this manager has loaded.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * console.log(manager.stats().totalCalls); // 0
   * ```
   */
  stats(): ManagerStats {
    let totalCalls = this.#unloadedCalls;
    let failedCalls = this.#unloadedFailures;
    let totalExecutionTimeMs = this.#unloadedTimeMs;
    for (const { recorder } of [...this.#plugins.values(), ...this.#unloading.keys()]) {
      totalCalls += recorder.callCount;
      failedCalls += recorder.failureCount;
      totalExecutionTimeMs += recorder.totalExecutionTimeMs;
    }
    return {
      totalLoaded: this.#totalLoaded,
      totalUnloaded: this.#totalUnloaded,
      activePlugins: this.#plugins.size,
      totalCalls,
      failedCalls,
      totalExecutionTimeMs,
    };
  }

  /**
   * Handles of the loaded plugins that were granted a capability.
   *
   * @example
   * ```ts
   * import { Capability, PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * await manager.loadWat("(module)", { id: "tools", capabilities: [Capability.CallTool] });
   * console.log(manager.pluginsWithCapability(Capability.CallTool)); // [ { id: "tools" } ]
   * ```
   */
  pluginsWithCapability(capability: Capability): PluginHandle[] {
    return [...this.#plugins.values()]
      .filter((entry) => entry.plugin.capabilities.includes(capability))
      .map((entry) => entry.handle);
  }

  /**
   * The manager's events as an async iterator with a bounded buffer. The
   * manager holds a subscription, and gives it every event, until it ends:
   * the manager closes, or its reader leaves the loop (`break`, `return()`)
   * or reads it to the end; one never read on is held until the manager
   * closes.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const manager = new PluginManager(runtime);
   * const seen: string[] = [];
   * const reading = (async () => {
   *   for await (const event of manager.subscribe()) seen.push(event.type);
   * })();
   * await manager.loadWat("(module)");
   * await manager.close();
   * await reading;
   * console.log(seen); // [ "loaded", "state_changed", "unloaded" ]
   * ```
   *
   * @throws {TypeError} If the options are not an object, or name an unknown option.
   * @throws {RangeError} If `bufferSize` is not a positive integer.
   */
  subscribe(options: SubscribeOptions = {}): EventSubscription {
    const { bufferSize = 1024 } = readOptions("the subscribe options", options, [
      "bufferSize",
    ]) as SubscribeOptions;
    const subscription = new EventQueue(bufferSize, () => {
      this.#subscriptions.delete(subscription);
      this.#syncForwarding();
    });
    if (this.#closed) subscription.end();
    else this.#subscriptions.add(subscription);
    this.#syncForwarding();
    return subscription.subscription;
  }

  /**
   * Serves a live dashboard of this manager's plugins over HTTP: `/` (the
   * page), `/events` (Server-Sent Events), `/metrics` (Prometheus) and
   * `/api/plugins` (JSON). It listens on `127.0.0.1:8787` unless told
   * otherwise, and stops on `close()`, on the signal, or when the manager
   * closes.
   *
   * @example Serve on any free port
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * await using server = manager.serve({ port: 0 });
   * const plugins = await (await fetch(new URL("/api/plugins", server.url))).json();
   * console.log(server.url.hostname, plugins); // 127.0.0.1 []
   * ```
   *
   * @param options Port, hostname and signal.
   * @returns The running server: its `url`, `close()` and `finished`.
   * @throws {PluginStateError} If the manager is closed (`state` `"closed"`).
   * @throws {TypeError} On an unknown or mistyped option.
   * @throws {RangeError} If `port` is not an integer from 0 to 65535.
   * @throws {unknown} The reason of `signal` if it is already aborted (as `fetch` does).
   */
  serve(options?: ServeOptions): DashboardServer {
    if (this.#closed) {
      throw new PluginStateError("Cannot serve the dashboard: the manager is closed", {
        state: "closed",
      });
    }
    const server: DashboardServer = startDashboardServer(this, options, {
      durations: (handle) => latencyHistogramOf(this.get(handle)),
      onClose: () => this.#servers.delete(server),
    });
    this.#servers.add(server);
    return server;
  }

  get #hasListeners(): boolean {
    return this.#subscriptions.size > 0 || this.listened;
  }

  /**
   * Takes the plugins' per-call events of the types someone listens for (a
   * subscription takes them all), and only those: a plugin makes them only
   * for someone.
   */
  #syncForwarding(): void {
    const subscribed = this.#subscriptions.size > 0;
    const wanted = FORWARDED_TYPES.filter((type) => subscribed || this.listens(type));
    if (
      wanted.length === this.#forwarded.size && wanted.every((type) => this.#forwarded.has(type))
    ) return;
    this.#forwarded = new Set(wanted);
    for (const { plugin } of [...this.#plugins.values(), ...this.#unloading.keys()]) {
      tapEvents(plugin, this.#reEmit, this.#forwarded);
    }
  }

  /**
   * Re-emits a plugin's event as the manager's: one event, taken as type and
   * detail from the plugin (which builds none for it), pushed to the
   * subscriptions and dispatched to the listeners of its type.
   */
  readonly #reEmit: EventTap<PluginEventDetails> = (type, detail, plugin) => {
    const event = new PluginEvent(type, (plugin as WasmPlugin).id, detail);
    for (const subscription of this.#subscriptions) subscription.push(event);
    if (this.listens(type)) this.dispatchEvent(event);
  };

  /**
   * Adds a listener (typed for {@linkcode PluginEvent}s).
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * manager.addEventListener("loaded", (event) => console.log(`loaded ${event.pluginId}`));
   * await manager.loadWat("(module)", { id: "demo" }); // prints: loaded demo
   * ```
   */
  override addEventListener<T extends PluginEventType>(
    type: T,
    listener: ((event: PluginEvent<T>) => void) | EventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListener | null, options);
  }

  /**
   * Removes a listener added with {@linkcode addEventListener}.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using manager = new PluginManager(runtime);
   * const onLoaded = () => console.log("loaded");
   * manager.addEventListener("loaded", onLoaded);
   * manager.removeEventListener("loaded", onLoaded);
   * await manager.loadWat("(module)"); // prints nothing
   * ```
   */
  override removeEventListener<T extends PluginEventType>(
    type: T,
    listener: ((event: PluginEvent<T>) => void) | EventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListener | null, options);
  }

  #emit<T extends PluginEventType>(type: T, pluginId: string, detail: PluginEventDetails[T]): void {
    if (!this.#hasListeners) return;
    const event = new PluginEvent(type, pluginId, detail);
    for (const subscription of this.#subscriptions) subscription.push(event);
    this.dispatchEvent(event);
  }

  /**
   * Unloads every plugin and ends every subscription. Idempotent. It waits for
   * the plugins' running calls; with `{ abort: true }` it ends them, also when
   * an earlier close is still waiting for them. Loads in flight fail: their
   * start functions are ended, as `runtime.close()` ends them.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const manager = new PluginManager(runtime);
   * await manager.close();
   * ```
   */
  close(options: StopOptions = {}): Promise<void> {
    let abort: boolean;
    try {
      abort = checkStopOptions(options, "Cannot close the manager");
    } catch (err) {
      return Promise.reject(err);
    }
    if (abort) {
      // Every call ends: those of the plugins unloading (an earlier close's too), and those
      // of the loaded ones, which leave the manager now.
      for (const entry of [...this.#unloading.keys()]) void this.#joinUnload(entry, true);
      for (const { handle } of [...this.#plugins.values()]) {
        this.unload(handle, { abort: true }).catch(() => {}); // with abort, never refused
      }
    }
    // Called again, it answers when the first close is done; called from a host function of a
    // plugin it waits for, it ends that plugin's call (as the first close does).
    if (this.#closing !== undefined) this.#endOwnCalls();
    return this.#closing ??= this.#close();
  }

  /** Ends the call of every plugin whose own host function runs this: it cannot wait for it. */
  #endOwnCalls(): void {
    for (const { plugin } of [...this.#plugins.values(), ...this.#unloading.keys()]) {
      if (stopRefusal(plugin, false) !== undefined) plugin.stop({ abort: true }).catch(() => {});
    }
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // At once, before anything is awaited (a synchronous host function returns meanwhile): a
    // plugin whose own host function closes the manager cannot wait for its call: it ends it.
    this.#endOwnCalls();
    // The loads in flight end their start functions (one may be waiting for this close).
    this.#loadsEnd.abort(
      new PluginStateError("Cannot load a plugin: the manager was closed while it started", {
        state: "closed",
      }),
    );
    try {
      // A load in flight stops the plugin it made, and rejects (see #add).
      await Promise.allSettled([...this.#loading]);
      const results = await Promise.allSettled(
        [...this.#plugins.values()].map(({ handle }) => this.unload(handle)),
      );
      // And so do the unloads begun before the close: their plugins' events come first.
      await Promise.allSettled([...this.#unloading.values()]);
      const failure = results.find((result) => result.status === "rejected");
      if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
    } finally {
      for (const subscription of [...this.#subscriptions]) subscription.end();
      // Last: their `/events` clients get the unloads' events before the end.
      await Promise.allSettled([...this.#servers].map((server) => server.close()));
    }
  }

  /**
   * Closes the manager; `await using manager = …` calls this.
   *
   * @example
   * ```ts
   * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * {
   *   await using manager = new PluginManager(runtime);
   * } // every plugin unloaded here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The MoFA name of {@linkcode PluginManager}.
 *
 * @example
 * ```ts
 * import { WasmPluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new WasmPluginManager(runtime);
 * ```
 */
export const WasmPluginManager: typeof PluginManager = PluginManager;
/** The MoFA name of {@linkcode PluginManager}, as a type. */
export type WasmPluginManager = PluginManager;

/** Whether `source` is bytes rather than a compiled module: a buffer or a view of one. */
function isBytesLike(source: unknown): boolean {
  return ArrayBuffer.isView(source) || source instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer === "function" && source instanceof SharedArrayBuffer);
}

/**
 * Whether `bytes` start as WAT text does: `(` or a `;` comment, after
 * whitespace and an optional byte order mark.
 */
function looksLikeWat(bytes: Uint8Array): boolean {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = start; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x28 || byte === 0x3b;
  }
  return false;
}

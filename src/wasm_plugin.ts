/**
 * A running plugin: one instance of a compiled module with its own memory,
 * limits, capabilities and metrics.
 *
 * @module
 */

import {
  type AheadCall,
  type BytesCall,
  type CallBudget,
  type PluginBackend,
  type PluginBudget,
  resolveCallBudget,
  withCommandOutput,
} from "./backend/mod.ts";
import type { CallOptions } from "./call_options.ts";
import type { Capability } from "./capability.ts";
import {
  InvalidFunctionError,
  PluginStateError,
  TimeoutError,
  TypeMismatchError,
  WasmError,
} from "./errors.ts";
import { assertNotInHostCallOf } from "./host/mod.ts";
import { MetricsRecorder } from "./observe/mod.ts";
import type { PluginManifest } from "./plugin_manifest.ts";
import type { RunOptions, RunResult } from "./command_run.ts";
import type { PluginMetrics } from "./plugin_metrics.ts";
import type { PluginState } from "./plugin_state.ts";
import type { ResourceLimits } from "./resource_limits.ts";
import type { Isolation } from "./runtime_config.ts";
import { checkArguments, type Signature } from "./compile/mod.ts";
import {
  assertKnownKeys,
  CallQueue,
  describeValue,
  isEmptyTurn,
  type LeaveOptions,
  optionField,
  readOptions,
  thrownText,
} from "./common/mod.ts";
import { CountedEventTarget } from "./_listener_count.ts";
import { postWaitingAhead, retractWaitingAhead, WaitingCall } from "./_waiting_call.ts";
import { PluginEvent, type PluginEventDetails, type PluginEventType } from "./plugin_event.ts";
import { parseJsonOutput } from "./_json_output.ts";

/**
 * Options of `plugin.stop()` and `manager.unload()`.
 *
 * @example
 * ```ts
 * import type { StopOptions } from "@wasmplug/wasmplug";
 * const now: StopOptions = { abort: true };
 * ```
 */
export interface StopOptions {
  /**
   * End the running call (it rejects with a `PluginStateError`) instead of
   * waiting for it.
   *
   * @default {false}
   */
  abort?: boolean;
}

/**
 * Checks the options of `stop()` (and of the manager's `unload()`, before it
 * lets go of the plugin): an object whose only key is a boolean `abort`.
 * Returns whether they ask to abort.
 *
 * @param subject What refuses them, for the message (e.g. `Cannot stop plugin "p"`).
 * @throws {TypeError} If they are not an object, have another key, or `abort` is no boolean.
 */
export function checkStopOptions(options: unknown, subject: string): boolean {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${subject}: expected options { abort? }, received ${describeValue(options)}`,
    );
  }
  assertKnownKeys("the stop options", options, ["abort"]);
  const abort = optionField(options, "abort") as StopOptions["abort"];
  if (abort !== undefined && typeof abort !== "boolean") {
    throw new TypeError(`${subject}: 'abort' must be a boolean, received ${describeValue(abort)}`);
  }
  return abort === true;
}

/**
 * How far along its line a plugin looks for calls to post ahead, or to take
 * back: those posted are always the first few (a worker's lanes but one).
 */
const AHEAD_SCAN = 16;

/** The keys of `RunOptions`: the call options and `stdin`. */
const RUN_OPTION_KEYS = ["stdin", "signal", "timeoutMs", "fuel"];

/** Everything a plugin is made of; built by the runtime. */
export interface PluginInit {
  readonly id: string;
  readonly name: string;
  readonly capabilities: readonly Capability[];
  readonly limits: Readonly<ResourceLimits>;
  /** Whether the module counts fuel (`execution.fuelMetering`). */
  readonly fuelMetered: boolean;
  /** Where the instance runs, for telemetry. */
  readonly isolation: Isolation;
  readonly backend: PluginBackend;
  readonly signatures: ReadonlyMap<string, Signature>;
  readonly manifest: PluginManifest | null;
  /** Who the plugin's host calls are made for: see `_host_call_scope.ts`. */
  readonly hostScope: object;
  /** What `host_log`'s rate limit dropped (kept by the host services). */
  readonly logStats: { readonly droppedRecords: number };
  readonly onClose: () => void;
}

const NO_RESULTS: readonly string[] = [];
const I32: readonly string[] = ["i32"];
/** The parameters of a bytes-ABI export, and of `dealloc`: a pointer and a length. */
const PTR_LEN: readonly string[] = ["i32", "i32"];
const I64: readonly string[] = ["i64"];
const F32: readonly string[] = ["f32"];
const F64: readonly string[] = ["f64"];

/** Whether a plugin in `state` takes calls ("created" or "ready"; compared, not looked up). */
function isCallable(state: PluginState): boolean {
  return state === "ready" || state === "created";
}

const utf8 = new TextEncoder();

let construct: (init: PluginInit) => WasmPlugin;
let refusal: (plugin: WasmPlugin, abort: boolean) => PluginStateError | undefined;
let initializeRan: (plugin: WasmPlugin) => Promise<boolean>;
let waitable: (plugin: WasmPlugin, action: string) => void;

const stopWatchers = new WeakMap<WasmPlugin, () => void>();

/**
 * Calls `onStopped` once `plugin` has stopped, whoever stopped it (its
 * manager learns of a stop made behind its back: `runtime.close()`, or the
 * plugin's own `stop()`); `null` to stop watching.
 */
export function watchStop(plugin: WasmPlugin, onStopped: (() => void) | null): void {
  if (onStopped === null) stopWatchers.delete(plugin);
  else stopWatchers.set(plugin, onStopped);
}

/**
 * Why `plugin.stop({ abort })` would be refused, if it would: made from the
 * running call's own host function without `abort` (it would wait for
 * itself). For its manager, which checks before it lets the plugin go.
 */
export function stopRefusal(plugin: WasmPlugin, abort: boolean): PluginStateError | undefined {
  return refusal(plugin, abort);
}

/**
 * `plugin.initialize()`, resolving to whether this call ran the
 * initializers (not when the plugin was ready already, or became ready by
 * another call's): for its manager, which emits `initialized` once.
 */
export function initializeOnce(plugin: WasmPlugin): Promise<boolean> {
  return initializeRan(plugin);
}

/**
 * Throws a `PluginStateError` when called from one of `plugin`'s own host
 * functions while it runs: waiting for the plugin there would wait for the
 * call that waits for the host function (for its manager, before it joins
 * an initialization in progress).
 */
export function assertWaitableFor(plugin: WasmPlugin, action: string): void {
  waitable(plugin, action);
}

/**
 * A plugin instance. Create one with `runtime.createPlugin()` (or
 * `createPluginFromWat`/`createPluginWithLinker`); release it with `stop()` or
 * `await using`.
 *
 * Calls to one plugin run one at a time, in order; a failed call leaves the
 * plugin usable for the next one.
 *
 * It is an `EventTarget` dispatching {@linkcode PluginEvent}s about itself:
 * `state_changed`, `executed` after each call, `error` after a failed one,
 * and `anomaly` when a `PluginManager` watches its calls. They are
 * only made while someone listens.
 *
 * @example The guide's math plugin
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using plugin = await runtime.createPluginFromWat(`
 *   (module
 *     (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
 * `, { name: "math-plugin" });
 * await plugin.initialize();
 * console.log(`10 + 5 = ${await plugin.callI32("add", [10, 5])}`); // 10 + 5 = 15
 * ```
 */
export class WasmPlugin extends CountedEventTarget<PluginEventDetails> implements AsyncDisposable {
  /** Unique id of this plugin. */
  readonly id: string;
  /** Human-readable name. */
  readonly name: string;
  /** The capabilities granted to this plugin. */
  readonly capabilities: readonly Capability[];
  /** The limits in force for this plugin (runtime limits with the plugin's overrides). */
  readonly limits: Readonly<ResourceLimits>;
  /** The plugin's manifest (embedded or from the config), or `null`. */
  readonly manifest: PluginManifest | null;

  readonly #backend: PluginBackend;
  /** The backend's `deadlineFromStart`: whether a result after the call's timeout is late. */
  readonly #lateAfterTimeout: boolean;
  /** The running call's signal (see {@linkcode #timesOut}). */
  #runningSignal: AbortSignal | undefined;
  readonly #hostScope: object;
  readonly #logStats: { readonly droppedRecords: number };
  readonly #signatures: ReadonlyMap<string, Signature>;
  readonly #metrics: MetricsRecorder;
  /** The budget of a call without options, and the most a call may ask for. */
  readonly #budget: PluginBudget;
  /** Aborted by `stop({ abort: true })`: ends the running call. */
  readonly #abort = new AbortController();
  readonly #onClose: () => void;
  #state: PluginState = "created";
  /** The state to return to after a call. */
  #restState: PluginState = "created";
  /**
   * One caller at a time: the running call, the initializer or a pause holds
   * the turn; callers made meanwhile wait for it, first come first served.
   */
  readonly #queue = new CallQueue();
  /** The turn held by the running call or by a pause, for `#release()`. */
  #turn: Disposable | undefined;
  /**
   * How many times the turn was taken (by a call, an initializer or a
   * pause): the queue hands out one and the same turn object, so this is
   * what tells one holder from the next.
   */
  #holds = 0;
  /**
   * Whether {@linkcode #turn} is held by a call that threw before its own
   * handling could hand it on: only the caller's stack running out midway
   * does that (a listener that calls again from `executed`, deep recursion
   * in a host function). Without it every later call waited for ever. The
   * call only marks it (a call to anything may overflow the stack again);
   * the next caller frees it ({@linkcode #freeStranded}).
   */
  #stranded = false;
  #stopping: Promise<void> | undefined;
  /** Whether `state_changed` events are listened to (two per call). */
  #statesListened = false;
  /** Whether `executed` or `error` events are listened to. */
  #callsListened = false;

  static {
    construct = (init) => new WasmPlugin(init);
    refusal = (plugin, abort) => plugin.#stopRefusal(abort);
    initializeRan = (plugin) => plugin.#initialize();
    waitable = (plugin, action) => plugin.#assertWaitable(action);
  }

  private constructor(init: PluginInit) {
    super((target) => (target as WasmPlugin).#listenersChanged());
    this.id = init.id;
    this.name = init.name;
    this.capabilities = Object.freeze([...init.capabilities]);
    this.limits = init.limits;
    this.manifest = init.manifest;
    this.#backend = init.backend;
    this.#lateAfterTimeout = init.backend.deadlineFromStart;
    this.#hostScope = init.hostScope;
    this.#logStats = init.logStats;
    this.#signatures = init.signatures;
    this.#onClose = init.onClose;
    this.#budget = {
      budget: Object.freeze({
        timeoutMs: init.limits.maxExecutionTimeMs,
        fuel: init.limits.maxFuel,
        signal: this.#abort.signal,
      }),
      fuelMetered: init.fuelMetered,
    };
    this.#metrics = new MetricsRecorder(this, {
      id: init.id,
      name: init.name,
      isolation: init.isolation,
      fuelMetered: init.fuelMetered,
      hostScope: init.hostScope,
    });
    this.#metrics.observeMemory(init.backend.memoryBytes());
  }

  /**
   * The current lifecycle state.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)");
   * console.log(plugin.state); // created
   * ```
   */
  get state(): PluginState {
    // A call that stranded its turn runs nothing: the plugin is what it was before it.
    return this.#stranded && this.#state === "running" ? this.#restState : this.#state;
  }

  #setState(to: PluginState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    if (this.#statesListened) this.#emit("state_changed", { from, to });
  }

  /**
   * Adds a listener of this plugin's events (typed for {@linkcode PluginEvent}s).
   *
   * @example Log every call
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat('(module (func (export "f")))');
   * plugin.addEventListener("executed", (event) => {
   *   console.log(event.detail.function, event.detail.success); // f true
   * });
   * await plugin.callVoid("f");
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
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat('(module (func (export "f")))');
   * const onCall = () => console.log("called");
   * plugin.addEventListener("executed", onCall);
   * plugin.removeEventListener("executed", onCall);
   * await plugin.callVoid("f"); // prints nothing
   * ```
   */
  override removeEventListener<T extends PluginEventType>(
    type: T,
    listener: ((event: PluginEvent<T>) => void) | EventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListener | null, options);
  }

  #listenersChanged(): void {
    this.#statesListened = this.wants("state_changed");
    this.#callsListened = this.wants("executed") || this.wants("error");
  }

  /** Hands an event to the tap (a manager's) if it takes it, then to the listeners. */
  #emit<T extends PluginEventType>(type: T, detail: PluginEventDetails[T]): void {
    this.toTap(type, detail);
    if (this.listens(type)) this.dispatchEvent(new PluginEvent(type, this.id, detail));
  }

  /** The events of a call that ended: `executed`, then `error` if it failed. */
  #emitCall(fn: string, durationMs: number, error: unknown): void {
    const success = error === undefined;
    if (this.wants("executed")) {
      this.#emit("executed", {
        function: fn,
        durationMs,
        success,
        ...(success ? {} : { error: thrownText(error) }),
      });
    }
    if (!success && this.wants("error")) this.#emit("error", { error, function: fn });
  }

  /** Feeds the call to the anomaly detector a manager set, and emits what it found. */
  #detectAnomalies(fn: string, durationMs: number, error: unknown): void {
    const found = this.#metrics.detector!.observe(
      fn,
      durationMs,
      error === undefined,
      this.#metrics.lastFuelUsed,
      this.#metrics.currentMemoryBytes,
    );
    if (found === null) return;
    for (const detail of found) this.#emit("anomaly", detail);
  }

  /**
   * Runs the module's initializers: `_initialize` (WASI reactors) when
   * exported, then `init` when exported. The plugin is `ready` afterwards, or
   * in `error` state if an initializer failed. Calls made meanwhile wait for
   * it, then run (or fail with a `PluginStateError` if it failed). A worker
   * plugin's instance replaced after a crash or a call that would not stop
   * runs them again before it serves.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module (func (export \"init\")))");
   * await plugin.initialize();
   * console.log(plugin.state); // ready
   * ```
   *
   * @throws {PluginStateError} If the plugin is stopping, stopped or failed, or paused while
   * it waited. (An initialized plugin resolves at once: the initializers run once.)
   * @throws {WasmError} Whatever an initializer failed with.
   */
  async initialize(): Promise<void> {
    await this.#initialize();
  }

  /** {@linkcode initialize}; resolves to whether this call ran the initializers. */
  async #initialize(): Promise<boolean> {
    if (!this.#needsInitializing()) return false;
    this.#assertWaitable("initialize");
    const taken = this.#queue.take();
    // Taken at once when idle; else a call handed the turn before runs first.
    using turn = taken instanceof Promise ? await taken : taken;
    if (!this.#needsInitializing()) return false;
    if (isEmptyTurn(turn)) throw pausedWhileWaiting("initialize", this.name);
    this.#setState("initializing");
    const budget = this.#budget.budget;
    this.#runningSignal = undefined;
    let start = NaN;
    const ran: string[] = [];
    try {
      for (const initializer of ["_initialize", "init"]) {
        const signature = this.#signatures.get(initializer);
        if (signature === undefined || signature.params.length > 0) continue;
        ran.push(initializer);
        start = performance.now();
        const result = this.#backend.invoke(initializer, [], budget, start);
        if (result instanceof Promise) await result;
        // Ended after its deadline: failed (inline, see #finish).
        if (this.#initializerLate(start, budget.timeoutMs, undefined)) {
          throw new TimeoutError(undefined, { timeoutMs: budget.timeoutMs });
        }
      }
    } catch (err) {
      this.#observeMemory();
      // Calls that waited for the initialization fail with the state as the turn passes
      // down the line (and a pending stop() goes on).
      this.#setState("error");
      if (this.#stopping !== undefined && this.#abort.signal.aborted) {
        throw this.#abort.signal.reason;
      }
      if (this.#initializerLate(start, budget.timeoutMs, err)) {
        throw new TimeoutError(undefined, { timeoutMs: budget.timeoutMs, cause: err });
      }
      throw err;
    }
    this.#backend.keepInitialized?.(ran);
    // What the initializers grew shows in the metrics now, not after the next call.
    this.#observeMemory();
    this.#restState = "ready";
    this.#setState("ready");
    return true;
  }

  /** Notes the memory size outside a call (after the initializers). */
  #observeMemory(): void {
    try {
      this.#metrics.observeMemory(this.#backend.memoryBytes());
    } catch {
      // A backend closed by a stop has no memory to show.
    }
  }

  /** Whether an initializer started at `start` ended late (inline: see {@linkcode #finish}). */
  #initializerLate(start: number, timeoutMs: number, error: unknown): boolean {
    return this.#lateAfterTimeout && performance.now() - start > timeoutMs &&
      this.#timesOut(error);
  }

  /**
   * When a call begun at `start` began running: later if its worker was
   * started for it (it was parked), which does not count in its time.
   */
  #ranSince(start: number): number {
    const readyAt = this.#backend.readyAt;
    return readyAt > start ? readyAt : start;
  }

  /**
   * Refuses to wait for the plugin's turn from one of its own host functions
   * (the call it is part of holds the turn: each would wait for the other
   * until the call's time limit).
   */
  #assertWaitable(action: string): void {
    if (this.#state !== "running" && this.#state !== "initializing") return;
    assertNotInHostCallOf(this.#hostScope, `Cannot ${action} plugin "${this.name}"`, "the plugin");
  }

  /**
   * False when the plugin is ready already; throws unless it is `created`.
   * While a call or another initialization runs, the state it goes back to
   * decides: `initialize()` waits in line behind it (in a worker a call
   * started before `initialize()` could still be running: it was refused).
   * A stopping plugin refuses: an `initialize()` that waited behind a call
   * must not run the initializers once `stop()` was asked for.
   */
  #needsInitializing(): boolean {
    if (this.#stopping !== undefined) this.#assertUsable("initialize");
    const busy = this.#state === "running" || this.#state === "initializing";
    const state = busy ? this.#restState : this.#state;
    if (state === "ready") return false;
    if (state !== "created") {
      throw new PluginStateError(
        `Cannot initialize plugin "${this.name}": the plugin is ${this.#state}`,
        { state: this.#state },
      );
    }
    return true;
  }

  /**
   * Calls an export that returns one i32.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (func (export "mul") (param i32 i32) (result i32) local.get 0 local.get 1 i32.mul))',
   * );
   * console.log(await plugin.callI32("mul", [6, 7])); // 42
   * ```
   *
   * @param name The export.
   * @param args One argument per parameter, checked against the signature.
   * @param options Abort signal, time and fuel budgets.
   * @throws {InvalidFunctionError} If no such function is exported.
   * @throws {TypeMismatchError} If the arguments or the result type do not match.
   * @throws {TrapError} If the guest trapped.
   */
  callI32(
    name: string,
    args: readonly number[] = [],
    options?: CallOptions,
  ): Promise<number> {
    return this.#promisedCall(name, args, options, I32) as Promise<number>;
  }

  /**
   * Calls an export that returns one i64, as a `bigint`.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (func (export "twice") (param i64) (result i64) local.get 0 i64.const 2 i64.mul))',
   * );
   * console.log(await plugin.callI64("twice", [2n ** 40n])); // 2199023255552n
   * ```
   */
  callI64(
    name: string,
    args: readonly (bigint | number)[] = [],
    options?: CallOptions,
  ): Promise<bigint> {
    return this.#promisedCall(name, args, options, I64) as Promise<bigint>;
  }

  /**
   * Calls an export that returns one f32.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (func (export "half") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul))',
   * );
   * console.log(await plugin.callF32("half", [3])); // 1.5
   * ```
   */
  callF32(
    name: string,
    args: readonly number[] = [],
    options?: CallOptions,
  ): Promise<number> {
    return this.#promisedCall(name, args, options, F32) as Promise<number>;
  }

  /**
   * Calls an export that returns one f64.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (func (export "sqrt") (param f64) (result f64) local.get 0 f64.sqrt))',
   * );
   * console.log(await plugin.callF64("sqrt", [2])); // 1.4142135623730951
   * ```
   */
  callF64(
    name: string,
    args: readonly number[] = [],
    options?: CallOptions,
  ): Promise<number> {
    return this.#promisedCall(name, args, options, F64) as Promise<number>;
  }

  /**
   * Calls an export that returns nothing.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (memory (export "memory") 1) (func (export "write_byte") (param i32 i32) local.get 0 local.get 1 i32.store8))',
   * );
   * await plugin.callVoid("write_byte", [0, 42]);
   * console.log((await plugin.readMemory(0, 1))[0]); // 42
   * ```
   */
  callVoid(
    name: string,
    args: readonly unknown[] = [],
    options?: CallOptions,
  ): Promise<void> {
    return this.#promisedCall(name, args, options, NO_RESULTS) as Promise<void>;
  }

  /**
   * Calls any export and returns all its results as an array (multi-value).
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(
   *   '(module (func (export "swap") (param i32 i64) (result i64 i32) local.get 1 local.get 0))',
   * );
   * console.log(await plugin.call("swap", [1, 2n])); // [ 2n, 1 ]
   * ```
   */
  async call(
    name: string,
    args: readonly unknown[] = [],
    options?: CallOptions,
  ): Promise<unknown[]> {
    const result = await this.#call(name, args, options, null);
    const count = this.#signatures.get(name)!.results.length;
    if (count === 0) return [];
    if (count === 1) return [result];
    return [...(result as unknown[])];
  }

  /**
   * Copies `input` into the plugin's memory (through its exported `alloc` or
   * `malloc`), calls `fn(ptr, len) -> i32` and returns that i32; the buffer is
   * freed with `dealloc`/`free` when exported.
   *
   * @example The guide's `process_data(ptr, len)`
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(`(module
   *   (memory (export "memory") 1)
   *   (global $next (mut i32) (i32.const 1024))
   *   (func (export "alloc") (param $n i32) (result i32)
   *     (global.get $next) (global.set $next (i32.add (global.get $next) (local.get $n))))
   *   (func (export "process_data") (param i32 i32) (result i32) local.get 1))`);
   * console.log(await plugin.callWithBytes("process_data", new Uint8Array([1, 2, 3]))); // 3
   * ```
   */
  callWithBytes(fn: string, input: Uint8Array, options?: CallOptions): Promise<number> {
    return this.#promisedBytesCall(fn, input, options, false) as Promise<number>;
  }

  /**
   * Copies `input` in as {@linkcode callWithBytes} does, calls
   * `fn(ptr, len) -> i64` whose result packs `(out_ptr << 32) | out_len`, and
   * returns a copy of that output (freed in the guest when it exports `dealloc`).
   *
   * @example An echo plugin
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat(`(module
   *   (memory (export "memory") 1)
   *   (func (export "alloc") (param i32) (result i32) i32.const 1024)
   *   (func (export "echo") (param i32 i32) (result i64)
   *     (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
   *             (i64.extend_i32_u (local.get 1)))))`);
   * console.log(await plugin.callBytes("echo", new Uint8Array([7, 8]))); // Uint8Array(2) [ 7, 8 ]
   * ```
   */
  callBytes(fn: string, input: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    return this.#promisedBytesCall(fn, input, options, true) as Promise<Uint8Array>;
  }

  /**
   * {@linkcode callBytes} with JSON-encoded UTF-8 on both sides.
   *
   * The output is parsed on the host's thread once the call has ended, so
   * outside its deadline: 7-20 ms per MB of common JSON, up to 180 ms per
   * MB of objects whose keys all differ. An
   * output whose parse would take more host memory than 16 times what
   * `maxMemoryPages` lets the plugin hold (at least 64 MiB, at most an
   * eighth of the engine's heap limit; an array or
   * object takes some 60 bytes, so a deeply nested one up to 29 times its
   * size), or nested more than 10 000 deep, is refused with a
   * `ResourceLimitError` before it is parsed; take such output with
   * `callBytes`. The output may start with a byte order mark.
   *
   * @example
   * ```ts ignore
   * const reply = await plugin.callJson("handle", { question: "size?" });
   * ```
   *
   * @throws {TypeMismatchError} If `value` cannot be serialized or the output is not UTF-8 JSON.
   * @throws {ResourceLimitError} If the output's parse would take more heap than that.
   */
  async callJson(fn: string, value: unknown, options?: CallOptions): Promise<unknown> {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (cause) {
      throw new TypeMismatchError(`Cannot call "${fn}": the argument is not JSON-serializable`, {
        cause,
      });
    }
    if (text === undefined) {
      throw new TypeMismatchError(
        `Cannot call "${fn}": expected a JSON-serializable argument, received ${
          describeValue(value)
        }`,
      );
    }
    return await this.#promisedBytesCall(
      fn,
      utf8.encode(text),
      options,
      true,
      (output) => parseJsonOutput(fn, output as Uint8Array, this.limits.maxMemoryPages),
    );
  }

  /**
   * Runs the module as a WASI command: `_start` in a fresh instance of the
   * module, with `stdin`, under the call's budgets. The command's
   * `proc_exit` code is the result, not an error. Needs `Capability.Wasi`.
   *
   * @example
   * ```ts ignore
   * const { exitCode, stdout } = await plugin.run({ stdin: new TextEncoder().encode("hi\n") });
   * ```
   *
   * @throws {InvalidFunctionError} If the module exports no `_start` (it is not a command).
   * @throws {WasmError} If the command traps or hits a limit.
   */
  async run(options: RunOptions = {}): Promise<RunResult> {
    // As any call: its options, input and export checked and its input copied as it is made
    // (a failure is the call's, counted), its signal taking it out of the line, and a refusal
    // counting no fuel and no running state.
    const prepared = attempt((): PreparedCall<Uint8Array> => {
      const { stdin = new Uint8Array(), ...callOptions } = readOptions(
        "the run options",
        options,
        RUN_OPTION_KEYS,
      ) as RunOptions;
      if (!(stdin instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot run the command: 'stdin' must be a Uint8Array, received ${describeValue(stdin)}`,
        );
      }
      if (!this.#signatures.has("_start")) {
        throw new InvalidFunctionError(
          `Cannot run plugin "${this.name}": it exports no "_start", so it is not a WASI command`,
          { functionName: "_start" },
        );
      }
      return {
        request: stdin.slice(),
        budget: resolveCallBudget(callOptions, this.#budget),
        signal: callSignal(callOptions),
      };
    });
    return await this.#acquireThen("_start", prepared, COMMAND) as RunResult;
  }

  /**
   * Copies bytes out of the plugin's memory (the export named `memory`, else
   * its only exported memory). It acts at once, also while the plugin's
   * guest waits on a host function (which may so read what its caller
   * points it to); in a worker whose guest runs, it waits for that call.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat('(module (memory (export "memory") 1) (data (i32.const 8) "hi"))');
   * console.log(new TextDecoder().decode(await plugin.readMemory(8, 2))); // hi
   * ```
   *
   * @throws {MemoryOutOfBoundsError} If the range is outside memory, or there is no memory.
   * @throws {TypeError} If the offset or length is not a number.
   * @throws {PluginStateError} If the plugin is stopped.
   * @throws {InstantiationError} In a worker replaced after a crash, if its fresh instance
   * fails to start (its start function, or the initializers run again).
   */
  async readMemory(offset: number, length: number): Promise<Uint8Array> {
    this.#assertUsable("read the memory of");
    checkNumber("read memory", "offset", offset);
    checkNumber("read memory", "length", length);
    return await this.#backend.readMemory(offset, length);
  }

  /**
   * Copies bytes into the plugin's memory. It acts at once, also while the
   * plugin's guest waits on a host function (which may so write its answer
   * where its caller asked); in a worker whose guest runs, it waits for that call.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat('(module (memory (export "memory") 1))');
   * await plugin.writeMemory(0, new Uint8Array([1, 2, 3]));
   * ```
   *
   * @throws {MemoryOutOfBoundsError} If the range is outside memory, or there is no memory.
   * @throws {TypeError} If the offset is not a number or `data` is not a `Uint8Array`.
   * @throws {PluginStateError} If the plugin is stopped.
   * @throws {InstantiationError} In a worker replaced after a crash, if its fresh instance
   * fails to start (its start function, or the initializers run again).
   */
  async writeMemory(offset: number, data: Uint8Array): Promise<void> {
    this.#assertUsable("write the memory of");
    checkNumber("write memory", "offset", offset);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot write memory: expected a Uint8Array, received ${describeValue(data)}`,
      );
    }
    await this.#backend.writeMemory(offset, data);
  }

  /**
   * A snapshot of this plugin's metrics.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)");
   * console.log((await plugin.metrics()).callCount); // 0
   * ```
   */
  metrics(): Promise<PluginMetrics> {
    return Promise.resolve(this.#metrics.snapshot(this.#logStats.droppedRecords));
  }

  /**
   * Stops accepting calls until {@linkcode resume}; waits for the running call
   * and the callers that were waiting already. Calls made meanwhile are
   * refused with a `PluginStateError` once the plugin is paused, as later
   * ones are at once.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)");
   * await plugin.pause();
   * console.log(plugin.state); // paused
   * plugin.resume();
   * ```
   */
  async pause(): Promise<void> {
    this.#assertUsable("pause");
    if (this.#stranded) this.#freeStranded();
    if (this.#state === "paused") return;
    this.#assertWaitable("pause");
    // The pause takes its turn after the running call and the callers already waiting, and
    // holds it until resume(): the callers behind it are then refused, as calls to a paused
    // plugin are (they waited with no deadline for a resume() that may never come). A pause
    // already waiting for its turn pauses the plugin for this caller too (a second turn in
    // line would pause it again after resume()).
    // A pause after a resume() that cancelled the waiting one wants the plugin paused again.
    this.#pauseCancelled = false;
    if (this.#pausing === undefined) {
      const taken = this.#queue.take();
      if (!(taken instanceof Promise)) return this.#holdPause(taken);
      this.#pausing = taken.then((turn) => {
        this.#pausing = undefined;
        if (this.#pauseCancelled) {
          turn[Symbol.dispose]();
          return;
        }
        this.#holdPause(turn);
      });
    }
    await this.#pausing;
  }

  /** The pause waiting for its turn, if one waits (see {@linkcode pause}). */
  #pausing: Promise<void> | undefined;
  /** {@linkcode resume} came before the waiting pause had its turn: it lets the turn go. */
  #pauseCancelled = false;

  /** Pauses the plugin with the turn a pause took, unless it stopped meanwhile. */
  #holdPause(turn: Disposable): void {
    try {
      this.#assertUsable("pause");
    } catch (err) {
      turn[Symbol.dispose]();
      throw err;
    }
    this.#turn = turn;
    this.#holds++;
    // Woken without the turn, they are refused (see #hold), even if a `state_changed` listener
    // resumes the plugin at once.
    this.#queue.wakeAll();
    this.#setState("paused");
  }

  /**
   * Accepts calls again after {@linkcode pause}. A pause still waiting for
   * the running call is cancelled: it resolves without pausing the plugin.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * await using plugin = await runtime.createPluginFromWat("(module)");
   * await plugin.pause();
   * plugin.resume();
   * console.log(plugin.state); // created
   * ```
   */
  resume(): void {
    if (this.#state !== "paused" && this.#pausing !== undefined && this.#stopping === undefined) {
      // A pause still waiting behind a call: it will not pause the plugin (in a worker, where
      // the call was still running, resume() threw and the plugin then paused for good).
      this.#pauseCancelled = true;
      return;
    }
    if (this.#state !== "paused") {
      throw new PluginStateError(
        `Cannot resume plugin "${this.name}": the plugin is ${this.#state}`,
        { state: this.#state },
      );
    }
    this.#setState(this.#restState);
    this.#release();
  }

  /**
   * Waits for the running call, then releases the instance. Idempotent. From
   * one of the plugin's own host functions it cannot wait for the call it is
   * part of: without `{ abort: true }` it is refused with a
   * `PluginStateError`; with it, it ends that call.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const plugin = await runtime.createPluginFromWat("(module)");
   * await plugin.stop();
   * console.log(plugin.state); // stopped
   * ```
   *
   * @throws {PluginStateError} (as a rejection) If called from one of the plugin's own host
   *   functions without `{ abort: true }`.
   */
  stop(options: StopOptions = {}): Promise<void> {
    let abort: boolean;
    try {
      abort = checkStopOptions(options, `Cannot stop plugin "${this.name}"`);
    } catch (err) {
      return Promise.reject(err);
    }
    const refused = this.#stopRefusal(abort);
    if (refused !== undefined) return Promise.reject(refused);
    // A turn a call left stranded (see #stranded) would be waited for ever.
    if (this.#stranded) this.#freeStranded();
    const busy = this.#state === "running" || this.#state === "initializing";
    if (abort && busy && !this.#abort.signal.aborted) {
      this.#abort.abort(
        new PluginStateError(
          `The call to plugin "${this.name}" was aborted: the plugin is being stopped`,
          { state: "stopping" },
        ),
      );
    }
    // A worker started again for a memory access, running its initializers, ends as a call.
    if (abort) {
      this.#backend.abortStart?.(
        new PluginStateError(`Plugin "${this.name}" was stopped while its worker started`, {
          state: "stopping",
        }),
      );
    }
    if (this.#stopping === undefined) {
      // Calls posted ahead are taken back: the calls waiting are refused, as ever.
      retractWaitingAhead(this.#queue.waitingTags(AHEAD_SCAN));
      this.#stopping = this.#stop();
    }
    return this.#stopping;
  }

  /** See {@linkcode stopRefusal}. */
  #stopRefusal(abort: boolean): PluginStateError | undefined {
    // A worker's start in progress (its initializers run again) waits for its host functions.
    const starting = this.#backend.inStartHostCall?.() === true;
    const busy = this.#state === "running" || this.#state === "initializing" || starting;
    if (!busy || abort || this.#abort.signal.aborted) return undefined;
    if (starting) {
      return new PluginStateError(
        `Cannot stop plugin "${this.name}" without { abort: true } from one of its own host functions: its worker's start is waiting for that host function to return`,
        { state: "running" },
      );
    }
    try {
      assertNotInHostCallOf(
        this.#hostScope,
        `Cannot stop plugin "${this.name}" without { abort: true }`,
        "its running call",
      );
    } catch (err) {
      return err as PluginStateError;
    }
    return undefined;
  }

  async #stop(): Promise<void> {
    // A running call or initializer ends first (stop({ abort: true }) ends it sooner), and
    // the callers waiting before this stop() are refused in turn.
    const turn = this.#state === "running" || this.#state === "initializing"
      ? await this.#queue.take()
      : undefined;
    this.#setState("stopped");
    // The callers still in line (behind it, or behind a pause) are refused at once.
    this.#queue.wakeAll();
    turn?.[Symbol.dispose]();
    try {
      await this.#backend.close();
    } finally {
      this.#onClose();
      stopWatchers.get(this)?.();
    }
  }

  /**
   * Stops the plugin; `await using plugin = …` calls this.
   *
   * @example
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * {
   *   await using plugin = await runtime.createPluginFromWat("(module)");
   * } // stopped here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #assertUsable(action: string): void {
    const error = this.#unusable(action);
    if (error !== undefined) throw error;
  }

  /** Why the plugin cannot `action` when it is stopping, stopped or failed; else `undefined`. */
  #unusable(action: string): PluginStateError | undefined {
    if (this.#state !== "stopped" && this.#state !== "error" && this.#stopping === undefined) {
      return undefined;
    }
    const state = this.#stopping !== undefined && this.#state !== "stopped"
      ? "stopping"
      : this.#state;
    return new PluginStateError(`Cannot ${action} plugin "${this.name}": the plugin is ${state}`, {
      state,
    });
  }

  /**
   * Takes the plugin's turn at once if it is idle and nobody was handed the
   * turn before: the fast path of every call, with no promise.
   */
  #takeIfIdle(): boolean {
    if (this.#stranded) this.#freeStranded();
    if (!isCallable(this.#state) || this.#stopping !== undefined) return false;
    const turn = this.#queue.tryTake();
    if (turn === undefined) return false;
    this.#turn = turn;
    this.#holds++;
    return true;
  }

  /**
   * The turn of a caller the fast path could not serve: it waits behind the
   * running call (or initializer) and the callers already waiting. Refused
   * at once: a host function calling back into its own plugin (it would
   * wait for itself), and any call to a plugin that is paused, stopping,
   * stopped or failed.
   */
  #waitTurn(
    name: string,
    waiting?: WaitingCall,
    leave?: LeaveOptions,
  ): Disposable | Promise<Disposable> {
    if (this.#stranded) this.#freeStranded();
    // A plugin being stopped takes no more calls, whatever kind they are.
    if (this.#stopping !== undefined) this.#assertUsable(`call "${name}" on`);
    if (this.#state === "running" || this.#state === "initializing") {
      assertNotInHostCallOf(
        this.#hostScope,
        `Cannot call "${name}" on plugin "${this.name}"`,
        "the plugin",
      );
    } else if (!isCallable(this.#state) || this.#stopping !== undefined) {
      this.#refuse(name);
    }
    const taken = this.#queue.take(waiting, leave);
    if (waiting !== undefined && taken instanceof Promise) this.#postAhead();
    return taken;
  }

  /**
   * Keeps the turn {@linkcode #waitTurn} gave if the plugin can still serve
   * `name` (else passes it on and throws why); with `take`, marks the plugin
   * running. Call it in the same turn of the event loop as the call it
   * admits, so nothing changes the state in between.
   */
  #hold(name: string, turn: Disposable, take: boolean, ahead?: AheadCall): void {
    // Woken by a pause without the turn (by a stop, the state says so below).
    if (isEmptyTurn(turn) && this.#stopping === undefined && isCallable(this.#state)) {
      throw pausedWhileWaiting(`call "${name}" on`, this.name);
    }
    // A call posted ahead is refused only if it can be taken back: one its worker began runs,
    // unless the plugin stopped already (stop() found it idle between two calls: its worker
    // is ended, and the call's result with it).
    if (
      (!isCallable(this.#state) || this.#stopping !== undefined) &&
      (ahead === undefined || this.#state === "stopped" || ahead.retract())
    ) {
      turn[Symbol.dispose]();
      this.#refuse(name);
    }
    this.#turn = turn;
    this.#holds++;
    if (take) {
      this.#restState = this.#state;
      this.#setState("running");
    }
  }

  /** Hands the turn the running call or the pause held to the next caller in line. */
  #release(): void {
    // Kept until handed on: a caller whose stack runs out in between releases it again
    // (see #abandonIfHeld). The next holder takes it in a later turn of the event loop.
    this.#turn?.[Symbol.dispose]();
    this.#turn = undefined;
  }

  /** Throws why `name` cannot run: the plugin is paused, stopping, stopped or failed. */
  #refuse(name: string): never {
    throw this.#refusal(name);
  }

  /** Why `name` cannot run (see {@linkcode #refuse}). */
  #refusal(name: string): PluginStateError {
    return this.#unusable(`call "${name}" on`) ?? new PluginStateError(
      `Cannot call "${name}" on plugin "${this.name}": the plugin is ${this.#state}`,
      { state: this.#state },
    );
  }

  /**
   * The call path: state check, signature check, invoke, metrics. Returns the
   * raw result synchronously when the backend does, so an inline call costs
   * one promise (the caller's `async`).
   */
  #call(
    name: string,
    args: readonly unknown[],
    options: CallOptions | undefined,
    expected: readonly string[] | null,
  ): unknown {
    if (!this.#takeIfIdle()) {
      const prepared = attempt(() => this.#prepareCall(name, args, options, expected));
      return this.#acquireThen(name, prepared, TYPED);
    }
    const holds = this.#holds;
    try {
      return this.#runCall(name, args, options, expected);
    } catch (err) {
      // No call here: see #stranded. Still held, and by this call: nobody took it since.
      if (this.#turn !== undefined && this.#holds === holds) this.#stranded = true;
      throw err;
    }
  }

  /** Frees the turn a call left stranded (see {@linkcode #stranded}). */
  #freeStranded(): void {
    if (this.#state === "running") this.#setState(this.#restState);
    this.#release(); // at the edge of the stack too, maybe: marked until it is done
    this.#stranded = false;
  }

  /**
   * {@linkcode #call} as the promise a public method returns: a synchronous
   * result or throw becomes a settled promise. (An `async` method awaiting a
   * plain value costs an extra turn of the microtask queue on every call.)
   */
  #promisedCall(
    name: string,
    args: readonly unknown[],
    options: CallOptions | undefined,
    expected: readonly string[] | null,
  ): Promise<unknown> {
    try {
      return promised(this.#call(name, args, options, expected));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@linkcode #bytesCall} as a promise, as {@linkcode #promisedCall}. */
  #promisedBytesCall(
    fn: string,
    input: Uint8Array,
    options: CallOptions | undefined,
    packedOutput: boolean,
    decode?: Decode,
  ): Promise<unknown> {
    try {
      return promised(this.#bytesCall(fn, input, options, packedOutput, decode));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The part of {@linkcode #call} that runs once the caller holds the turn. */
  #runCall(
    name: string,
    args: readonly unknown[],
    options: CallOptions | undefined,
    expected: readonly string[] | null,
  ): unknown {
    const start = performance.now();
    // Checked here without a PreparedCall: the idle path is every inline call's.
    let converted: unknown[];
    let budget: CallBudget;
    try {
      converted = this.#checkedArguments(name, args, expected);
      budget = resolveCallBudget(options, this.#budget);
    } catch (err) {
      this.#finish(name, start, err, 0); // nothing ran
      throw err;
    }
    return this.#invokePrepared(name, TYPED, converted, budget, start);
  }

  /** Checks a call's arguments and options, and converts the arguments. */
  #prepareCall(
    name: string,
    args: readonly unknown[],
    options: CallOptions | undefined,
    expected: readonly string[] | null,
  ): PreparedCall<unknown[]> {
    const converted = this.#checkedArguments(name, args, expected);
    const budget = resolveCallBudget(options, this.#budget);
    return { request: converted, budget, signal: callSignal(options) };
  }

  /**
   * Runs a call that passed its checks, now that it holds the turn: unless
   * its signal aborted, marks the plugin running and has the backend run it
   * the way its kind of call runs (`route`).
   */
  #invokePrepared<Request>(
    name: string,
    route: CallRoute<Request>,
    request: Request,
    budget: CallBudget,
    start: number,
    decode?: Decode,
  ): unknown {
    if (budget.signal?.aborted) return this.#failAborted(name, start, budget.signal);
    // Its turn held, its arguments or options were read: a getter may have stopped or paused
    // the plugin meanwhile (the backend is closed then).
    if (this.#stopping !== undefined || !isCallable(this.#state)) {
      return this.#failAtTurn(name, this.#refusal(name));
    }
    this.#markRunning();
    this.#runningSignal = budget.signal;
    const timeoutMs = this.#lateAfterTimeout ? budget.timeoutMs : Infinity;
    let result: unknown;
    try {
      // The typed call's site stays monomorphic: it is every inline call's path.
      result = route === TYPED
        ? this.#backend.invoke(name, request as unknown[], budget, start)
        : route.run(this.#backend, name, request, budget, start);
    } catch (err) {
      throw this.#finish(name, start, err, this.#backend.lastFuelUsed, timeoutMs);
    }
    return this.#finishCall(name, start, result, decode, timeoutMs);
  }

  /**
   * A started call's result as its caller gets it: recorded now, or when
   * its promise settles (meanwhile the calls waiting behind it are posted
   * ahead, see {@linkcode #postAhead}). Inline, one that ended after
   * `timeoutMs` fails with a `TimeoutError`, whatever it returned: one
   * instruction (a `table.grow` of millions of elements) could run past the
   * deadline with no check after it. (A worker's host decides as it waits for
   * the answer, see `WorkerBackend`.)
   */
  #finishCall(
    name: string,
    start: number,
    result: unknown,
    decode?: Decode,
    timeoutMs = Infinity,
  ): unknown {
    if (result instanceof Promise) {
      this.#postAhead();
      return this.#finishWhenSettled(name, start, result, timeoutMs, decode);
    }
    return this.#returned(name, start, result, timeoutMs, decode);
  }

  /** Records a call that returned `value` (late: see {@linkcode #finish}); returns its result. */
  #returned(
    name: string,
    start: number,
    value: unknown,
    timeoutMs: number,
    decode: Decode | undefined,
  ): unknown {
    if (decode !== undefined) return this.#decoded(name, start, value, decode, timeoutMs);
    const late = this.#finish(name, start, undefined, this.#backend.lastFuelUsed, timeoutMs);
    if (late !== undefined) {
      if (!isRunResult(value)) throw late;
      const { stdout, stderr, outputTruncated } = value;
      throw withCommandOutput(late, { stdout, stderr, outputTruncated });
    }
    return value;
  }

  /**
   * The output of a finished bytes call, decoded (`callJson`): output it
   * cannot decode fails the call, in its metrics and events too; the time
   * decoding takes is the host's, not the call's (lateness is decided first).
   */
  #decoded(
    name: string,
    start: number,
    output: unknown,
    decode: Decode,
    timeoutMs: number,
  ): unknown {
    const end = performance.now();
    const fuel = this.#backend.lastFuelUsed;
    // Late: recorded as the TimeoutError #finish makes (one record: a call that #finish does not
    // make late, its signal aborted, is decoded and recorded below).
    if (end - this.#ranSince(start) > timeoutMs && this.#timesOut(undefined)) {
      throw this.#finish(name, start, undefined, fuel, timeoutMs, end);
    }
    let decoded: unknown;
    try {
      decoded = decode(output as Uint8Array);
    } catch (err) {
      this.#finish(name, start, err, fuel, Infinity, end);
      throw err;
    }
    this.#finish(name, start, undefined, fuel, Infinity, end);
    return decoded;
  }

  /** Checks a call's export, results and arguments, and returns the arguments converted. */
  #checkedArguments(
    name: string,
    args: readonly unknown[],
    expected: readonly string[] | null,
  ): unknown[] {
    checkExportName(name);
    const signature = this.#signatures.get(name);
    if (signature === undefined) {
      throw new InvalidFunctionError(undefined, { functionName: name });
    }
    if (expected === null) checkResultsLeave(name, signature);
    else if (!sameTypes(signature.results, expected)) throw mismatch(name, signature, expected);
    const converted = checkArguments(name, signature, args);
    this.#backend.checkArguments?.(name, converted);
    return converted;
  }

  /**
   * The path of a call made while the plugin is not idle (any kind of call,
   * `route`): it was prepared as it was made, since its caller may change
   * the arguments while it waits (one that failed its checks fails at its
   * turn, as it would have); it waits its turn, posted ahead when the
   * backend can, and its own signal may take it out of the line.
   */
  async #acquireThen<Request>(
    name: string,
    prepared: PreparedCall<Request> | { error: unknown },
    route: CallRoute<Request>,
    decode?: Decode,
  ): Promise<unknown> {
    const post = route.ahead(this.#backend);
    const waiting = post === undefined
      ? undefined
      : new WaitingCall(() => this.#postPrepared(name, prepared, post));
    const signal = "signal" in prepared ? prepared.signal : undefined;
    const turn = signal === undefined
      ? await this.#waitTurn(name, waiting)
      : await this.#waitInLine(name, waiting, signal);
    const ahead = waiting?.ahead;
    this.#hold(name, turn, ahead !== undefined, ahead);
    if (ahead !== undefined) {
      // Its own signal, as #invokePrepared sets it (the last call's said how that ended).
      this.#runningSignal = "signal" in prepared ? prepared.signal : undefined;
      return await this.#runPosted(name, ahead, decode);
    }
    if (!("request" in prepared)) return this.#failAtTurn(name, prepared.error);
    const { request, budget } = prepared;
    return await this.#invokePrepared(name, route, request, budget, performance.now(), decode);
  }

  /**
   * {@linkcode #waitTurn} for a call: its own signal takes it out of the
   * line (and takes back what was posted ahead of it, unless its worker
   * began it), rejecting with the reason, recorded as the call's end.
   */
  async #waitInLine(
    name: string,
    waiting: WaitingCall | undefined,
    signal: AbortSignal,
  ): Promise<Disposable> {
    const made = performance.now();
    let left = false;
    const leave = {
      signal,
      mayLeave: (): boolean => {
        const ahead = waiting?.ahead;
        if (ahead !== undefined && !ahead.retract()) return false;
        waiting?.withdraw();
        return left = true;
      },
    };
    try {
      return await this.#waitTurn(name, waiting, leave);
    } catch (err) {
      if (left) this.#recordLeft(name, made, err);
      throw err;
    }
  }

  /**
   * Posts a prepared call ahead of its turn with `post` (see
   * `_waiting_call.ts`): `null` when it cannot run (it failed its checks or
   * its signal aborted), `undefined` when the backend cannot take it now.
   */
  #postPrepared<Request>(
    name: string,
    prepared: PreparedCall<Request> | { error: unknown },
    post: PostAhead<Request>,
  ): AheadCall | null | undefined {
    if (!("request" in prepared) || prepared.budget.signal?.aborted) return null;
    try {
      return post(name, prepared.request, prepared.budget);
    } catch {
      return null; // it fails the same way at its turn
    }
  }

  /** Marks the plugin running for a call that passed its checks (once it holds the turn). */
  #markRunning(): void {
    this.#restState = this.#state;
    this.#state = "running";
    if (this.#statesListened) this.#emit("state_changed", { from: this.#restState, to: "running" });
  }

  /**
   * Ends a call whose signal aborted before it began: it runs nothing and the
   * plugin is never marked running for it, whether it was idle or waited.
   */
  #failAborted(name: string, start: number, signal: AbortSignal): never {
    this.#finish(name, start, signal.reason, 0);
    throw signal.reason;
  }

  /** Ends a call whose checks failed, at its turn (see {@linkcode #runCall}). */
  #failAtTurn(name: string, error: unknown): never {
    this.#finish(name, performance.now(), error, 0); // nothing ran
    throw error;
  }

  /**
   * Posts the calls waiting in line ahead of their turn, as far as the
   * backend takes them (see `_waiting_call.ts`): while a call runs, and
   * unless the plugin is stopping.
   */
  #postAhead(): void {
    if (this.#state !== "running" || this.#stopping !== undefined) return;
    const line = this.#queue.waitingTags(AHEAD_SCAN);
    if (line.length > 0) postWaitingAhead(line);
  }

  /** Runs a call posted ahead, now that its turn came and the plugin is marked running. */
  #runPosted(name: string, ahead: AheadCall, decode?: Decode): unknown {
    // Its turn frees a channel: the next calls in line may be posted now.
    this.#postAhead();
    const start = performance.now();
    let result: unknown;
    try {
      result = ahead.run(start);
    } catch (err) {
      this.#finish(name, start, err);
      throw err;
    }
    return this.#finishCall(name, start, result, decode);
  }

  /**
   * Records a call that ended (metrics, state, events, the next caller's
   * turn); returns the error it ended with: a call that ended after
   * `timeoutMs` (inline: a worker's is `Infinity`, its host decides as it
   * waits), whatever it returned or failed with, ends with a `TimeoutError`
   * (the failure as its cause); not one the plugin's stop or its caller's
   * signal ended.
   */
  #finish(
    name: string,
    start: number,
    error: unknown,
    fuelUsed: number = this.#backend.lastFuelUsed,
    timeoutMs = Infinity,
    end: number = performance.now(),
  ): unknown {
    // A worker started for the call (it was parked) does not count in its time, and its code
    // runs cold: the call says nothing of the plugin's usual duration.
    const readyAt = this.#backend.readyAt;
    const cold = readyAt > start;
    if (cold) start = readyAt;
    if (end - start > timeoutMs && this.#timesOut(error)) {
      const late = new TimeoutError(undefined, {
        timeoutMs,
        ...(error !== undefined && { cause: error }),
      });
      // A command's output stays with the error that ends its run.
      error = error instanceof WasmError && error.output !== undefined
        ? withCommandOutput(late, error.output)
        : late;
    }
    this.#metrics.record(name, start, end, error, this.#backend.memoryBytes(), fuelUsed);
    // A command's instance is gone: its memory counts for the peak only (run() is "_start").
    if (name === "_start") this.#metrics.observePeak(this.#backend.takeCommandMemoryBytes());
    const ran = this.#state === "running";
    if (ran) this.#state = this.#restState;
    // The next caller's turn before the events: a listener's call queues behind it.
    this.#release();
    if (ran && this.#statesListened) {
      this.#emit("state_changed", { from: "running", to: this.#restState });
    }
    // One that ran no guest code (refused, aborted before it began), or that its caller's own
    // signal ended, tells the detector nothing of the plugin: its caller failed it.
    const byCaller = error !== undefined && this.#runningSignal?.aborted === true;
    this.#report(
      name,
      end - start,
      error,
      !ran || byCaller ? undefined : cold ? NaN : end - start,
    );
    return error;
  }

  /**
   * Whether a call that ended (with `error`, or `undefined`) after its
   * timeout ends with a `TimeoutError` instead: not when its own signal or
   * the plugin's stop ended it, or it timed out already.
   */
  #timesOut(error: unknown): boolean {
    if (error instanceof TimeoutError || error instanceof PluginStateError) return false;
    return !this.#abort.signal.aborted && this.#runningSignal?.aborted !== true;
  }

  /** Records a call that left the line before its turn (its signal aborted): it ran nothing. */
  #recordLeft(name: string, made: number, error: unknown): void {
    const end = performance.now();
    this.#metrics.record(name, made, end, error, this.#backend.memoryBytes(), 0);
    this.#report(name, end - made, error, undefined);
  }

  /**
   * Tells the listeners how a call ended, and the anomaly detector if it ran
   * guest code (`detected`: its duration, `NaN` when its worker was started
   * for it; `undefined` when it ran none).
   */
  #report(name: string, durationMs: number, error: unknown, detected: number | undefined): void {
    if (this.#callsListened) this.#emitCall(name, durationMs, error);
    if (this.#metrics.detector !== null && detected !== undefined) {
      this.#detectAnomalies(name, detected, error);
    }
  }

  /**
   * Runs a bytes-ABI call: allocate, copy in, call, copy out, free, where the
   * instance lives. Like {@linkcode #call}, returns the result synchronously
   * when the backend does.
   */
  #bytesCall(
    fn: string,
    input: Uint8Array,
    options: CallOptions | undefined,
    packedOutput: boolean,
    decode?: Decode,
  ): unknown {
    // Idle: take the plugin at once, as #call does, without a turn of the event loop.
    if (!this.#takeIfIdle()) {
      // Prepared now, its input copied: its caller may change it while the call waits.
      const prepared = attempt(() =>
        this.#prepareBytesCall(fn, input, options, packedOutput, true)
      );
      return this.#acquireThen(fn, prepared, BYTES, decode);
    }
    const holds = this.#holds;
    try {
      return this.#runBytesCall(fn, input, options, packedOutput, decode);
    } catch (err) {
      // No call here: see #stranded.
      if (this.#turn !== undefined && this.#holds === holds) this.#stranded = true;
      throw err;
    }
  }

  /**
   * Checks a bytes call's export, input and options (a failure is the call's,
   * counted as a typed call's is); `copy` copies the input.
   */
  #prepareBytesCall(
    fn: string,
    input: Uint8Array,
    options: CallOptions | undefined,
    packedOutput: boolean,
    copy = false,
  ): PreparedCall<BytesCall> {
    checkExportName(fn);
    if (!(input instanceof Uint8Array)) {
      throw new TypeMismatchError(
        `Cannot call "${fn}": expected a Uint8Array, received ${describeValue(input)}`,
      );
    }
    const budget = resolveCallBudget(options, this.#budget);
    const call = this.#bytesCallOf(fn, copy ? input.slice() : input, packedOutput);
    return { request: call, budget, signal: callSignal(options) };
  }

  /** The part of {@linkcode #bytesCall} that runs once the plugin is taken. */
  #runBytesCall(
    fn: string,
    input: Uint8Array,
    options: CallOptions | undefined,
    packedOutput: boolean,
    decode: Decode | undefined,
  ): unknown {
    const start = performance.now();
    let prepared: PreparedCall<BytesCall>;
    try {
      prepared = this.#prepareBytesCall(fn, input, options, packedOutput);
    } catch (err) {
      this.#finish(fn, start, err, 0); // nothing ran
      throw err;
    }
    return this.#invokePrepared(fn, BYTES, prepared.request, prepared.budget, start, decode);
  }

  /** Records a call once its backend's promise settles (metrics, state, the next waiting call). */
  #finishWhenSettled(
    name: string,
    start: number,
    result: Promise<unknown>,
    timeoutMs: number,
    decode?: Decode,
  ): Promise<unknown> {
    return result.then(
      (value) => this.#returned(name, start, value, timeoutMs, decode),
      (err) => {
        throw this.#finish(name, start, err, this.#backend.lastFuelUsed, timeoutMs);
      },
    );
  }

  /** Checks `fn`'s signature and finds the allocator and the free function of a bytes call. */
  #bytesCallOf(fn: string, input: Uint8Array, packedOutput: boolean): BytesCall {
    const signature = this.#signatures.get(fn);
    if (signature === undefined) throw new InvalidFunctionError(undefined, { functionName: fn });
    const expected = packedOutput ? I64 : I32;
    if (!sameTypes(signature.params, PTR_LEN) || !sameTypes(signature.results, expected)) {
      throw new TypeMismatchError(
        `Cannot call "${fn}" with bytes: expected (i32 ptr, i32 len) -> ${expected[0]}, found (${
          signature.params.join(", ")
        }) -> (${signature.results.join(", ")})`,
      );
    }
    const alloc = this.#alloc ??= this.#allocator(fn);
    const free = this.#free === undefined ? (this.#free = this.#freeFunction()) : this.#free;
    return { fn, input, packedOutput, alloc, free };
  }

  /** The allocator and the free function of bytes calls, found once (exports do not change). */
  #alloc: "alloc" | "malloc" | undefined;
  #free: "dealloc" | "free" | null | undefined;

  #allocator(fn: string): "alloc" | "malloc" {
    for (const name of ["alloc", "malloc"] as const) {
      const signature = this.#signatures.get(name);
      if (
        signature !== undefined && sameTypes(signature.params, I32) &&
        sameTypes(signature.results, I32)
      ) {
        return name;
      }
    }
    throw new InvalidFunctionError(
      `Cannot pass bytes to "${fn}": the plugin exports no allocator "alloc(size: i32) -> i32" (or "malloc")`,
      { functionName: "alloc" },
    );
  }

  /** The export that frees a bytes-call buffer: `dealloc(ptr, len)`, else `free(ptr)`, else none. */
  #freeFunction(): "dealloc" | "free" | null {
    const dealloc = this.#signatures.get("dealloc");
    if (dealloc !== undefined && sameTypes(dealloc.params, PTR_LEN)) return "dealloc";
    const free = this.#signatures.get("free");
    if (free !== undefined && sameTypes(free.params, I32)) return "free";
    return null;
  }
}

/**
 * Rejects an offset or length that is not a number: a number out of range is
 * the backend's `MemoryOutOfBoundsError`, but other values cannot even cross
 * to a worker.
 */
/** A call checked before its turn: what the backend runs, its budget, and the caller's own signal. */
interface PreparedCall<Request> {
  readonly request: Request;
  readonly budget: CallBudget;
  /** The call's own signal, not joined to the plugin's: it may take the call out of the line. */
  readonly signal: AbortSignal | undefined;
}

/** Turns a bytes call's output into what its caller gets (`callJson` parses it). */
type Decode = (output: unknown) => unknown;

/** Posts a prepared call ahead of its turn (see `_waiting_call.ts`). */
type PostAhead<Request> = (
  name: string,
  request: Request,
  budget: CallBudget,
) => AheadCall | undefined;

/** How the backend runs one kind of call: a typed call, a bytes call or a WASI command. */
interface CallRoute<Request> {
  /** Runs the call; a promise when the backend answers later. */
  run(
    backend: PluginBackend,
    name: string,
    request: Request,
    budget: CallBudget,
    start: number,
  ): unknown;
  /** How `backend` posts such calls ahead, or `undefined` when it does not. */
  ahead(backend: PluginBackend): PostAhead<Request> | undefined;
}

/** Whether `value` is what `run()` returns (the result of a late command, see `#returned`). */
function isRunResult(value: unknown): value is RunResult {
  return typeof value === "object" && value !== null && "stdout" in value && "exitCode" in value;
}

/** A typed call (`callI32`, `call`, …): its arguments checked and converted. */
const TYPED: CallRoute<unknown[]> = {
  run: (backend, name, args, budget, start) => backend.invoke(name, args, budget, start),
  ahead: (backend) =>
    backend.invokeAhead === undefined
      ? undefined
      : (name, args, budget) => backend.invokeAhead!(name, args, budget),
};

/** A bytes-ABI call (`callBytes`, `callWithBytes`, `callJson`): one request where the instance is. */
const BYTES: CallRoute<BytesCall> = {
  run: (backend, _name, call, budget, start) => backend.invokeBytes(call, budget, start),
  ahead: (backend) =>
    backend.invokeBytesAhead === undefined
      ? undefined
      : (_name, call, budget) => backend.invokeBytesAhead!(call, budget),
};

/** A WASI command (`run()`): `_start` in a fresh instance, with its stdin; never posted ahead. */
const COMMAND: CallRoute<Uint8Array> = {
  run: (backend, _name, stdin, budget, start) => backend.runCommand(stdin, budget, start),
  ahead: () => undefined,
};

/** The signal of call options `resolveCallBudget` accepted. */
function callSignal(options: CallOptions | undefined): AbortSignal | undefined {
  return options === undefined ? undefined : optionField(options, "signal") as AbortSignal;
}

/** What `prepare` returns, or what it threw. */
function attempt<T>(prepare: () => T): T | { error: unknown } {
  try {
    return prepare();
  } catch (error) {
    return { error };
  }
}

/** The refusal of a caller a pause woke without the turn, when the plugin was resumed since. */
function pausedWhileWaiting(action: string, plugin: string): PluginStateError {
  return new PluginStateError(
    `Cannot ${action} plugin "${plugin}": the plugin was paused while the caller waited`,
    { state: "paused" },
  );
}

function checkExportName(name: unknown): void {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot call an export named by ${describeValue(name)}: export names are strings`,
    );
  }
}

/** A call's result as a promise: the backend's own, or one resolved with a synchronous result. */
function promised(value: unknown): Promise<unknown> {
  return value instanceof Promise ? value : Promise.resolve(value);
}

function checkNumber(action: string, what: string, value: unknown): void {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action}: expected the ${what} to be a number, received ${describeValue(value)}`,
    );
  }
}

/** Result types a call may hand the host: numbers, and the host's own references. */
const LEAVING_TYPES: ReadonlySet<string> = new Set(["i32", "i64", "f32", "f64", "externref"]);

/**
 * Refuses, before the call runs, an export that would hand the host one of
 * the guest's references: a function reference would let the host run guest
 * code outside any call's budget (and cannot cross a worker's channel).
 */
function checkResultsLeave(name: string, signature: Signature): void {
  const kept = signature.results.find((type) => !LEAVING_TYPES.has(type));
  if (kept !== undefined) {
    throw new TypeMismatchError(
      `Cannot call "${name}": it returns a ${kept}, which cannot leave the plugin`,
    );
  }
}

function sameTypes(actual: readonly string[], expected: readonly string[]): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) return false;
  return true;
}

function mismatch(name: string, signature: Signature, expected: readonly string[]): WasmError {
  return new TypeMismatchError(
    `Cannot call "${name}" as returning (${expected.join(", ")}): it returns (${
      signature.results.join(", ")
    })`,
  );
}

/**
 * Creates a plugin around a backend. Internal: used by `WasmRuntime`.
 *
 * @internal
 */
export function createWasmPlugin(init: PluginInit): WasmPlugin {
  return construct(init);
}

/**
 * One instance of a plugin's module with everything around it: imports
 * (linker functions and built-in host functions, capability-gated), the
 * instrumentation's budgets, JSPI for async host functions, and the mapping
 * of what a call throws to typed errors. It runs wherever the plugin runs:
 * on the host thread (inline isolation) or in the plugin's worker.
 *
 * @module
 */

import type { BytesCall, CommandResult, PluginBackend } from "./_backend.ts";
import { type CallBudget, CallWatch } from "./_call_budget.ts";
import { type CommandOutput, withCommandOutput } from "./_command_output.ts";
import { isThenable } from "./_host_result.ts";
import { Capability } from "../capability.ts";
import {
  CallDepthExceededError,
  CapabilityDeniedError,
  FuelExhaustedError,
  GuestError,
  InstantiationError,
  OutOfMemoryError,
  TimeoutError,
  TrapError,
  type WasmError,
} from "../errors.ts";
import { InstanceLimits, MEMORY_BYTES_EXPORT, TrapReason } from "../metering/mod.ts";
import {
  createBuiltin,
  createLogBudget,
  type ErrorSlot,
  guardHostFunction,
  HOST_ERROR_RECORDED,
  type HostCallable,
  isAsyncBuiltin,
  type LogBudget,
  reportDroppedLogs,
} from "../host/mod.ts";
import type { ImportPlan, InstanceBindings, InstanceSpec, ParkedState } from "./_instance_spec.ts";
import type { StorageImport } from "../compile/mod.ts";
import { findExportedMemory, GuestMemory } from "../host/mod.ts";
import { hasJspi, promising, suspending } from "./_jspi.ts";
import { classifyCallError } from "./_trap.ts";
import { WasiExit } from "../wasi/wasi_exit.ts";
import { type WasiOptions, WasiPreview1 } from "../wasi/wasi_preview1.ts";
import { FileCount, wasiStates } from "../wasi/mod.ts";

/**
 * The `startMs` of a call whose caller did not read the clock: the instance
 * reads it only when something first needs the deadline (the clock hook,
 * WASI, an async call's watch), and the deadline counts from then, a little
 * later than the call's start. A worker does this: its host enforces the
 * exact deadline, the worker's own check only backs it up while the host's
 * thread is held up, and a clock read costs ≈ 0.1 µs on every call's path.
 */
export const START_NOT_READ = NaN;

/** Fuel budget of calls when fuel is metered but `maxFuel` is `null`. */
const UNMETERED_FUEL = 2 ** 53 - 1;

type Callable = (...args: unknown[]) => unknown;

/** Cancels the async host functions a suspended guest is waiting on. */
interface Cancellation {
  promise: Promise<never>;
  reject: (reason: unknown) => void;
}

/**
 * The longest output kept in the output scratch (see
 * `PluginInstance.reuseOutputBuffer`): a longer one is copied into a fresh
 * buffer, which costs little beside its copy, so that a worker does not
 * hold its largest output for good.
 */
const MAX_SCRATCH_BYTES = 1024 * 1024;

/** A live instance; it is also the inline isolation's {@linkcode PluginBackend}. */
/**
 * The fuel a failed bytes call must have left for its input to be freed
 * (`#freeInputAfterHostError`): a free cut off by the fuel running out may
 * leave the guest's allocator locked, worse than a buffer left taken.
 */
const FREE_FUEL = 65_536;

export class PluginInstance implements PluginBackend {
  readonly #spec: InstanceSpec;
  readonly #bindings: InstanceBindings;
  /** The spec's capabilities, for lookups. */
  readonly #capabilities: ReadonlySet<string>;
  /** What a WASI command reads from standard input: set only on a run's own instance. */
  readonly #stdin: Uint8Array | undefined;
  readonly #slot: ErrorSlot = { error: undefined, generation: 0, guestError: undefined };
  /** The bytes call whose input's `alloc` runs, or trapped until {@linkcode #failure} reports it. */
  #allocTrapped: BytesCall | undefined;
  /** The `host_log` budget: a run's command instance shares its plugin's (see `runCommand`). */
  #logBudget: LogBudget = createLogBudget();
  /** The memory the host reads and writes. */
  readonly memory: GuestMemory = new GuestMemory();
  /**
   * Where a bytes call's output is copied when the caller copies it on at
   * once (a worker into its channel), reused from call to call: a fresh
   * buffer costs ≈ 0.4 µs in Deno. `undefined`: every output is fresh.
   */
  #outputScratch: Uint8Array | undefined;
  /** The last output's view of the scratch, reused for an output of the same length. */
  #outputView: Uint8Array = new Uint8Array(0);
  readonly #functions = new Map<string, Callable>();
  #exports: WebAssembly.Exports = {};
  /** True when the module imports an async host function, so exports are JSPI-wrapped. */
  #async = false;
  /** How many promises of async host functions have not settled yet (see {@linkcode settled}). */
  #hostPromisesPending = 0;
  #cancellation: Cancellation | undefined;
  /**
   * Why the running call was cancelled: from then on every host function
   * throws this at once, and the call ends with it whatever the guest makes
   * of it (a guest that catches the cancellation cannot carry on).
   */
  #cancelled: { readonly reason: unknown } | undefined;
  /** Errors earlier calls already ended with: a guest that stashed one cannot replay it. */
  readonly #reported = new WeakSet<object>();
  /** Host side of the instrumentation, `null` for an uninstrumented module. */
  #limits: InstanceLimits | null = null;
  /** Budgets of the running call, to name the limit that stopped it. */
  #budget: CallBudget | undefined;
  /**
   * `performance.now()` past which the running call must end (WASI's long
   * calls check it); `NaN` until read when the call started with
   * {@linkcode START_NOT_READ} (see {@linkcode #currentDeadline}).
   */
  #deadline = Infinity;
  /** The deadline's timer of the running call that may suspend (see `#runCancellable`). */
  #watch: CallWatch | undefined;
  #fuelBudget = 0;
  #lastFuelUsed = 0;
  /** The WASI host of a module that imports `wasi_snapshot_preview1`. */
  #wasi: WasiPreview1 | undefined;
  /** How many changes the WASI descriptor table had once set up. */
  #wasiChanges = 0;
  #rawMemory: WebAssembly.Memory | undefined;
  /** The first memory this instance was given for a memory import (see `_import_plan.ts`). */
  #importedMemory: WebAssembly.Memory | undefined;
  /** The module's sum of all its memories' bytes, when it has several (see `_totals.ts`). */
  #memoryTotal: (() => bigint) | null = null;

  private constructor(spec: InstanceSpec, bindings: InstanceBindings, stdin?: Uint8Array) {
    this.#spec = spec;
    this.#bindings = bindings;
    this.#capabilities = new Set(spec.capabilities);
    this.#stdin = stdin;
  }

  /**
   * Instantiates the module, and takes over the spec's `restore` state if it
   * has one. The (deferred) start function of a fresh instance is left to
   * {@linkcode start}, so its host can run it as a call it can serve and
   * interrupt.
   *
   * @throws {InstantiationError} If instantiation fails.
   * @throws {TypeError} If there is a state to restore and the module does not export its state.
   */
  static async create(spec: InstanceSpec, bindings: InstanceBindings): Promise<PluginInstance> {
    const instance = new PluginInstance(spec, bindings);
    await instance.#instantiate();
    if (spec.restore !== null) instance.restoreState(spec.restore);
    return instance;
  }

  get lastFuelUsed(): number {
    return this.#lastFuelUsed;
  }

  /** See {@linkcode PluginBackend.deadlineFromStart}. */
  readonly deadlineFromStart = true;
  /** See {@linkcode PluginBackend.readyAt}: an instance is there from the start. */
  readonly readyAt = 0;

  async #instantiate(): Promise<void> {
    let instance: WebAssembly.Instance;
    try {
      // Inside: a memory made for an import can fail to allocate.
      instance = await WebAssembly.instantiate(this.#spec.module, this.#buildImports());
    } catch (err) {
      if (err instanceof InstantiationError) throw err;
      const cause = this.#slot.error ?? classifyCallError(err, this.#spec.maxCallDepth);
      this.#slot.error = undefined;
      throw new InstantiationError(`Cannot instantiate the module: ${cause.message}`, { cause });
    }
    this.#exports = instance.exports;
    // A module that imports its memory need not export it: the host then uses the one it gave.
    this.#rawMemory = findExportedMemory(instance.exports) ?? this.#importedMemory;
    const total = instance.exports[MEMORY_BYTES_EXPORT];
    this.#memoryTotal = typeof total === "function" ? total as () => bigint : null;
    this.memory.attach(this.#rawMemory);
    const instrumentation = this.#spec.instrumentation;
    if (instrumentation === null) return;
    const { stopRequested } = this.#bindings;
    const limits = this.#limits = new InstanceLimits(instance, instrumentation, {
      ...(stopRequested === undefined ? {} : { stopRequested }),
      deadlineAt: (now) => this.#currentDeadline(now),
    });
    this.#slot.hostCallEnded = () => limits.hostCallEnded(this.memory.takeTouched());
    this.#slot.checkpoint = () => this.#checkDeadline();
    // A call aborted by one of its own host functions: its guest stops at its next check.
    this.#slot.interrupt = () => limits.interrupt();
    this.#slot.stopRequested = stopRequested;
  }

  /**
   * True when the module has a deferred start function for {@linkcode start}
   * to run. A restored instance has none: it carries on from its state, and
   * its start function ran long ago.
   */
  get hasStart(): boolean {
    const start = this.#spec.instrumentation?.startFunction;
    return this.#limits !== null && start !== null && start !== undefined &&
      this.#spec.restore === null;
  }

  /**
   * True when no promise of an async host function the guest called is
   * still pending: then nothing of the instance can run once its call
   * ended, and its thread is clean for another instance. A call cancelled
   * while its guest waited (a timeout, a stop) can leave one behind.
   */
  get settled(): boolean {
    return this.#hostPromisesPending === 0;
  }

  /**
   * Runs the module's start function, deferred by the instrumenter, under
   * `budget` (the plugin's own limits).
   *
   * A module that imports an async host function (`host_call_tool`,
   * `host_sleep_ms`, …) runs it as it runs its exports, suspendable: its
   * start function may wait for a tool as any call may, and is cancelled
   * the same way. The promise is returned only then.
   *
   * @throws {InstantiationError} If it fails, with the typed error as the cause.
   */
  start(budget: CallBudget, startMs: number): void | Promise<void> {
    if (!this.hasStart) return;
    if (this.#async) return this.#startSuspendable(budget, startMs);
    try {
      this.#slot.error = undefined;
      this.#slot.generation++;
      this.#begin(budget, startMs);
      // Aborted already (the runtime closed while the instance was made): nothing runs.
      budget.signal?.throwIfAborted();
      this.#limits!.runStart();
      if (this.#slot.error !== undefined) throw this.#slot.error;
      this.#assertStartedInTime(budget, startMs);
    } catch (err) {
      throw this.#startFailure(this.#failure(err), budget, startMs);
    } finally {
      this.#end();
    }
  }

  /** {@linkcode start} of a module whose async host functions suspend it (JSPI). */
  async #startSuspendable(budget: CallBudget, startMs: number): Promise<void> {
    const run = this.#function(this.#spec.instrumentation!.startFunction!)!;
    try {
      // Aborted already: nothing runs (the reason is taken as the synchronous start takes it).
      if (budget.signal?.aborted) throw this.#failure(budget.signal.reason);
      this.#slot.error = undefined;
      this.#slot.generation++;
      this.#cancelled = undefined;
      this.#begin(budget, startMs);
      // It reports its failures as typed errors (and ends the instrumentation's call).
      await this.#runCancellable(budget, () => run());
      this.#assertStartedInTime(budget, startMs);
    } catch (err) {
      throw this.#startFailure(err, budget, startMs);
    }
  }

  /**
   * A start function that ended after its deadline (one long instruction with
   * no check after it) failed, as a worker's host reports it.
   */
  #assertStartedInTime(budget: CallBudget, startMs: number): void {
    if (performance.now() - startMs > budget.timeoutMs) {
      throw new TimeoutError(undefined, { timeoutMs: budget.timeoutMs });
    }
  }

  /** The error a start function that failed with `failure` (typed already) makes. */
  #startFailure(failure: unknown, budget: CallBudget, startMs: number): InstantiationError {
    let cause = failure as WasmError;
    if (!(cause instanceof TimeoutError) && performance.now() - startMs > budget.timeoutMs) {
      // Failed after its deadline: as a worker's host reports it.
      cause = new TimeoutError(undefined, { timeoutMs: budget.timeoutMs, cause });
    }
    return new InstantiationError(`The start function failed: ${cause.message}`, { cause });
  }

  /** Arms the instrumentation for one top-level call. */
  #begin(budget: CallBudget, startMs: number): void {
    this.#slot.guestError = undefined;
    this.#allocTrapped = undefined;
    // What the host moved before the call (a bytes call's input) is not its host functions'.
    this.memory.takeTouched();
    this.#budget = budget;
    this.#slot.callSignal = budget.signal;
    const limits = this.#limits;
    this.#deadline = startMs + budget.timeoutMs;
    if (limits === null) return;
    this.#fuelBudget = budget.fuel ?? UNMETERED_FUEL;
    limits.prepareCall(this.#fuelBudget, this.#spec.maxCallDepth, this.#deadline, startMs);
    if (this.#bindings.stopRequested?.() === true) limits.interrupt();
  }

  /** Reads what the call consumed. */
  #end(): void {
    this.#slot.callSignal = undefined;
    // Answers kept for a retry belong to the call that asked (see ErrorSlot.answers).
    if (this.#slot.answers !== undefined && this.#slot.answers.size > 0) this.#slot.answers.clear();
    reportDroppedLogs(this.#logBudget, this.#bindings.services);
    const limits = this.#limits;
    if (limits === null || !this.#spec.instrumentation?.fuelGlobal) return;
    const remaining = limits.fuelLeft;
    this.#lastFuelUsed = remaining < 0 ? this.#fuelBudget : this.#fuelBudget - remaining;
  }

  #buildImports(): WebAssembly.Imports {
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    // Only a guest suspended in an async host function can be cancelled mid-call.
    const cancellable = hasJspi &&
      this.#spec.imports.some((plan) => plan.kind === "builtin" && isAsyncBuiltin(plan.name));
    this.#importedMemory = undefined;
    // The spec lists the memory and table imports in the module's order, as the plan does.
    let storage = 0;
    for (const plan of this.#spec.imports) {
      const value = plan.kind === "linker"
        ? this.#linkerFunction(plan.module, plan.name, this.#bindings.linkerFunction(plan.index))
        : plan.kind === "wasi"
        ? this.#wasiFunction(plan.name)
        : plan.kind === "memory" || plan.kind === "table"
        ? this.#newStorage(plan, this.#spec.storageImports[storage++])
        : this.#builtin(plan.name);
      (imports[plan.module] ??= {})[plan.name] = (cancellable && typeof value === "function"
        ? this.#refusedOnceCancelled(value as Callable)
        : value) as WebAssembly.ImportValue;
    }
    return imports;
  }

  /** A new memory or table for the import `plan`, of the limits `type` says (as clamped). */
  #newStorage(
    plan: ImportPlan,
    type: StorageImport | undefined,
  ): WebAssembly.Memory | WebAssembly.Table {
    if (type?.kind !== plan.kind || type.module !== plan.module || type.name !== plan.name) {
      throw new TypeError(`No limits for the import "${plan.module}"."${plan.name}"`);
    }
    const { initial, maximum } = type;
    const limits = maximum === undefined ? { initial } : { initial, maximum };
    if (type.kind === "table") {
      // Deno's types know "anyfunc" only; V8 takes "externref" too.
      return new WebAssembly.Table({ ...limits, element: type.element as "anyfunc" });
    }
    const memory = new WebAssembly.Memory(limits);
    this.#importedMemory ??= memory;
    return memory;
  }

  /** `fn`, except that it throws the cancellation's reason once the call is cancelled. */
  #refusedOnceCancelled(fn: Callable): Callable {
    return (...args) => {
      if (this.#cancelled !== undefined) throw this.#cancelled.reason;
      return fn(...args);
    };
  }

  /**
   * The plugin's WASI instance.
   *
   * @throws {InstantiationError} If a preopen cannot be opened (not a
   *   directory, or one Deno does not let the host read).
   */
  #newWasi(options: WasiOptions): WasiPreview1 {
    try {
      const wasi = new WasiPreview1(options);
      wasiStates.get(wasi)!.fds.countFilesIn(new FileCount(this.#spec.files.cell));
      return wasi;
    } catch (err) {
      throw new InstantiationError(
        `Cannot give plugin "${this.#spec.pluginName}" its WASI preopens: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }
  }

  /** A WASI function, denied without `Capability.Wasi`. */
  #wasiFunction(name: string): unknown {
    const { wasi, pluginName } = this.#spec;
    const capabilities = this.#capabilities;
    const stdin = this.#stdin;
    if (!capabilities.has(Capability.Wasi)) {
      return guardHostFunction("wasi_snapshot_preview1", name, this.#slot, () => {
        throw new CapabilityDeniedError(
          `Capability denied: Calling "wasi_snapshot_preview1"."${name}" needs the "${Capability.Wasi}" capability`,
          { capability: Capability.Wasi },
        );
      });
    }
    this.#wasi ??= this.#newWasi({
      args: [pluginName, ...(wasi?.args ?? [])],
      env: wasi?.env ?? {},
      preopens: wasi?.preopens ?? {},
      ...(stdin === undefined ? {} : { stdin }),
      fileSystem: capabilities.has(Capability.FileSystem),
      ...(wasi?.maxOpenFiles === undefined ? {} : { maxOpenFiles: wasi.maxOpenFiles }),
      writable: this.#spec.writablePaths,
      random: capabilities.has(Capability.Random),
      checkpoint: () => this.#checkDeadline(),
    });
    this.#wasiChanges = wasiStates.get(this.#wasi)!.fds.changes;
    const fn = this.#wasi.imports(() => this.#rawMemory)[name];
    if (fn === undefined) throw new RangeError(`No WASI function "${name}"`);
    // What a WASI function throws (a deadline, a refused capability) ends the call as a host
    // function's error does, whatever the guest makes of it; proc_exit passes as it is.
    return guardHostFunction(
      "wasi_snapshot_preview1",
      name,
      this.#slot,
      fn as HostCallable,
      (err) => err instanceof WasiExit,
    );
  }

  /**
   * Ends a WASI system call (a sleep, a large write) or a host function's
   * long work (`host_random_bytes`) once the call's deadline passed or its
   * host asked it to stop: they check between slices of their work, since
   * the instrumentation's checks do not run meanwhile.
   */
  #checkDeadline(): void {
    const deadline = this.#currentDeadline();
    if (performance.now() < deadline && this.#bindings.stopRequested?.() !== true) return;
    throw new TimeoutError(undefined, { timeoutMs: this.#budget?.timeoutMs ?? 0 });
  }

  /**
   * Gives the running call until `ms` from now, if its deadline is sooner:
   * a worker's host served one of its host calls after the deadline (its
   * thread was busy), and the wait was the host's. A deadline not read yet
   * counts from its first read, later still; an interrupted call stays so.
   *
   * @example
   * ```ts ignore
   * instance.extendDeadline(100); // the host's grace for a host call it served late
   * ```
   */
  extendDeadline(ms: number): void {
    if (!(ms > 0)) return;
    const until = performance.now() + ms;
    if (this.#deadline < until) this.#deadline = until;
    this.#limits?.extendDeadline(until);
    this.#watch?.extendTo(until);
  }

  /**
   * Before a host call the guest waits for (in a worker): reads the running
   * call's deadline if it was not read yet, so that it counts from no later
   * than now, not from a read after the answer (a guest whose first act was
   * a host call the busy host answered late ran a whole timeout more), and
   * returns when the clock was last read (see `InstanceLimits.lastClockRead`).
   *
   * @example
   * ```ts ignore
   * channel.postHostCall(op, values, instance.beforeHostCall());
   * ```
   */
  beforeHostCall(): number {
    if (Number.isNaN(this.#deadline)) {
      const now = performance.now();
      this.#currentDeadline(now);
      return now;
    }
    return this.#limits?.lastClockRead ?? NaN;
  }

  /**
   * Turns the running call's deadline timer off while its worker's host
   * serves a host call the guest awaits (a tool): the host keeps the
   * deadline meanwhile, on its own clock, and answers a call that must stop
   * with the reason. The timer comes back when the handle is disposed.
   *
   * @example
   * ```ts ignore
   * using _held = instance.holdDeadline();
   * const answer = await hostAnswer();
   * ```
   */
  holdDeadline(): Disposable | undefined {
    return this.#watch?.hold();
  }

  /**
   * The running call's deadline, read from the clock now if the call started
   * with {@linkcode START_NOT_READ}: a little later than the call's start.
   * (The host that left the clock unread enforces the exact deadline.)
   */
  #currentDeadline(now?: number): number {
    if (Number.isNaN(this.#deadline)) {
      this.#deadline = (now ?? performance.now()) + (this.#budget?.timeoutMs ?? Infinity);
    }
    return this.#deadline;
  }

  /**
   * Runs the module as a WASI command in a fresh instance (its own memory,
   * stdin and output): calls `_start` under `budget`; `proc_exit` ends it
   * with an exit code, not an error.
   *
   * @throws {WasmError} If it traps, or hits a limit.
   */
  async runCommand(stdin: Uint8Array, budget: CallBudget, startMs: number): Promise<CommandResult> {
    this.#lastFuelUsed = 0;
    // The command's start function and `_start` share the call's one budget.
    // A fresh instance, even of a restored plugin: a command starts from the module's own state.
    const command = new PluginInstance({ ...this.#spec, restore: null }, this.#bindings, stdin);
    // Its logs count in the plugin's budget: a run is no fresh burst of records.
    command.#logBudget = this.#logBudget;
    await command.#instantiate();
    try {
      // Aborted while the instance was made: it ends with the reason, as any call (nothing ran).
      budget.signal?.throwIfAborted();
      let exitCode = 0;
      try {
        await command.start(budget, startMs);
      } catch (err) {
        // Out of time in the start function: the run timed out (its one deadline), as a
        // worker's host says; aborted there (by its own host function): the reason, as from
        // `_start`.
        if (err instanceof InstantiationError && err.cause instanceof TimeoutError) throw err.cause;
        throw this.#abortedOr(budget, err);
      } finally {
        this.#lastFuelUsed = command.lastFuelUsed;
      }
      command.#lastFuelUsed = 0;
      try {
        const fuel = budget.fuel === null ? null : budget.fuel - this.#lastFuelUsed;
        const result = command.invoke("_start", [], { ...budget, fuel }, startMs);
        if (result instanceof Promise) await result;
      } catch (err) {
        if (err instanceof FuelExhaustedError && budget.fuel !== null) {
          // Name the call's whole budget, not what the start function left of it.
          throw new FuelExhaustedError(undefined, { fuelLimit: budget.fuel, cause: err.cause });
        }
        if (!(err instanceof WasiExit)) throw err;
        exitCode = err.code;
      } finally {
        this.#lastFuelUsed += command.lastFuelUsed;
      }
      return { exitCode, ...command.#commandOutput() };
    } catch (err) {
      // What the command wrote before it failed goes with the error made for this run, not
      // with an abort's or a stop's reason, which other calls may share.
      if (budget.signal?.aborted === true && err === budget.signal.reason) throw err;
      throw withCommandOutput(err, command.#commandOutput());
    } finally {
      // Its memory counts in the plugin's peak, however it ended.
      this.#commandMemoryBytes = command.memoryBytes();
      command.#wasi?.close();
      await command.close();
    }
  }

  #commandMemoryBytes = 0;

  takeCommandMemoryBytes(): number {
    const bytes = this.#commandMemoryBytes;
    this.#commandMemoryBytes = 0;
    return bytes;
  }

  /** What this command instance wrote to its standard streams. */
  #commandOutput(): CommandOutput {
    const wasi = this.#wasi;
    return {
      stdout: wasi?.stdout ?? new Uint8Array(),
      stderr: wasi?.stderr ?? new Uint8Array(),
      outputTruncated: wasi?.outputTruncated ?? false,
    };
  }

  #linkerFunction(module: string, name: string, fn: Callable): Callable {
    const allowed = this.#capabilities.has(Capability.CallHostFunction);
    return guardHostFunction(module, name, this.#slot, (...args) => {
      if (!allowed) {
        throw new CapabilityDeniedError(
          `Capability denied: Calling linker function "${module}"."${name}" needs the "${Capability.CallHostFunction}" capability`,
          { capability: Capability.CallHostFunction },
        );
      }
      const result = fn(...args);
      // Only a worker's host waits for a linker function's promise (see _worker_backend.ts);
      // here the engine would read it as a number (0) and nobody would see it settle.
      if (isThenable(result)) {
        Promise.resolve(result).catch(() => {});
        throw new TypeError(
          'It returned a promise, which only isolation "worker" waits for: an inline linker function must return its result',
        );
      }
      return result;
    });
  }

  #builtin(name: string): unknown {
    const fn = createBuiltin(name, {
      memory: this.memory,
      services: this.#bindings.services,
      capabilities: this.#capabilities,
      allowedHosts: this.#spec.allowedHosts,
      slot: this.#slot,
      logBudget: this.#logBudget,
    });
    if (!isAsyncBuiltin(name) || !hasJspi) return fn;
    this.#async = true;
    const cancellable = (...args: unknown[]): unknown => {
      if (this.#cancelled !== undefined) return Promise.reject(this.#cancelled.reason);
      const result = fn(...args);
      if (!(result instanceof Promise)) return result;
      this.#hostPromisesPending++;
      const settle = () => void this.#hostPromisesPending--;
      result.then(settle, settle);
      const cancellation = this.#cancellation;
      if (cancellation === undefined) return result;
      return Promise.race([result, cancellation.promise]);
    };
    return suspending(cancellable);
  }

  #function(name: string): Callable | undefined {
    let fn = this.#functions.get(name);
    if (fn === undefined) {
      const value = this.#exports[name];
      if (typeof value !== "function") return undefined;
      fn = (this.#async ? promising(value) : value) as Callable;
      this.#functions.set(name, fn);
    }
    return fn;
  }

  invoke(name: string, args: readonly unknown[], budget: CallBudget, startMs: number): unknown {
    this.#lastFuelUsed = 0;
    const fn = this.#function(name);
    if (fn === undefined) throw new TypeError(`Export "${name}" is not a function`);
    budget.signal?.throwIfAborted();
    this.#slot.error = undefined;
    this.#slot.generation++;
    this.#cancelled = undefined;
    this.#begin(budget, startMs);
    if (this.#async) {
      return this.#runCancellable(budget, async () => {
        const result = await fn(...args);
        this.#checkGuestError(name);
        return result;
      });
    }
    let result: unknown;
    try {
      result = fn(...args);
    } catch (err) {
      throw this.#abortedOr(budget, this.#failure(err));
    } finally {
      this.#end();
    }
    if (this.#slot.error !== undefined) throw this.#abortedOr(budget, this.#failure(undefined));
    // Aborted by one of its host functions (stop({ abort: true })): it ends with the reason,
    // whatever the guest returned, as a worker's call does.
    budget.signal?.throwIfAborted();
    this.#checkGuestError(name);
    return result;
  }

  /**
   * Ends a call whose guest reported a failure with `host_set_error`, once
   * its function returned (and, for a bytes call, its buffers were freed).
   */
  #checkGuestError(fn: string): void {
    const message = this.#slot.guestError;
    if (message === undefined) return;
    this.#slot.guestError = undefined;
    throw new GuestError(message, { functionName: fn });
  }

  invokeBytes(
    call: BytesCall,
    budget: CallBudget,
    startMs: number,
  ): number | Uint8Array | Promise<number | Uint8Array> {
    this.#lastFuelUsed = 0;
    const fn = this.#function(call.fn);
    const alloc = this.#function(call.alloc);
    const free = call.free === null ? undefined : this.#function(call.free);
    if (fn === undefined || alloc === undefined || (call.free !== null && free === undefined)) {
      return Promise.reject(new TypeError(`Exports of a bytes call to "${call.fn}" are missing`));
    }
    if (budget.signal?.aborted) return Promise.reject(budget.signal.reason);
    this.#slot.error = undefined;
    this.#slot.generation++;
    this.#cancelled = undefined;
    // One budget for every step: the instrumentation is armed once, and each
    // step draws on what the previous ones left.
    this.#begin(budget, startMs);
    const exports: BytesExports = { fn, alloc, free };
    if (this.#async) {
      return this.#runCancellable(budget, () => this.#exchangeAsync(call, exports)) as Promise<
        number | Uint8Array
      >;
    }
    let output: number | Uint8Array;
    try {
      output = this.#exchange(call, exports);
    } catch (err) {
      throw this.#abortedOr(budget, this.#failure(err));
    } finally {
      this.#end();
    }
    budget.signal?.throwIfAborted(); // as in invoke()
    return output;
  }

  /** One export call of an exchange; a host function's error ends it even if the guest caught it. */
  #step(f: Callable, ...args: unknown[]): unknown {
    const value = f(...args);
    if (this.#slot.error !== undefined) {
      // A JSPI-wrapped export whose host function failed before it suspended
      // answers a rejected promise: the recorded error is the one that counts.
      if (value instanceof Promise) value.catch(() => {});
      throw this.#slot.error;
    }
    return value;
  }

  /**
   * The steps of a bytes call (see {@linkcode BytesCall}) for a synchronous
   * module; {@linkcode #exchangeAsync} is the same for a JSPI-wrapped one.
   */
  #exchange(call: BytesCall, { fn, alloc, free }: BytesExports): number | Uint8Array {
    const { input } = call;
    let inPtr = 0;
    if (input.length > 0) {
      // Set while `alloc` runs: a trap there is read as out of memory (see #failure).
      this.#allocTrapped = call;
      inPtr = this.#step(alloc, input.length) as number;
      this.#allocTrapped = undefined;
      inPtr = allocated(call, inPtr >>> 0);
    }
    this.memory.write(inPtr, input);
    let raw: unknown;
    try {
      raw = this.#step(fn, inPtr, input.length);
    } catch (err) {
      this.#freeInputAfterHostError(call, free, inPtr, input.length);
      throw err;
    }
    if (!call.packedOutput) {
      this.#release(call, free, inPtr, input.length);
      this.#checkGuestError(call.fn);
      return raw as number;
    }
    const [outPtr, outLen] = unpackOutput(raw as bigint);
    // Copy the output out before freeing: the guest may return its input buffer.
    let output: Uint8Array;
    try {
      output = this.#readOutput(outPtr, outLen);
    } finally {
      this.#release(call, free, inPtr, input.length);
    }
    if (outPtr !== inPtr) this.#release(call, free, outPtr, outLen);
    this.#checkGuestError(call.fn);
    return output;
  }

  async #exchangeAsync(
    call: BytesCall,
    { fn, alloc, free }: BytesExports,
  ): Promise<number | Uint8Array> {
    const { input } = call;
    let inPtr = 0;
    if (input.length > 0) {
      this.#allocTrapped = call;
      inPtr = await this.#step(alloc, input.length) as number;
      this.#allocTrapped = undefined;
      inPtr = allocated(call, inPtr >>> 0);
    }
    this.memory.write(inPtr, input);
    let raw: unknown;
    try {
      raw = await this.#step(fn, inPtr, input.length);
    } catch (err) {
      await this.#freeInputAfterHostError(call, free, inPtr, input.length);
      throw err;
    }
    // A host function that settled during the awaits may have failed the call.
    if (this.#slot.error !== undefined) throw this.#slot.error;
    if (!call.packedOutput) {
      await this.#release(call, free, inPtr, input.length);
      this.#checkGuestError(call.fn);
      return raw as number;
    }
    const [outPtr, outLen] = unpackOutput(raw as bigint);
    let output: Uint8Array;
    try {
      output = this.#readOutput(outPtr, outLen);
    } finally {
      await this.#release(call, free, inPtr, input.length);
    }
    if (outPtr !== inPtr) await this.#release(call, free, outPtr, outLen);
    this.#checkGuestError(call.fn);
    return output;
  }

  /**
   * Has bytes calls return their output in a buffer reused by the next one
   * (valid until then), for a caller that copies it on at once.
   */
  reuseOutputBuffer(): void {
    this.#outputScratch ??= new Uint8Array(0);
  }

  #readOutput(ptr: number, length: number): Uint8Array {
    const scratch = this.#outputScratch;
    if (scratch === undefined || length > MAX_SCRATCH_BYTES) return this.memory.read(ptr, length);
    const target = length <= scratch.length ? scratch : (this.#outputScratch = new Uint8Array(
      Math.max(length, Math.min(MAX_SCRATCH_BYTES, 2 * scratch.length), 256),
    ));
    this.memory.copyOut(ptr, length, target);
    // A view costs ≈ 25 ns: a run of outputs of one length shares one.
    const last = this.#outputView;
    if (last.length === length && last.buffer === target.buffer) return last;
    return this.#outputView = target.subarray(0, length);
  }

  /** Frees a buffer of a bytes call with the module's `dealloc(ptr, len)` or `free(ptr)`, if any. */
  /**
   * Frees a bytes call's input after `fn` failed in a host function: the
   * guest stopped at a call of the host, between its own steps, so its
   * allocator is as `fn` left it, and the buffer would stay taken for good
   * (a few dozen failed calls of 512 KiB, and every later call was out of
   * memory). A trap or a limit may stop the guest anywhere, its allocator
   * included: then nothing runs. What the guest allocated itself stays
   * allocated (no destructor runs on a failure).
   */
  #freeInputAfterHostError(
    call: BytesCall,
    free: Callable | undefined,
    ptr: number,
    length: number,
  ): unknown {
    const recorded = this.#slot.error;
    if (recorded === undefined || free === undefined) return undefined;
    // A call that must stop (its deadline passed, it was aborted) would stop the free midway,
    // and an allocator cut off there is worse than a buffer left taken.
    if (this.#limits?.mustStop() === true || this.#slot.callSignal?.aborted) return undefined;
    // Nor with little fuel left: a free cut off by it may leave the allocator locked.
    const limits = this.#limits;
    if (limits !== null && this.#spec.instrumentation?.fuelGlobal && limits.fuelLeft < FREE_FUEL) {
      return undefined;
    }
    this.#slot.error = undefined;
    this.#limits?.unwind();
    const restore = (): void => {
      this.#slot.error = recorded;
    };
    let freed: unknown;
    try {
      freed = this.#release(call, free, ptr, length);
    } catch {
      // The call fails with the host function's error, not this one.
      restore();
      return undefined;
    }
    if (!(freed instanceof Promise)) {
      restore();
      return undefined;
    }
    return freed.then(restore, restore);
  }

  #release(call: BytesCall, free: Callable | undefined, ptr: number, length: number): unknown {
    if (free === undefined || (length === 0 && ptr === 0)) return undefined;
    return call.free === "dealloc"
      ? this.#step(free, ptr | 0, length | 0)
      : this.#step(free, ptr | 0);
  }

  async #runCancellable(budget: CallBudget, body: () => unknown): Promise<unknown> {
    // Cancelling rejects what the guest waits on, and aborts the host work behind it.
    const controller = new AbortController();
    let reject!: (reason: unknown) => void;
    const promise = new Promise<never>((_, r) => {
      reject = (reason) => {
        if (this.#cancelled === undefined) {
          this.#cancelled = { reason };
          // A guest that catches the cancellation stops at its next deadline check.
          this.#limits?.interrupt();
        }
        r(reason);
        controller.abort(reason);
      };
    });
    promise.catch(() => {});
    this.#cancellation = { promise, reject };
    this.#slot.signal = controller.signal;
    const watch = this.#watch = new CallWatch(budget, {
      deadline: this.#currentDeadline(),
      onStop: reject,
    });
    let result: unknown;
    try {
      result = await body();
      // A cancelled call ends with its reason, even if the guest caught it and returned.
      if (this.#cancelled !== undefined) throw this.#cancelled.reason;
    } catch (err) {
      if (this.#cancelled !== undefined) this.#limits?.unwind();
      const failure = this.#cancelled === undefined ? this.#failure(err) : this.#cancelled.reason;
      // An aborted call rejects with the signal's reason, whatever the guest made of it.
      throw this.#reportedAs(budget.signal?.aborted ? budget.signal.reason : failure);
    } finally {
      this.#end();
      watch[Symbol.dispose]();
      this.#watch = undefined;
      this.#cancellation = undefined;
      this.#slot.signal = undefined;
      // What the cancelled host functions still do belongs to no call.
      this.#slot.generation++;
    }
    if (this.#slot.error !== undefined) throw this.#failure(undefined);
    return result;
  }

  /**
   * A call aborted meanwhile (by one of its own host functions: stop({ abort: true })) ends
   * with the reason, whatever else stopped it, as an async call and a worker's do.
   */
  #abortedOr(budget: CallBudget, failure: unknown): unknown {
    return budget.signal?.aborted ? this.#reportedAs(budget.signal.reason) : failure;
  }

  #failure(err: unknown): unknown {
    // The guest was unwound without its epilogues (see InstanceLimits.unwind).
    this.#limits?.unwind();
    const allocating = this.#allocTrapped;
    this.#allocTrapped = undefined;
    const recorded = this.#slot.error;
    this.#slot.error = undefined;
    if (recorded !== undefined) {
      // A guest that caught a host function's error and ran on until its deadline ends with
      // the TimeoutError, as in a worker, whose host raises it whatever the guest did; so does
      // a call whose host function ran past the deadline before it failed.
      const limit = this.#limitThatStopped(err);
      if (limit instanceof TimeoutError) return this.#reportedAs(limit);
      if (performance.now() >= this.#currentDeadline()) {
        return this.#reportedAs(
          new TimeoutError(undefined, { timeoutMs: this.#budget?.timeoutMs ?? Infinity }),
        );
      }
      return this.#reportedAs(recorded);
    }
    const failure = this.#withGuestMessage(this.#classify(err));
    if (allocating === undefined || !(failure instanceof TrapError)) {
      return this.#reportedAs(failure);
    }
    // An allocator with no failure path (AssemblyScript's) traps where it would answer 0.
    return this.#reportedAs(
      new OutOfMemoryError(
        `The plugin's ${allocating.alloc}(${allocating.input.length}) trapped for the input of "${allocating.fn}" (out of memory, or its allocator failed): ${failure.message}`,
        { cause: failure },
      ),
    );
  }

  /**
   * A trap after the guest reported a failure (`host_set_error`: an SDK's
   * panic hook or abort handler reports its message, then traps), with that
   * message in its own.
   */
  #withGuestMessage(error: unknown): unknown {
    const message = this.#slot.guestError;
    this.#slot.guestError = undefined;
    if (message === undefined || !(error instanceof TrapError)) return error;
    return new TrapError(`Plugin trapped: ${error.trap} (the plugin reported: ${message})`, {
      trap: error.trap,
      cause: error.cause,
    });
  }

  /** Remembers an error a call ends with, so that no later call can end with it again. */
  #reportedAs(error: unknown): unknown {
    if (typeof error === "object" && error !== null) this.#reported.add(error);
    return error;
  }

  #classify(err: unknown): unknown {
    if (err === HOST_ERROR_RECORDED) {
      // What a failed host function threw at the guest, kept and thrown again in another call.
      return new TrapError(undefined, {
        trap: "The plugin rethrew a host function's error of an earlier call",
        cause: err,
      });
    }
    if (typeof err === "object" && err !== null && this.#reported.has(err)) {
      // A guest kept an exception from an earlier call (catch_all_ref) and threw it again.
      return new TrapError(undefined, {
        trap: "The plugin rethrew an exception of an earlier call",
        cause: err,
      });
    }
    const limit = this.#limitThatStopped(err);
    if (limit !== undefined) return limit;
    // proc_exit: a command run turns it into an exit code; any other call reports it.
    if (err instanceof WasiExit) {
      if (this.#stdin !== undefined) return err;
      return new TrapError(undefined, {
        trap: `The plugin called proc_exit(${err.code}) outside plugin.run()`,
        cause: err,
      });
    }
    if (err instanceof DOMException && err.name === "AbortError") return err;
    return classifyCallError(err, this.#spec.maxCallDepth);
  }

  /** The error for a trap raised by the instrumentation, if that is what `err` is. */
  #limitThatStopped(err: unknown): WasmError | undefined {
    if (this.#limits === null || !(err instanceof WebAssembly.RuntimeError)) return undefined;
    const budget = this.#budget;
    switch (this.#limits.trapReason) {
      case TrapReason.Fuel:
        return new FuelExhaustedError(undefined, {
          fuelLimit: budget?.fuel ?? UNMETERED_FUEL,
          cause: err,
        });
      case TrapReason.CallDepth:
        return new CallDepthExceededError(undefined, {
          maxCallDepth: this.#spec.maxCallDepth,
          cause: err,
        });
      case TrapReason.Deadline:
        // No cause: the deadline is the reason, and in a worker the host's own timer often
        // ends the call before the guest's check traps, with no engine error to carry.
        return new TimeoutError(undefined, { timeoutMs: budget?.timeoutMs ?? Infinity });
      default:
        return undefined;
    }
  }

  /**
   * Ends the running call if the guest is suspended in an async host
   * function: what it waits on rejects with `reason`. A guest running wasm
   * code is stopped by the instrumentation's deadline check instead.
   */
  cancel(reason: unknown): void {
    this.#cancellation?.reject(reason);
  }

  /**
   * Copies out the state a new instance of the module needs to carry on
   * where this one is (see {@linkcode restoreState}), or says why the
   * memories and globals are not all of it.
   */
  captureState(): ParkedState | string {
    const state = this.#spec.instrumentation?.state ?? null;
    if (state === null) return "the module does not export its state";
    if (state.incomplete !== null) return state.incomplete;
    const wasi = this.#wasi === undefined ? undefined : wasiStates.get(this.#wasi);
    if (wasi !== undefined && (wasi.fds.changes !== this.#wasiChanges || wasi.stdinOffset !== 0)) {
      return "its WASI descriptors changed";
    }
    const exports = this.#exports;
    const globals = state.globals.map((name) => (exports[name] as WebAssembly.Global).value);
    // A JS number does not keep a NaN's payload bits: restored, the global would differ.
    if (globals.some((value) => Number.isNaN(value))) return NAN_GLOBAL;
    const { tokens, refilledAt } = this.#logBudget;
    return {
      memories: state.memories.map(({ name }) =>
        new Uint8Array((exports[name] as WebAssembly.Memory).buffer).slice()
      ),
      globals,
      logBudget: { tokens, at: performance.timeOrigin + refilledAt },
      ...(wasi !== undefined && { wasiCreatedAt: wasi.createdAt }),
    };
  }

  /**
   * Takes over the state {@linkcode captureState} copied from another
   * instance of the same module, in place of running the start function.
   */
  restoreState(parked: ParkedState): void {
    const state = this.#spec.instrumentation?.state;
    if (state === null || state === undefined || state.incomplete !== null) {
      throw new TypeError("Cannot restore the state of a module that does not export it");
    }
    const exports = this.#exports;
    state.memories.forEach(({ name, pageSize, memory64 }, i) => {
      const memory = exports[name] as WebAssembly.Memory;
      const bytes = parked.memories[i]!;
      const delta = (bytes.length - memory.buffer.byteLength) / pageSize;
      if (delta > 0) memory.grow((memory64 ? BigInt(delta) : delta) as number);
      new Uint8Array(memory.buffer).set(bytes);
    });
    state.globals.forEach((name, i) => {
      (exports[name] as WebAssembly.Global).value = parked.globals[i];
    });
    if (parked.logBudget !== undefined) {
      // What was left then, refilled for the time since (on this thread's clock).
      this.#logBudget.tokens = parked.logBudget.tokens;
      this.#logBudget.refilledAt = parked.logBudget.at - performance.timeOrigin;
    }
    const wasi = this.#wasi === undefined ? undefined : wasiStates.get(this.#wasi);
    if (wasi !== undefined && parked.wasiCreatedAt !== undefined) {
      wasi.createdAt = parked.wasiCreatedAt;
    }
  }

  /** Bytes of all the plugin's memories (summed by the module when it has several). */
  memoryBytes(): number {
    const total = this.#memoryTotal;
    return total === null ? this.memory.byteLength : Number(total());
  }

  readMemory(offset: number, length: number): Uint8Array {
    return this.memory.read(offset, length);
  }

  writeMemory(offset: number, data: Uint8Array): void {
    this.memory.write(offset, data);
  }

  close(): Promise<void> {
    this.#cancellation?.reject(new TimeoutError(undefined, { timeoutMs: 0 }));
    this.#wasi?.close();
    this.#functions.clear();
    this.#exports = {};
    this.memory.attach(undefined);
    return Promise.resolve();
  }
}

/**
 * Why {@linkcode PluginInstance.captureState} refused while a float global
 * holds a NaN: the only refusal that passes (once the global changes), so
 * the host tries again at the next idle time.
 */
export const NAN_GLOBAL = "a float global holds a NaN";

/** The exports a bytes call uses. */
interface BytesExports {
  readonly fn: Callable;
  readonly alloc: Callable;
  readonly free: Callable | undefined;
}

/**
 * The pointer the guest's allocator answered for a bytes call's (non-empty)
 * input, checked: 0 is its "out of memory", and writing there would
 * overwrite the guest's own data.
 *
 * @throws {OutOfMemoryError} If the allocator answered 0.
 */
function allocated(call: BytesCall, ptr: number): number {
  if (ptr !== 0) return ptr;
  throw new OutOfMemoryError(
    `The plugin's ${call.alloc}(${call.input.length}) answered 0 (out of memory) for the input of "${call.fn}"`,
  );
}

/** The output pointer and length a bytes-ABI function packs into its i64 result. */
function unpackOutput(raw: bigint): [number, number] {
  // Through a typed array: no BigInt arithmetic, which allocates.
  packedWord[0] = raw;
  return [packedHalves[LITTLE_ENDIAN ? 1 : 0]!, packedHalves[LITTLE_ENDIAN ? 0 : 1]!];
}

const packedWord = new BigInt64Array(1);
const packedHalves = new Uint32Array(packedWord.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

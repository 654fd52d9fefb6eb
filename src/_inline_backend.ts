/**
 * The inline backend: the plugin's instance lives on the host thread. For
 * trusted code; calls cost about as much as a direct wasm call.
 *
 * @module
 */

import type { ModuleArtifact, PreparedModule } from "./_artifact.ts";
import type { CallBudget, PluginBackend } from "./_backend.ts";
import { Capability } from "./capability.ts";
import {
  CallDepthExceededError,
  CapabilityDeniedError,
  FuelExhaustedError,
  ImportNotFoundError,
  InstantiationError,
  TimeoutError,
  type WasmError,
} from "./errors.ts";
import { InstanceLimits, TrapReason } from "./instrument/instrument.ts";
import {
  createBuiltin,
  type ErrorSlot,
  guardHostFunction,
  type HostEnvironment,
  isAsyncBuiltin,
  isBuiltin,
} from "./host/_env.ts";
import { findExportedMemory, GuestMemory } from "./host/_guest_memory.ts";
import { hasJspi, promising, suspending } from "./_jspi.ts";
import type { Linker } from "./linker.ts";
import { classifyCallError } from "./_trap.ts";

/** What an inline instance is made from. */
export interface InlineBackendOptions {
  readonly artifact: ModuleArtifact;
  readonly prepared: PreparedModule;
  readonly env: HostEnvironment;
  readonly linker: Linker | undefined;
  readonly maxCallDepth: number;
  /** Budgets of the deferred start function (the plugin's own limits). */
  readonly startBudget: CallBudget;
}

/** Fuel budget of calls when fuel is metered but `maxFuel` is `null`. */
const UNMETERED_FUEL = 2 ** 53 - 1;

type Callable = (...args: unknown[]) => unknown;

/** Cancels the async host functions a suspended guest is waiting on. */
interface Cancellation {
  promise: Promise<never>;
  reject: (reason: WasmError) => void;
}

/** Instantiates the module on the host thread. */
export async function createInlineBackend(options: InlineBackendOptions): Promise<PluginBackend> {
  const backend = new InlineBackend(options);
  await backend.instantiate();
  return backend;
}

class InlineBackend implements PluginBackend {
  readonly #options: InlineBackendOptions;
  readonly #slot: ErrorSlot = { error: undefined };
  readonly #memory = new GuestMemory();
  readonly #functions = new Map<string, Callable>();
  #exports: WebAssembly.Exports = {};
  /** True when the module imports an async host function, so exports are JSPI-wrapped. */
  #async = false;
  #cancellation: Cancellation | undefined;
  /** Host side of the instrumentation, `null` for an uninstrumented module. */
  #limits: InstanceLimits | null = null;
  /** Budgets of the running call, to name the limit that stopped it. */
  #budget: CallBudget | undefined;
  #fuelBudget = 0;
  #lastFuelUsed = 0;

  constructor(options: InlineBackendOptions) {
    this.#options = options;
  }

  get lastFuelUsed(): number {
    return this.#lastFuelUsed;
  }

  async instantiate(): Promise<void> {
    const imports = this.#buildImports();
    let instance: WebAssembly.Instance;
    try {
      instance = await WebAssembly.instantiate(this.#options.prepared.module, imports);
    } catch (err) {
      const cause = this.#slot.error ?? classifyCallError(err, this.#options.maxCallDepth);
      this.#slot.error = undefined;
      throw new InstantiationError(`Cannot instantiate the module: ${cause.message}`, { cause });
    }
    this.#exports = instance.exports;
    this.#memory.attach(findExportedMemory(instance.exports));
    const instrumentation = this.#options.prepared.instrumentation;
    if (instrumentation === null) return;
    this.#limits = new InstanceLimits(instance, instrumentation);
    if (instrumentation.startFunction === null) return;
    // The module's start function, deferred by the instrumenter, runs under the plugin's limits.
    try {
      this.#begin(this.#options.startBudget, performance.now());
      this.#limits.runStart();
      this.#end();
    } catch (err) {
      const cause = this.#failure(err) as WasmError;
      throw new InstantiationError(`The start function failed: ${cause.message}`, { cause });
    }
  }

  /** Arms the instrumentation for one top-level call. */
  #begin(budget: CallBudget, startMs: number): void {
    this.#budget = budget;
    const limits = this.#limits;
    if (limits === null) return;
    this.#fuelBudget = budget.fuel ?? UNMETERED_FUEL;
    limits.prepare({
      fuel: this.#fuelBudget,
      maxCallDepth: this.#options.maxCallDepth,
      deadline: startMs + budget.timeoutMs,
      now: startMs,
    });
  }

  /** Reads what the call consumed. */
  #end(): void {
    const limits = this.#limits;
    if (limits === null || this.#options.prepared.instrumentation?.fuelGlobal == null) return;
    const remaining = Number(limits.fuelRemaining);
    this.#lastFuelUsed = remaining < 0 ? this.#fuelBudget : this.#fuelBudget - remaining;
  }

  #buildImports(): WebAssembly.Imports {
    const { artifact, env, linker } = this.#options;
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const entry of artifact.info.imports) {
      const { module, name } = entry;
      let value: WebAssembly.ImportValue | undefined;
      const linked = entry.kind === "function" ? linker?.get(module, name) : undefined;
      if (linked !== undefined) {
        value = this.#linkerFunction(module, name, linked as Callable) as WebAssembly.ImportValue;
      } else if (module === "env" && entry.kind === "function" && isBuiltin(name)) {
        value = this.#builtin(name, env);
      }
      if (value === undefined) throw new ImportNotFoundError(module, name);
      (imports[module] ??= {})[name] = value;
    }
    return imports;
  }

  #linkerFunction(module: string, name: string, fn: Callable): Callable {
    const allowed = this.#options.env.capabilities.has(Capability.CallHostFunction);
    return guardHostFunction(module, name, this.#slot, (...args) => {
      if (!allowed) {
        throw new CapabilityDeniedError(
          Capability.CallHostFunction,
          `Calling linker function "${module}"."${name}"`,
        );
      }
      return fn(...args);
    });
  }

  #builtin(name: string, env: HostEnvironment): WebAssembly.ImportValue {
    const fn = createBuiltin(name, env, this.#memory, this.#slot);
    if (!isAsyncBuiltin(name) || !hasJspi) return fn as WebAssembly.ImportValue;
    this.#async = true;
    const cancellable = (...args: unknown[]): unknown => {
      const result = fn(...args);
      const cancellation = this.#cancellation;
      if (!(result instanceof Promise) || cancellation === undefined) return result;
      return Promise.race([result, cancellation.promise]);
    };
    return suspending(cancellable) as WebAssembly.ImportValue;
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
    const fn = this.#function(name);
    if (fn === undefined) throw new TypeError(`Export "${name}" is not a function`);
    budget.signal?.throwIfAborted();
    this.#slot.error = undefined;
    this.#begin(budget, startMs);
    if (this.#async) return this.#invokeAsync(fn, args, budget);
    let result: unknown;
    try {
      result = fn(...args);
    } catch (err) {
      throw this.#failure(err);
    } finally {
      this.#end();
    }
    if (this.#slot.error !== undefined) throw this.#failure(undefined);
    return result;
  }

  async #invokeAsync(fn: Callable, args: readonly unknown[], budget: CallBudget): Promise<unknown> {
    let reject!: (reason: WasmError) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    promise.catch(() => {});
    this.#cancellation = { promise, reject };
    const timer = Number.isFinite(budget.timeoutMs)
      ? setTimeout(() => reject(new TimeoutError(budget.timeoutMs)), budget.timeoutMs)
      : undefined;
    const onAbort = (): void => reject(budget.signal!.reason);
    budget.signal?.addEventListener("abort", onAbort, { once: true });
    let result: unknown;
    try {
      result = await fn(...args);
    } catch (err) {
      throw this.#failure(err);
    } finally {
      this.#end();
      clearTimeout(timer);
      budget.signal?.removeEventListener("abort", onAbort);
      this.#cancellation = undefined;
    }
    if (this.#slot.error !== undefined) throw this.#failure(undefined);
    return result;
  }

  #failure(err: unknown): unknown {
    const recorded = this.#slot.error;
    this.#slot.error = undefined;
    if (recorded !== undefined) return recorded;
    const limit = this.#limitThatStopped(err);
    if (limit !== undefined) return limit;
    if (err instanceof DOMException && err.name === "AbortError") return err;
    return classifyCallError(err, this.#options.maxCallDepth);
  }

  /** The error for a trap raised by the instrumentation, if that is what `err` is. */
  #limitThatStopped(err: unknown): WasmError | undefined {
    if (this.#limits === null || !(err instanceof WebAssembly.RuntimeError)) return undefined;
    const budget = this.#budget;
    switch (this.#limits.trapReason) {
      case TrapReason.Fuel:
        return new FuelExhaustedError(budget?.fuel ?? UNMETERED_FUEL, { cause: err });
      case TrapReason.CallDepth:
        return new CallDepthExceededError(this.#options.maxCallDepth, { cause: err });
      case TrapReason.Deadline:
        return new TimeoutError(budget?.timeoutMs ?? Infinity, { cause: err });
      default:
        return undefined;
    }
  }

  memoryBytes(): number {
    return this.#memory.byteLength;
  }

  readMemory(offset: number, length: number): Uint8Array {
    return this.#memory.read(offset, length);
  }

  writeMemory(offset: number, data: Uint8Array): void {
    this.#memory.write(offset, data);
  }

  close(): Promise<void> {
    this.#cancellation?.reject(new TimeoutError(0));
    this.#functions.clear();
    this.#exports = {};
    this.#memory.attach(undefined);
    return Promise.resolve();
  }
}

/**
 * The worker backend: the plugin's instance lives in its own Deno Worker
 * whose permissions come from the plugin's capabilities. Calls, host
 * functions and memory access go over a SharedArrayBuffer channel; timeouts
 * first raise the instrumented code's interrupt flag, then terminate and
 * respawn the worker.
 *
 * @module
 */

import type { CallBudget, PluginBackend } from "../_backend.ts";
import { TimeoutError, WorkerCrashedError } from "../errors.ts";
import type { HostCallable } from "../host/_env.ts";
import type { HostServices, ServiceName } from "../host/_services.ts";
import type { ImportPlan } from "../_instance.ts";
import { createChannelBuffers, HostChannel } from "./_channel.ts";
import { decodeError, encodeError } from "./_error_codec.ts";
import { ToHost, ToWorker, type WorkerReady, type WorkerSetup } from "./_protocol.ts";
import type { WireMessage, WireValue } from "./_wire.ts";
import type { InstrumentMetadata } from "../instrument/instrument.ts";

/** How long a guest may take to stop after its interrupt flag is raised. */
const GRACE_MS = 100;

/** Everything needed to (re)start a plugin's worker. */
export interface WorkerBackendOptions {
  readonly pluginName: string;
  readonly module: WebAssembly.Module;
  readonly instrumentation: InstrumentMetadata | null;
  readonly imports: readonly ImportPlan[];
  /** Linker functions by import index (the plan's `index`). */
  readonly linkerFunctions: readonly HostCallable[];
  readonly services: HostServices;
  readonly capabilities: ReadonlySet<string>;
  readonly allowedHosts: readonly string[];
  readonly permissions: Deno.PermissionOptionsObject;
  readonly maxCallDepth: number;
  readonly startBudget: CallBudget;
}

const WORKER_URL = new URL("./_worker_main.ts", import.meta.url);

/** Spawns the plugin's worker and instantiates the module in it. */
export async function createWorkerBackend(options: WorkerBackendOptions): Promise<PluginBackend> {
  const backend = new WorkerBackend(options);
  await backend.spawn();
  return backend;
}

interface LiveWorker {
  readonly worker: Worker;
  readonly channel: HostChannel;
  readonly interrupt: Int32Array | null;
  crashed: WorkerCrashedError | undefined;
}

class WorkerBackend implements PluginBackend {
  readonly #options: WorkerBackendOptions;
  #live: LiveWorker | undefined;
  #memoryBytes = 0;
  #lastFuelUsed = 0;
  #closed = false;

  constructor(options: WorkerBackendOptions) {
    this.#options = options;
  }

  get lastFuelUsed(): number {
    return this.#lastFuelUsed;
  }

  memoryBytes(): number {
    return this.#memoryBytes;
  }

  /** Starts a worker and waits until its instance exists. */
  async spawn(): Promise<LiveWorker> {
    const options = this.#options;
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: `wasmplug:${options.pluginName}`,
      deno: { permissions: options.permissions },
    } as WorkerOptions);
    const buffers = createChannelBuffers();
    const channel = new HostChannel(buffers);
    const setup: WorkerSetup = {
      module: options.module,
      instrumentation: options.instrumentation,
      imports: options.imports,
      pluginName: options.pluginName,
      capabilities: [...options.capabilities],
      allowedHosts: options.allowedHosts,
      maxCallDepth: options.maxCallDepth,
      startFuel: options.startBudget.fuel,
      startTimeoutMs: options.startBudget.timeoutMs,
      channel: buffers,
    };
    let ready: WorkerReady;
    try {
      ready = await this.#startup(worker, setup);
    } catch (err) {
      worker.terminate();
      throw err;
    }
    if (!ready.ok) {
      worker.terminate();
      throw decodeError(ready.error);
    }
    const live: LiveWorker = {
      worker,
      channel,
      interrupt: ready.interrupt === null ? null : new Int32Array(ready.interrupt, 0, 1),
      crashed: undefined,
    };
    worker.onerror = (event) => {
      event.preventDefault();
      live.crashed = new WorkerCrashedError(`The plugin's worker crashed: ${event.message}`);
      channel.close();
    };
    this.#memoryBytes = ready.memoryBytes;
    this.#live = live;
    return live;
  }

  /** Posts the setup and waits for the worker's answer (or its death, or the start timeout). */
  #startup(worker: Worker, setup: WorkerSetup): Promise<WorkerReady> {
    return new Promise((resolve, reject) => {
      const timeoutMs = setup.startTimeoutMs;
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs + GRACE_MS)
        : undefined;
      worker.onmessage = (event: MessageEvent<WorkerReady>) => {
        clearTimeout(timer);
        worker.onmessage = null;
        resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        clearTimeout(timer);
        reject(new WorkerCrashedError(`The plugin's worker failed to start: ${event.message}`));
      };
      worker.postMessage(setup);
    });
  }

  async #worker(): Promise<LiveWorker> {
    if (this.#closed) throw new WorkerCrashedError("The plugin's worker is closed");
    return this.#live ?? await this.spawn();
  }

  /** Ends the current worker; the next call starts a fresh one. */
  #discard(live: LiveWorker): void {
    live.worker.terminate();
    live.channel.close();
    if (this.#live === live) this.#live = undefined;
  }

  async invoke(
    name: string,
    args: readonly unknown[],
    budget: CallBudget,
    startMs: number,
  ): Promise<unknown> {
    budget.signal?.throwIfAborted();
    const live = await this.#worker();
    live.channel.post(ToWorker.Call, [
      name,
      budget.fuel,
      budget.timeoutMs,
      ...(args as WireValue[]),
    ]);
    const reply = await this.#converse(live, budget, startMs);
    const [fuelUsed, memoryBytes, ...results] = reply.values as [number, number, ...unknown[]];
    this.#lastFuelUsed = fuelUsed;
    this.#memoryBytes = memoryBytes;
    if (reply.op === ToHost.Failure) throw decodeError(reply.values[0] as string);
    if (results.length === 0) return undefined;
    return results.length === 1 ? results[0] : results;
  }

  /**
   * Waits for the worker's answer, serving its host-function calls meanwhile,
   * and enforces the call's deadline and abort signal.
   */
  async #converse(live: LiveWorker, budget: CallBudget, startMs: number): Promise<WireMessage> {
    const deadline = startMs + budget.timeoutMs;
    let stopping: unknown;
    let graceEnd = Infinity;
    const onAbort = (): void => {
      stopping ??= budget.signal!.reason;
      graceEnd = performance.now() + GRACE_MS;
      this.#interrupt(live);
    };
    budget.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while (true) {
        const wait = Math.min(deadline, graceEnd) - performance.now();
        const message = await live.channel.receive(Math.max(0, wait));
        if (message === undefined) {
          if (live.crashed !== undefined) {
            this.#discard(live);
            throw stopping ?? live.crashed;
          }
          if (stopping === undefined) {
            stopping = new TimeoutError(budget.timeoutMs);
            graceEnd = performance.now() + GRACE_MS;
            this.#interrupt(live);
            continue;
          }
          if (performance.now() >= graceEnd) {
            // The guest did not stop (blocked in a host call, or not instrumented): kill it.
            this.#discard(live);
            throw stopping;
          }
          continue;
        }
        if (message.op === ToHost.LinkerCall || message.op === ToHost.ServiceCall) {
          await this.#serveHostCall(live, message, () => stopping);
          continue;
        }
        if (message.op === ToHost.Failure && stopping !== undefined) {
          this.#lastFuelUsed = message.values[1] as number;
          this.#memoryBytes = message.values[2] as number;
          const error = decodeError(message.values[0] as string);
          // The interrupt the host raised shows up as a deadline trap: report why it was raised.
          if (error instanceof TimeoutError) throw stopping;
        }
        return message;
      }
    } finally {
      budget.signal?.removeEventListener("abort", onAbort);
    }
  }

  #interrupt(live: LiveWorker): void {
    if (live.interrupt === null) return;
    Atomics.store(live.interrupt, 0, 1);
    Atomics.notify(live.interrupt, 0);
  }

  /** Runs a linker function or a host service for the guest, and answers it. */
  async #serveHostCall(
    live: LiveWorker,
    message: WireMessage,
    stopping: () => unknown,
  ): Promise<void> {
    try {
      let value: unknown;
      if (message.op === ToHost.LinkerCall) {
        const [index, ...args] = message.values as [number, ...unknown[]];
        const fn = this.#options.linkerFunctions[index];
        if (fn === undefined) throw new RangeError(`No linker function ${index}`);
        value = fn(...args);
      } else {
        const [name, ...args] = message.values as [ServiceName, ...unknown[]];
        const service = this.#options.services[name] as (...a: unknown[]) => unknown;
        if (typeof service !== "function") throw new RangeError(`No host service "${name}"`);
        value = service.apply(this.#options.services, args);
      }
      if (value instanceof Promise) value = await value;
      const reason = stopping();
      if (reason !== undefined) throw reason;
      live.channel.post(ToWorker.Return, [value as WireValue]);
    } catch (err) {
      live.channel.post(ToWorker.Throw, [encodeError(err)]);
    }
  }

  async #memoryRequest(op: number, values: WireValue[]): Promise<WireMessage> {
    const live = await this.#worker();
    live.channel.post(op, values);
    const reply = await live.channel.receive();
    if (reply === undefined) {
      this.#discard(live);
      throw live.crashed ?? new WorkerCrashedError("The plugin's worker stopped answering");
    }
    if (reply.op === ToHost.Failure) throw decodeError(reply.values[0] as string);
    return reply;
  }

  async readMemory(offset: number, length: number): Promise<Uint8Array> {
    const reply = await this.#memoryRequest(ToWorker.ReadMemory, [offset, length]);
    return reply.values[0] as Uint8Array;
  }

  async writeMemory(offset: number, data: Uint8Array): Promise<void> {
    await this.#memoryRequest(ToWorker.WriteMemory, [offset, data]);
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#live !== undefined) this.#discard(this.#live);
    return Promise.resolve();
  }
}

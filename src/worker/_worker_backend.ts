/**
 * The worker backend: the plugin's instance lives in its own Deno Worker
 * whose permissions come from the plugin's capabilities (or are the host's:
 * see `_permission_mode.ts`), started from the bundled worker entry. Calls, host
 * functions and memory access go over a SharedArrayBuffer channel; timeouts
 * first ask the call's channel to stop, which the instrumented code's clock
 * hook checks, and raise the interrupt flag that cancels what a suspended
 * guest waits on (and answer a host function the guest waits on with the
 * reason), then terminate and respawn the worker. The worker's clock hook
 * also checks the deadline itself, so a call stops on time while the host's
 * thread is held up.
 *
 * A live worker keeps the host process alive and cannot be unref'd, so a
 * worker idle for `idleTimeoutMs` is parked: its instance hands its memories
 * and mutable globals to the host and the worker is terminated; the next
 * exchange spawns a worker that takes that state over before it serves.
 *
 * @module
 */

import type {
  AheadCall,
  BytesCall,
  CallBudget,
  CommandResult,
  PluginBackend,
} from "../backend/mod.ts";
import { isInHostCallOf, runInHostCall } from "../host/mod.ts";
import {
  InstantiationError,
  MemoryOutOfBoundsError,
  PluginStateError,
  TypeMismatchError,
  WorkerCrashedError,
} from "../errors.ts";
import { CallQueue, describeValue, MAX_TIMER_MS } from "../common/mod.ts";
import {
  CallWatch,
  crossesAsItself,
  type InternalOptions,
  isManyResults,
  NAN_GLOBAL,
  withCommandOutput,
} from "../backend/mod.ts";
import { createHostServices, type HostServices, type ServiceName } from "../host/mod.ts";
import type { ParkedState } from "../backend/mod.ts";
import {
  type BackendParts,
  type InstanceSpec,
  type PluginHostSide,
  startBudgetOf,
} from "../backend/mod.ts";
import { type ChannelBuffers, ChannelWaits, createLaneBuffers, HostChannel } from "./_channel.ts";
import { decodeError, encodeError } from "./_error_codec.ts";
import { exportIndex, packBytesShape, ToHost, ToWorker, type WorkerReady } from "./_protocol.ts";
import type { WireMessage, WireValue } from "./_wire.ts";
import { onWorkerFailure } from "./_worker_failure.ts";
import { returnFiles } from "../wasi/mod.ts";
import {
  BOOT_TIMEOUT_MS,
  clockOffsetOf,
  newWorker,
  startup,
  workerScriptOf,
} from "./_worker_start.ts";
import { type KeptWorker, workerKey, type WorkerPool } from "./_worker_pool.ts";

/** How long a guest may take to stop after the host asked it to. */
const GRACE_MS = 100;

/**
 * The most memory a worker plugin may have to be parked (see `#park`):
 * parking copies every page of it out of the worker and into the next one
 * (a sparse memory becomes dense, on the host too), so a plugin with more
 * gains nothing from it. A 1 GiB memory took 2.1 GB of RSS parked, and its
 * copy held the host's event loop for 3.1 s. A worker is about 7 MB.
 */
const MAX_PARKED_MEMORY_BYTES = 64 * 1024 * 1024;

/**
 * Fuel of a call whose answer, late to the host's spin, came late because
 * the guest worked (some 5-10 µs of guest code), not because the worker
 * waited for a core: spinning for the next answer pays then.
 */
const LATE_ANSWER_FUEL = 10_000;

/**
 * Everything needed to (re)start a plugin's worker: the instance's spec (what
 * is posted to each worker), the plugin's host side (what serves the
 * worker's host calls), and the worker's permissions.
 */
export interface WorkerBackendOptions extends BackendParts {
  /**
   * The worker's own Deno permissions; `null` starts it without (it shares
   * the host's: see `_permission_mode.ts`).
   */
  readonly permissions: Deno.PermissionOptionsObject | null;
  /** The runtime's internal options: the worker script, its boot timeout, an event hook. */
  readonly internal: InternalOptions;
  /**
   * Where the plugin's worker goes when the plugin stops or parks and the
   * worker is clean, and where a start takes one from; none: every start
   * makes a worker, every stop ends it.
   */
  readonly pool?: WorkerPool;
}

/** Spawns the plugin's worker, instantiates the module in it and runs its start function. */
export async function createWorkerBackend(options: WorkerBackendOptions): Promise<PluginBackend> {
  const backend = new WorkerBackend(options);
  await backend.spawn();
  return backend;
}

/**
 * How many channels a worker has: requests go to them in turn, so up to
 * this many calls are in flight at once (one running, the others posted
 * ahead of their turn: see `invokeAhead`).
 */
const LANES = 4;

interface LiveWorker {
  readonly worker: Worker;
  /** The name it was started with: its first plugin's (a worker cannot be renamed). */
  readonly name: string;
  /** The linear memory of the plugins it served before this one, added up (see `WorkerPool`). */
  readonly servedBytes: number;
  /** The bulk buffer its channels share, which grows with the largest message. */
  readonly bulk: SharedArrayBuffer;
  /** The channels, which requests take in turn. */
  readonly channels: readonly HostChannel[];
  /** The index of the channel the next request goes to. */
  next: number;
  /** How the host waits on the channels, which they share. */
  readonly waits: ChannelWaits;
  /** What to add to a time on the worker's clock for the host's (see `WorkerReady.now`). */
  readonly clockOffset: number;
  readonly interrupt: Int32Array;
  crashed: WorkerCrashedError | undefined;
}

/** A worker that answered its setup (see `WorkerBackend.#boot`). */
interface Booted {
  readonly worker: Worker;
  /** What the pool gave, when the worker is a kept one. */
  readonly kept: KeptWorker | undefined;
  readonly buffers: readonly ChannelBuffers[];
  readonly ready: WorkerReady;
}

/** A call posted to a worker ahead of its turn (see `WorkerBackend.invokeAhead`). */
interface Flight {
  readonly live: LiveWorker;
  /** The channel it was posted to, and that channel's index. */
  readonly channel: HostChannel;
  readonly lane: number;
  readonly op: number;
  readonly values: WireValue[];
  readonly outputLength: number;
  readonly budget: CallBudget;
  /** Taken back before the worker began it: it is posted again when it runs. */
  retracted: boolean;
}

/**
 * The longest write a host call's worker is sent without first checking that
 * it ends in memory (see `WorkerBackend.#accessDuringHostCall`).
 */
const UNPROBED_WRITE_BYTES = 1 << 20;

/** The longest wait between two tries to park a worker whose state cannot be parked yet. */
const MAX_PARK_BACKOFF_MS = 60_000;
/** The first back-off after a refused park, for a zero `idleTimeoutMs`. */
const MIN_PARK_BACKOFF_MS = 10;

/** `promise`, or a rejection with `signal`'s reason as soon as it aborts. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** A memory access waiting for the channel's turn (see `WorkerBackend.#memoryRequest`). */
interface QueuedAccess {
  readonly op: number;
  readonly values: WireValue[];
  /** Its reply, once a host call took it over (`undefined`: that call ended first). */
  served: Promise<WireMessage | undefined> | undefined;
  /** Stops its wait for the turn: a host call took it over. */
  wake: () => void;
}

/** A host function (or service) the guest is waiting on. */
interface PendingHostCall {
  /** Whether the guest has its answer (or it is held, see {@linkcode held}), or the call ended. */
  answered: boolean;
  /** Whether the call's exchange ended: no access reaches its worker any more. */
  ended: boolean;
  /**
   * Whether it is a start function's (of a worker started for an exchange that holds the
   * turn): only its own host functions' accesses go to its worker.
   */
  readonly start: boolean;
  /** The call's channel, on which the worker waits for the answer. */
  readonly channel: HostChannel;
  /**
   * Settles the memory access posted to the waiting worker (see
   * `WorkerBackend.#accessDuringHostCall`) with its reply, or `undefined`
   * when the call ended first; set while one is in flight.
   */
  access: ((reply: WireMessage | undefined) => void) | undefined;
  /** Accesses made while one is in flight, to post after it, first first. */
  readonly waiting: (() => void)[];
  /** The guest's answer, held back while an access is in flight (one message at a time). */
  held: (() => void) | undefined;
  /**
   * Until when (the host's clock) the guest may still end, when the host
   * served the call after the deadline (see `#converse`); else `-Infinity`.
   * The answer tells the guest, whose own clock counted the wait.
   */
  graceUntil: number;
}

/** Why a running call is being stopped, and until when the guest may take to stop. */
interface Stopping {
  readonly reason: unknown;
  readonly graceEnd: number;
  /** Whether the deadline stopped the call (else an abort did). */
  readonly expired: boolean;
  /** Whether the reason was thrown to the guest, waiting on a host function. */
  thrown: boolean;
}

/**
 * The largest output whose buffer is made before the answer comes (see
 * `#outputSteady`). The length comes from the plugin, and a call may then
 * fail: beyond this, a plugin that returned two large outputs could have the
 * host make a large buffer for nothing on every call after, while the copy
 * of such an output costs far more than making its buffer anyway.
 */
const MAX_PREPARED_OUTPUT = 64 * 1024;

/**
 * The most bytes (inputs, text, the last output) a call posted ahead may
 * carry. Its request must fit in its channel: the worker's bulk buffer
 * carries the messages of one conversation at a time (see
 * `ChannelBuffers.bulk`). And large calls gain nothing from it: their
 * copies cost far more than the round trip saved, and a worker waits for
 * the bulk buffer while the host has not taken the long answer before.
 */
const MAX_AHEAD_BYTES = 16 * 1024;

/** Whether a request's values are small enough to post ahead (see {@linkcode MAX_AHEAD_BYTES}). */
function fitsAhead(values: readonly WireValue[]): boolean {
  let bytes = 0;
  for (const value of values) {
    if (value instanceof Uint8Array) bytes += value.length;
    else if (typeof value === "string") bytes += value.length * 3;
  }
  return bytes <= MAX_AHEAD_BYTES;
}

/**
 * Whether a reply's `values` (after the usage) are a command's: its error or
 * exit code, stdout, stderr, truncated, memory size. No typed call's results
 * hold bytes.
 */
function isCommandReply(values: unknown[]): boolean {
  return values.length === 5 && values[1] instanceof Uint8Array;
}

function rawResult(results: unknown[]): unknown {
  if (results.length === 0) return undefined;
  return results.length === 1 ? results[0] : results;
}

class WorkerBackend implements PluginBackend {
  readonly #spec: InstanceSpec;
  /** Each export's index, which requests send instead of its name (see `exportIndex`). */
  readonly #exports: Map<string, number>;
  readonly #host: PluginHostSide;
  readonly #permissions: Deno.PermissionOptionsObject | null;
  readonly #internal: InternalOptions;
  readonly #pool: WorkerPool | undefined;
  /** The script this plugin's workers run (see `workerScriptOf`). */
  readonly #script: URL;
  /** What this plugin's workers run and may do, which a kept worker must match (see `workerKey`). */
  readonly #workerKey: string;
  /** What the worker's built-in host functions call (on this thread). */
  readonly #services: HostServices;
  #live: LiveWorker | undefined;
  #memoryBytes = 0;
  #lastFuelUsed = 0;
  /**
   * The output length of the last bytes call with a packed output, and
   * whether the one before had the same: then the next one is expected to,
   * and its buffer is made while the worker works (see `HostChannel.postRequest`).
   */
  #outputLength = -1;
  #outputSteady = false;
  #closed = false;
  /**
   * The channel's turn: an exchange (a call, a memory access, parking) holds
   * it; when it is free again, the idle timer is armed.
   */
  readonly #queue = new CallQueue({ onFree: () => this.#armIdleTimer() });
  /**
   * The worker of a request whose caller's stack ran out between posting it
   * and reading the answer (a call made at the edge of deep recursion): its
   * channel is out of step, so the next request ends it (`#recover`). Only
   * marked where it happened, since any call there may overflow again.
   */
  #cutOff: LiveWorker | undefined;
  /** Gives back the channel's turn a release cut off the same way left held (see `#recover`). */
  #stranded: (() => void) | undefined;
  /** What host functions threw during the current exchange; the worker refers to them by index. */
  #hostErrors: unknown[] = [];
  /** Whether the exchange a worker starts for left meanwhile (aborted): see `spawn`. */
  #startAbandoned = false;
  /** The host call the running call's guest waits on, if any. */
  #hostCall: PendingHostCall | undefined;
  /** Memory accesses waiting for the channel's turn, first first (see `#memoryRequest`). */
  readonly #queuedAccesses: QueuedAccess[] = [];
  /** Whether idle workers are parked: the state can be handed over and a timeout is set. */
  #parkable: boolean;
  /** The state of the parked instance, until a worker takes it over. */
  #parked: ParkedState | null = null;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** How much longer than `idleTimeoutMs` to wait after a refused park (a NaN in a global). */
  #parkBackoffMs = 0;
  /** When the last exchange ended (`performance.now()`). */
  #lastUse = 0;
  /** The initializers a fresh instance runs after its start function: see `keepInitialized`. */
  #initializers: readonly string[] = [];
  /** The host-call scope of the worker's start step running (see {@linkcode inStartHostCall}). */
  #startScope: object | undefined;
  /** Ends the worker's start in progress (see {@linkcode abortStart}). */
  #startAbort = new AbortController();
  /** How many starts of a worker are in progress (see {@linkcode spawn}). */
  #spawning = 0;
  /**
   * Whether a call holds the channel's turn: it runs, or calls posted ahead
   * of their turn wait to (see {@linkcode invokeAhead}).
   */
  #callInFlight = false;
  /** The calls posted ahead of their turn, first first. */
  readonly #ahead: Flight[] = [];
  /** The channel's turn while calls posted ahead wait for theirs, and no call runs. */
  #aheadTurn: Disposable | undefined;

  constructor({ spec, host, permissions, internal, pool }: WorkerBackendOptions) {
    this.#spec = spec;
    this.#exports = exportIndex(spec.module);
    this.#host = host;
    this.#permissions = permissions;
    this.#internal = internal;
    this.#pool = pool;
    this.#script = workerScriptOf(internal);
    this.#workerKey = workerKey(this.#script, permissions);
    this.#services = createHostServices(host.env);
    const state = spec.instrumentation?.state ?? null;
    this.#parkable = Number.isFinite(spec.idleTimeoutMs) && state !== null &&
      state.incomplete === null;
  }

  get lastFuelUsed(): number {
    return this.#lastFuelUsed;
  }

  /** The host's timer starts when the worker is ready (after a respawn): see `#converse`. */
  readonly deadlineFromStart = false;
  /** See {@linkcode PluginBackend.readyAt}: also set as a call aborted while its worker started leaves. */
  readyAt = 0;

  memoryBytes(): number {
    return this.#memoryBytes;
  }

  /**
   * Starts a worker (or takes a kept one from the pool), waits until its
   * instance exists, and runs the start function, or has the instance take
   * over the parked state.
   */
  async spawn(): Promise<LiveWorker> {
    this.#spawning++;
    try {
      return await this.#spawnOnce();
    } finally {
      // A stop that aborted this start ends it (see abortStart); the next start is new.
      if (--this.#spawning === 0 && this.#startAbort.signal.aborted) {
        this.#startAbort = new AbortController();
      }
    }
  }

  async #spawnOnce(): Promise<LiveWorker> {
    this.#startAbandoned = false;
    const restore = this.#parked;
    const spec = restore === null ? this.#spec : { ...this.#spec, restore };
    const script = this.#script;
    const { worker, kept, buffers, ready } = await this.#boot(spec, script);
    if (!ready.ok) {
      worker.terminate();
      returnFiles(spec.files.cell);
      throw decodeError(ready.error);
    }
    const waits = new ChannelWaits();
    const channels = buffers.map((each) => new HostChannel(each, waits));
    const live: LiveWorker = {
      worker,
      name: kept?.name ?? spec.pluginName,
      servedBytes: kept?.servedBytes ?? 0,
      bulk: buffers[0]!.bulk,
      channels,
      next: 0,
      waits,
      clockOffset: clockOffsetOf(ready),
      interrupt: new Int32Array(ready.interrupt, 0, 1),
      crashed: undefined,
    };
    onWorkerFailure(worker, (description, cause) => {
      live.crashed = new WorkerCrashedError(`The plugin's worker crashed: ${description}`, {
        cause,
      });
      for (const channel of channels) channel.close();
    });
    this.#memoryBytes = ready.memoryBytes;
    // A parked instance's state comes back whole; a fresh one replacing a lost instance
    // runs the initializers the plugin ran (see keepInitialized).
    const initializers = restore === null ? this.#initializers : [];
    let step = "The start function";
    try {
      if (ready.hasStart) {
        const budget = startBudgetOf(spec, this.#host);
        await this.#startStep(live, ToWorker.Start, [budget.fuel, budget.timeoutMs], budget);
      }
      for (const name of initializers) {
        step = `Running the initializer "${name}" again`;
        const budget = startBudgetOf(spec, this.#host);
        await this.#startStep(live, ToWorker.Call, this.#callValues(name, [], budget), budget);
      }
    } catch (err) {
      this.#discard(live);
      // The fuel of a start that failed is not the fuel of the call that needed it.
      this.#lastFuelUsed = 0;
      // Stopped by the host (deadline, abort, a stuck worker): report it as
      // inline does, as a failed instantiation caused by that stop.
      if (err instanceof InstantiationError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new InstantiationError(`${step} failed: ${message}`, { cause: err });
    }
    if (this.#closed && this.#startAbandoned) {
      // close() came while this worker started, for a call that left (aborted) meanwhile: no
      // exchange will use it, and a live worker keeps the process alive.
      this.#discard(live);
      throw new WorkerCrashedError("The plugin's worker is closed");
    }
    this.#live = live;
    this.readyAt = performance.now();
    this.#parked = null;
    if (kept !== undefined) this.#internal.onWorkerEvent?.("reused", script);
    this.#internal.onWorkerEvent?.("spawned", script);
    // Inside an exchange, its end arms the timer.
    if (!this.#queue.busy) this.#armIdleTimer();
    return live;
  }

  /**
   * Runs one export of a worker's start (its start function, an initializer
   * run again) to its end, under the start's budget.
   */
  async #startStep(
    live: LiveWorker,
    op: number,
    values: WireValue[],
    budget: CallBudget,
  ): Promise<void> {
    this.#hostErrors = [];
    const channel = this.#postTo(live, op, values);
    // A scope of its own: what runs in its host functions is told apart from code that only
    // inherited an earlier host call's context (see inStartHostCall).
    const scope = this.#startScope = {};
    // Ended by a stop of the plugin that aborts (see abortStart), as a call by its signal.
    const ending = this.#startAbort.signal;
    const signal = budget.signal === undefined ? ending : AbortSignal.any([budget.signal, ending]);
    try {
      const reply = await this.#converse(
        live,
        channel,
        { ...budget, signal },
        performance.now(),
        undefined,
        true,
      );
      this.#settle(reply);
    } finally {
      if (this.#startScope === scope) this.#startScope = undefined;
    }
  }

  /**
   * Whether the code running now runs in a host function of a worker's start
   * (its start function, or the initializers run again after a restart
   * made for a memory access): that start waits for it, so it can neither
   * call the plugin nor stop it and wait.
   */
  inStartHostCall(): boolean {
    return this.#startScope !== undefined && isInHostCallOf(this.#startScope);
  }

  abortStart(reason: unknown): void {
    // From the worker's spawn on, not only while a step runs: a stop while the worker boots,
    // or between two steps, waited for the whole start.
    if (this.#spawning > 0) this.#startAbort.abort(reason);
  }

  keepInitialized(initializers: readonly string[]): void {
    this.#initializers = [...initializers];
  }

  /**
   * A worker that answered the setup of `spec`: a kept one when the pool
   * has one and it lives through the setup, else a new one.
   */
  async #boot(spec: InstanceSpec, script: URL): Promise<Booted> {
    const bootTimeoutMs = this.#internal.workerBootTimeoutMs ?? BOOT_TIMEOUT_MS;
    let kept = this.#pool?.take(this.#workerKey, spec.pluginName);
    while (true) {
      const worker = kept?.worker ?? newWorker(script, {
        pluginName: spec.pluginName,
        permissions: this.#permissions,
      });
      // Fresh channels for each try: a worker that died may have touched its own.
      const buffers = createLaneBuffers(LANES);
      try {
        const ready = await startup(worker, { spec, channels: buffers }, { bootTimeoutMs });
        return { worker, kept, buffers, ready };
      } catch (err) {
        worker.terminate();
        returnFiles(spec.files.cell);
        // A kept worker that dies before it is ready (what its last plugin
        // left running failed) is not this plugin's failure: a new one serves it.
        if (kept === undefined) throw err;
        kept = undefined;
      }
    }
  }

  /** The current worker, or a new one when there is none (parked) or it crashed. */
  #worker(): LiveWorker | Promise<LiveWorker> {
    const live = this.#live;
    // While closing, the memory accesses made before close() still reach the worker, a parked
    // one respawned for them (see #closeInTurn); once closed, there is none.
    if (live !== undefined && live.crashed === undefined) return live;
    if (this.#closed && this.#parked === null) {
      throw new WorkerCrashedError("The plugin's worker is closed");
    }
    if (live !== undefined) this.#discard(live);
    return this.spawn();
  }

  /** Ends a worker; the next exchange starts a fresh one. */
  #discard(live: LiveWorker): void {
    live.worker.terminate();
    // Files its instance held open are closed with it, uncounted there.
    returnFiles(this.#spec.files.cell);
    for (const channel of live.channels) channel.close();
    if (this.#live === live) this.#live = undefined;
  }

  /**
   * Lets go of an idle worker: hands it to the pool when the worker drops
   * its instance and says nothing of it can still run (no promise of an
   * async host function is pending), ends it otherwise. The next exchange starts
   * a fresh instance either way. Only for a worker no exchange uses.
   */
  async #release(live: LiveWorker): Promise<void> {
    if (this.#live === live) this.#live = undefined;
    if (this.#pool === undefined || live.crashed !== undefined) return this.#discard(live);
    // An idle worker answers at once; one that does not within the grace is not kept.
    const reply = await this.#postTo(live, ToWorker.Retire, []).receive(GRACE_MS);
    if (reply?.op !== ToHost.Done || reply.values[0] !== 1 || live.crashed !== undefined) {
      return this.#discard(live);
    }
    for (const channel of live.channels) channel.close();
    this.#pool.give(this.#workerKey, {
      worker: live.worker,
      name: live.name,
      // Its memory and its channels' buffers are garbage in the worker until it collects them.
      servedBytes: live.servedBytes + this.#memoryBytes + live.bulk.byteLength,
    });
  }

  /**
   * Posts a request to the worker's next channel in turn (the one it will
   * take its next request from) and returns that channel.
   */
  #postTo(
    live: LiveWorker,
    op: number,
    values: WireValue[],
    outputLength = 0,
    ahead = false,
  ): HostChannel {
    const channel = live.channels[live.next]!;
    // First: a request too large to send throws before anything is sent, and the turn stays.
    channel.postRequest(op, values, outputLength, ahead);
    live.next = (live.next + 1) % live.channels.length;
    return channel;
  }

  /**
   * The worker to talk to, for an exchange that holds the channel's turn.
   * Calls are queued by the plugin, but memory access may overlap them: it
   * waits for the turn (`#queue`) first.
   */
  #ready(): LiveWorker | Promise<LiveWorker> {
    if (this.#hostErrors.length > 0) this.#hostErrors = [];
    return this.#worker();
  }

  /**
   * Parks the worker if nothing uses it for `idleTimeoutMs`. One timer serves
   * many calls: each only records when it ended, and the timer, when it fires
   * early, waits out the rest (a timer per call would cost more than the call).
   */
  #armIdleTimer(): void {
    this.#lastUse = performance.now();
    if (this.#idleTimer !== undefined) return;
    if (!this.#parkable || this.#closed || this.#live === undefined) return;
    this.#startIdleTimer(this.#idleTimeout());
  }

  /** How long the worker stays idle before it is parked (see {@linkcode #parkBackoffMs}). */
  #idleTimeout(): number {
    return Math.min(this.#spec.idleTimeoutMs + this.#parkBackoffMs, MAX_TIMER_MS);
  }

  #startIdleTimer(delay: number): void {
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#queue.busy) return; // the exchange in progress re-arms it when it ends
      const idleFor = performance.now() - this.#lastUse;
      const timeout = this.#idleTimeout();
      if (idleFor < timeout) this.#startIdleTimer(timeout - idleFor);
      else void this.#park();
    }, delay);
    // The timer exists so the process can exit: it must not keep it alive itself.
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /**
   * Takes the instance's state and terminates the worker. A worker whose
   * state turns out not to be all in its memories and globals (its WASI
   * descriptors changed) is kept, and never parked again.
   */
  async #park(): Promise<void> {
    const live = this.#live;
    if (this.#closed || live === undefined || live.crashed !== undefined) return;
    // Its memory would move through the host twice, all of it dense: kept instead.
    if (this.#memoryBytes > MAX_PARKED_MEMORY_BYTES) return;
    using turn = this.#queue.tryTake();
    if (turn === undefined) return;
    const reply = await this.#postTo(live, ToWorker.Park, []).receive();
    if (reply === undefined) {
      // Closed or crashed meanwhile: the next exchange starts afresh, as after any crash.
      if (this.#live === live) this.#discard(live);
      return;
    }
    const [refusal, count, tokens, at, wasiCreatedAt, ...rest] = reply.values as [
      string | null,
      number,
      number,
      number,
      number,
      ...unknown[],
    ];
    if (reply.op !== ToHost.Done || refusal !== null) {
      // A NaN in a float global passes: a later idle time tries again, each later than the
      // last (every try wakes the worker). The rest stays.
      if (refusal !== NAN_GLOBAL) this.#parkable = false;
      const backoff = Math.max(
        2 * this.#parkBackoffMs,
        this.#spec.idleTimeoutMs,
        MIN_PARK_BACKOFF_MS,
      );
      this.#parkBackoffMs = Math.min(backoff, MAX_PARK_BACKOFF_MS);
      this.#internal.onWorkerEvent?.("kept", this.#script);
      return;
    }
    this.#parkBackoffMs = 0;
    this.#parked = {
      memories: rest.slice(0, count) as Uint8Array[],
      globals: rest.slice(count) as (number | bigint)[],
      logBudget: { tokens, at },
      ...(wasiCreatedAt >= 0 && { wasiCreatedAt }),
    };
    await this.#release(live);
    this.#internal.onWorkerEvent?.("parked", this.#script);
  }

  invoke(
    name: string,
    args: readonly unknown[],
    budget: CallBudget,
    startMs: number,
  ): unknown {
    this.#lastFuelUsed = 0; // a call refused before it is sent ran nothing
    const values = this.#callValues(name, args, budget);
    const results = this.#request(ToWorker.Call, values, budget, startMs);
    return results instanceof Promise ? results.then(rawResult) : rawResult(results);
  }

  invokeAhead(name: string, args: readonly unknown[], budget: CallBudget): AheadCall | undefined {
    if (!this.#canPostAhead()) return undefined;
    const values = this.#callValues(name, args, budget);
    if (!fitsAhead(values)) return undefined;
    const flight = this.#postAhead(ToWorker.Call, values, budget, 0);
    return {
      run: (startMs) => {
        const results = this.#runAhead(flight, startMs);
        return results instanceof Promise ? results.then(rawResult) : rawResult(results);
      },
      retract: () => this.#retractAhead(flight),
    };
  }

  /** See {@linkcode PluginBackend.checkArguments}: what the channel carries as itself. */
  checkArguments(name: string, args: readonly unknown[]): void {
    checkCrossing(name, args);
  }

  /** A `Call` request's values (checked, see `checkArguments`): the arguments, the export, the budget. */
  #callValues(name: string, args: readonly unknown[], budget: CallBudget): WireValue[] {
    return [
      ...(args as WireValue[]),
      this.#exports.get(name) ?? name,
      budget.fuel,
      budget.timeoutMs,
    ];
  }

  invokeBytes(
    call: BytesCall,
    budget: CallBudget,
    startMs: number,
  ): number | Uint8Array | Promise<number | Uint8Array> {
    this.#lastFuelUsed = 0; // as in invoke()
    // The whole exchange is one request: one round trip, one budget.
    const results = this.#request(
      ToWorker.Bytes,
      this.#bytesValues(call, budget),
      budget,
      startMs,
      this.#expectedOutput(call),
    );
    return results instanceof Promise
      ? results.then((values) => this.#bytesResult(values))
      : this.#bytesResult(results);
  }

  invokeBytesAhead(call: BytesCall, budget: CallBudget): AheadCall | undefined {
    // A call whose output is expected large gains nothing from it (see MAX_AHEAD_BYTES).
    if (!this.#canPostAhead() || this.#outputLength > MAX_AHEAD_BYTES) return undefined;
    const values = this.#bytesValues(call, budget);
    if (!fitsAhead(values)) return undefined;
    const flight = this.#postAhead(ToWorker.Bytes, values, budget, this.#expectedOutput(call));
    return {
      run: (startMs) => {
        const results = this.#runAhead(flight, startMs);
        return results instanceof Promise
          ? results.then((values) => this.#bytesResult(values))
          : this.#bytesResult(results);
      },
      retract: () => this.#retractAhead(flight),
    };
  }

  /** A `Bytes` request's values. */
  #bytesValues(call: BytesCall, budget: CallBudget): WireValue[] {
    return [
      this.#exports.get(call.fn) ?? call.fn,
      budget.fuel,
      budget.timeoutMs,
      packBytesShape(call),
      call.input,
    ];
  }

  /** The output length whose buffer is made ahead for `call`, 0 for none (see `postRequest`). */
  #expectedOutput(call: BytesCall): number {
    return call.packedOutput && this.#outputSteady && this.#outputLength <= MAX_PREPARED_OUTPUT
      ? this.#outputLength
      : 0;
  }

  /** The result of a bytes call, noting its output's length for the next one. */
  #bytesResult(values: unknown[]): number | Uint8Array {
    const result = values[0] as number | Uint8Array;
    if (typeof result !== "number") {
      this.#outputSteady = result.length === this.#outputLength;
      this.#outputLength = result.length;
    }
    return result;
  }

  async runCommand(stdin: Uint8Array, budget: CallBudget, startMs: number): Promise<CommandResult> {
    const values = [stdin, budget.fuel, budget.timeoutMs];
    const [exitCode, stdout, stderr, truncated, commandMemoryBytes] = await this.#request(
      ToWorker.Run,
      values,
      budget,
      startMs,
    ) as [number, Uint8Array, Uint8Array, number, number];
    this.#commandMemoryBytes = commandMemoryBytes;
    return { exitCode, stdout, stderr, outputTruncated: truncated === 1 };
  }

  #commandMemoryBytes = 0;

  takeCommandMemoryBytes(): number {
    const bytes = this.#commandMemoryBytes;
    this.#commandMemoryBytes = 0;
    return bytes;
  }

  /**
   * Sends one call (`op` with `values`) to the worker, serves its host calls
   * until it answers, and returns the results, under `budget`.
   *
   * The fast path is synchronous: when the worker is live and idle, and it
   * answers while the host spins for it (a short call with no host
   * function), the results come back with no promise, listener or timer.
   * `outputLength` > 0: the answer is expected to carry an output of that
   * length, whose buffer is made while the worker works.
   */
  #request(
    op: number,
    values: WireValue[],
    budget: CallBudget,
    startMs: number,
    outputLength = 0,
  ): unknown[] | Promise<unknown[]> {
    if (this.#cutOff !== undefined || this.#stranded !== undefined) this.#recover();
    const live = this.#live;
    if (this.#queue.busy || live === undefined || live.crashed !== undefined || this.#closed) {
      return this.#requestLater(op, values, budget, startMs, outputLength);
    }
    // A call that never reaches the worker, or whose worker is killed, used no fuel we can read.
    this.#lastFuelUsed = 0;
    budget.signal?.throwIfAborted();
    const turn = this.#queue.tryTake()!;
    let handedOn = false;
    let unanswered: LiveWorker | undefined;
    try {
      if (this.#hostErrors.length > 0) this.#hostErrors = [];
      const channel = this.#postTo(live, op, values, outputLength);
      unanswered = live;
      const reply = channel.poll();
      unanswered = undefined;
      if (
        reply === undefined || reply.op === ToHost.LinkerCall || reply.op === ToHost.ServiceCall
      ) {
        const concluding = this.#conclude(live, channel, budget, startMs, reply, turn);
        handedOn = true;
        return concluding;
      }
      return this.#settle(reply);
    } catch (err) {
      // No call here (see #cutOff).
      if (unanswered !== undefined) this.#cutOff = unanswered;
      throw err;
    } finally {
      if (!handedOn) this.#handBack(turn);
    }
  }

  /**
   * Gives the channel's turn back; if that is cut off (the caller's stack
   * ran out), the next request gives it back (see {@linkcode #recover}):
   * every later call would wait for ever.
   */
  #handBack(turn: Disposable): void {
    try {
      turn[Symbol.dispose]();
    } catch (err) {
      this.#stranded = () => turn[Symbol.dispose](); // no call here: the stack may be out
      throw err;
    }
  }

  /**
   * Repairs what a request cut off by its caller's stack running out left
   * (see {@linkcode #cutOff}): a worker whose answer went unread is ended
   * (its channel is out of step; the next exchange starts a fresh one, as
   * after a crash), and a turn not given back is given back. Both are
   * marked with no call, as the stack may have had no room left.
   */
  #recover(): void {
    const live = this.#cutOff;
    if (live !== undefined) {
      live.crashed ??= new WorkerCrashedError(
        "The plugin's worker was ended: a call's caller ran out of stack before it read the answer",
      );
      if (this.#live === live) this.#discard(live);
      this.#cutOff = undefined;
    }
    const release = this.#stranded;
    if (release !== undefined) {
      release(); // tried again as a whole (see CallQueue)
      this.#stranded = undefined;
    }
  }

  /** The rest of a call the worker did not answer at once: it holds the channel's turn until it ends. */
  async #conclude(
    live: LiveWorker,
    channel: HostChannel,
    budget: CallBudget,
    startMs: number,
    first: WireMessage | undefined,
    turn: Disposable,
  ): Promise<unknown[]> {
    this.#callInFlight = true;
    try {
      return this.#settle(await this.#converse(live, channel, budget, startMs, first));
    } finally {
      // Before its first await this runs on the caller's stack, which may run out (see #cutOff).
      try {
        this.#handOn(turn);
      } catch (err) {
        this.#stranded = () => this.#handOn(turn);
        // The stack ran out: that error is the call's now, whatever it had.
        // deno-lint-ignore no-unsafe-finally
        throw err;
      }
    }
  }

  /** {@linkcode #request} when the channel is taken, or the worker must be (re)started first. */
  async #requestLater(
    op: number,
    values: WireValue[],
    budget: CallBudget,
    startMs: number,
    outputLength: number,
  ): Promise<unknown[]> {
    this.#lastFuelUsed = 0;
    budget.signal?.throwIfAborted();
    // A host function of a worker's start (its start function, the initializers run again
    // for a memory access) cannot wait for the channel's turn: the start waits for it.
    if (this.inStartHostCall()) {
      throw new PluginStateError(
        "Cannot call the plugin from one of its own host functions while its worker starts (its start function or initializers run): the start is waiting for that host function to return",
        { state: "running" },
      );
    }
    const taken = this.#queue.take();
    const turn = taken instanceof Promise ? await taken : taken;
    this.#callInFlight = true;
    let starting: Promise<LiveWorker> | undefined;
    try {
      const ready = this.#ready();
      if (ready instanceof Promise) starting = ready;
      // An abort does not wait for the worker to start (tens of milliseconds): the call
      // leaves at once, and the turn is handed on once the worker is ready.
      let live: LiveWorker;
      try {
        live = starting === undefined ? ready as LiveWorker : await unlessAborted(
          starting,
          budget.signal,
        );
      } catch (err) {
        // Aborted while the worker started: the call ran nothing, its time starts and ends now.
        if (starting !== undefined && budget.signal?.aborted === true) {
          this.readyAt = performance.now();
          this.#startAbandoned = true;
        }
        throw err;
      }
      starting = undefined;
      // The deadline is the guest's: a call that waited for the channel, or for a worker
      // respawned for it (parked, or replaced after a crash), starts the clock when it is ready.
      if (taken instanceof Promise || ready instanceof Promise) startMs = performance.now();
      budget.signal?.throwIfAborted();
      const channel = this.#postTo(live, op, values, outputLength);
      return this.#settle(await this.#converse(live, channel, budget, startMs));
    } finally {
      if (starting === undefined) this.#handOn(turn);
      else {
        const handOn = (): void => this.#handOn(turn);
        starting.then(handOn, handOn);
      }
    }
  }

  /**
   * Whether a call can be posted ahead now: a call holds the channel's turn
   * (it runs, or calls posted ahead wait to), nothing else waits for the
   * turn (a memory access is not overtaken), a channel is free, and every
   * call posted ahead still waits on this worker: none was taken back, and
   * none was posted to a worker since ended (those are posted again, in
   * order, when they run; one posted now would overtake them).
   */
  #canPostAhead(): boolean {
    const live = this.#live;
    if (
      !this.#callInFlight || this.#queue.waiting > 0 || live === undefined ||
      live.crashed !== undefined || this.#closed || this.#ahead.length >= LANES - 1
    ) {
      return false;
    }
    const last = this.#ahead[this.#ahead.length - 1];
    return last === undefined || (last.live === live && !last.retracted);
  }

  /** Posts a call ahead of its turn (see {@linkcode #canPostAhead}). */
  #postAhead(op: number, values: WireValue[], budget: CallBudget, outputLength: number): Flight {
    const live = this.#live!;
    const lane = live.next;
    const channel = this.#postTo(live, op, values, outputLength, true);
    const flight = { live, channel, lane, op, values, outputLength, budget, retracted: false };
    this.#ahead.push(flight);
    return flight;
  }

  /**
   * Runs the call posted ahead first, now that the calls before it ended: it
   * takes over the channel's turn they held for it. Like `#request`, it
   * returns the results at once when the worker answered already (then
   * there is nothing to watch), else their promise.
   */
  #runAhead(flight: Flight, startMs: number): unknown[] | Promise<unknown[]> {
    const turn = this.#aheadTurn;
    if (this.#ahead[0] !== flight || turn === undefined) {
      throw new Error("A call posted ahead ran out of turn");
    }
    this.#ahead.shift();
    this.#aheadTurn = undefined;
    this.#lastFuelUsed = 0;
    if (this.#hostErrors.length > 0) this.#hostErrors = [];
    const { live, channel, budget } = flight;
    if (flight.retracted || live !== this.#live || live.crashed !== undefined) {
      return this.#runAheadAgain(flight, startMs, turn);
    }
    let handedOn = false;
    try {
      const reply = channel.poll();
      if (
        reply !== undefined && reply.op !== ToHost.LinkerCall && reply.op !== ToHost.ServiceCall
      ) {
        // Done already. (A call whose signal aborted while it waited left the line then, unless
        // its worker had begun it: then, like a running call's, the abort came too late.)
        return this.#settle(reply);
      }
      // The worker may have begun it before its turn came: the deadline counts from then.
      const began = channel.startedAt() + live.clockOffset;
      if (began < startMs) startMs = began;
      handedOn = true;
      return this.#conclude(live, channel, budget, startMs, reply, turn);
    } finally {
      if (!handedOn) this.#handOn(turn);
    }
  }

  /**
   * {@linkcode #runAhead} for a call taken back (or whose worker died before
   * it began it): it is posted again, to a new worker if need be.
   */
  async #runAheadAgain(flight: Flight, startMs: number, turn: Disposable): Promise<unknown[]> {
    this.#callInFlight = true;
    try {
      const { live, channel, budget } = flight;
      // Its worker died or was ended: a call it took dies with it, one it did not moves on.
      if (!flight.retracted && !channel.retract()) {
        throw live.crashed ?? new WorkerCrashedError("The plugin's worker stopped answering");
      }
      flight.retracted = true;
      const ready = this.#ready();
      const current = ready instanceof Promise ? await ready : ready;
      if (ready instanceof Promise) startMs = performance.now();
      budget.signal?.throwIfAborted();
      const posted = this.#postTo(current, flight.op, flight.values, flight.outputLength);
      return this.#settle(await this.#converse(current, posted, budget, startMs));
    } finally {
      this.#handOn(turn);
    }
  }

  /**
   * Takes `flight` back, and every call posted after it first (the worker
   * takes them in order: once it took one, it took all before it). Returns
   * whether `flight` will not run; those after it stay in line, to be
   * posted again when they run.
   */
  #retractAhead(flight: Flight): boolean {
    const index = this.#ahead.indexOf(flight);
    if (index === -1 || !this.#retractFrom(index)) return false;
    this.#ahead.splice(index, 1);
    if (this.#ahead.length === 0 && this.#aheadTurn !== undefined) {
      const turn = this.#aheadTurn;
      this.#aheadTurn = undefined;
      this.#handOn(turn);
    }
    return true;
  }

  /**
   * Takes back the calls posted ahead from `index` on, last first; the next
   * request then goes to the first one's channel again. Returns whether all
   * of them were taken back.
   */
  #retractFrom(index: number): boolean {
    for (let i = this.#ahead.length - 1; i >= index; i--) {
      const flight = this.#ahead[i]!;
      if (flight.retracted) continue;
      if (!flight.channel.retract()) return false;
      flight.retracted = true;
      flight.live.next = flight.lane;
    }
    return true;
  }

  /**
   * Ends a call's hold on the channel's turn: the calls posted ahead keep it
   * until the first of them runs; without any, it is free.
   */
  #handOn(turn: Disposable): void {
    if (this.#ahead.length > 0) {
      this.#aheadTurn = turn;
      return;
    }
    this.#callInFlight = false;
    turn[Symbol.dispose]();
  }

  /**
   * Records what the call used (the reply's last two values) and returns its
   * results (the rest, in place) or throws its error.
   */
  #settle(reply: WireMessage): unknown[] {
    const values = this.#readUsage(reply);
    if (reply.op !== ToHost.Failure) return values;
    throw this.#withOutputOf(values, this.#decode(values[0] as string));
  }

  /**
   * `error`, with the output of the command whose reply's `values` (after
   * the usage) carry it: its error or exit code, stdout, stderr, truncated,
   * and the command instance's memory size (see `_worker_main.ts`).
   */
  #withOutputOf(values: unknown[], error: unknown): unknown {
    if (!isCommandReply(values)) return error;
    this.#noteCommandMemory(values);
    const [, stdout, stderr, truncated] = values as [string, Uint8Array, Uint8Array, number];
    return withCommandOutput(error, { stdout, stderr, outputTruncated: truncated === 1 });
  }

  /** Keeps the memory size of the command whose reply's `values` carry it (see above). */
  #noteCommandMemory(values: unknown[]): void {
    if (isCommandReply(values)) this.#commandMemoryBytes = values[4] as number;
  }

  /** Takes the fuel used and the memory size off the end of a `Result` or `Failure` reply. */
  #readUsage(reply: WireMessage): WireValue[] {
    const values = reply.values;
    this.#memoryBytes = values.pop() as number;
    const fuel = this.#lastFuelUsed = values.pop() as number;
    // An answer that came late to the host's spin is worth spinning for if the worker worked:
    // the guest ran long enough, or the call failed (its error takes a while to make and send).
    this.#live?.waits.judgeLateAnswer(fuel >= LATE_ANSWER_FUEL || reply.op === ToHost.Failure);
    return values;
  }

  #decode(text: string): unknown {
    const errors = this.#hostErrors;
    return decodeError(text, (ref) => ref < errors.length ? { value: errors[ref] } : undefined);
  }

  /**
   * Waits for the worker's answer on `channel`, serving its host-function
   * calls meanwhile, and enforces the call's deadline and abort signal.
   */
  async #converse(
    live: LiveWorker,
    channel: HostChannel,
    budget: CallBudget,
    startMs: number,
    first?: WireMessage,
    start = false,
  ): Promise<WireMessage> {
    let stopping: Stopping | undefined;
    let pending: PendingHostCall | undefined;
    // The wait for the worker's answer times out at the deadline: no timer needed.
    const watch = new CallWatch(budget, {
      deadline: startMs + budget.timeoutMs,
      timer: false,
      onStop: (reason, expired) => {
        stopping = { reason, graceEnd: performance.now() + GRACE_MS, expired, thrown: false };
        // An abort comes while the wait for the answer sleeps until the deadline: the
        // worker has its grace from now, not until then.
        channel.wakeBy(stopping.graceEnd);
        // Calls posted ahead are taken back first, so the stop cannot reach one of them;
        // one the worker took means this call ended: its answer is there.
        if (live !== this.#live || this.#retractFrom(0)) this.#interrupt(live, channel);
        // A guest waiting on a host function cannot see the flag: answer it with the reason.
        if (pending !== undefined && !pending.answered) {
          pending.answered = true;
          stopping.thrown = true;
          this.#answerGuest(pending, () => this.#throwToGuest(channel, reason));
        }
      },
    });
    /**
     * Until when the guest may still answer a host call the host served after the deadline
     * without holding it past the deadline itself (it was busy with other work): the wait
     * was the host's, not the guest's.
     */
    let lateServedUntil = -Infinity;
    try {
      while (true) {
        const until = stopping === undefined
          ? Math.max(watch.deadline, lateServedUntil)
          : stopping.graceEnd;
        const message = first ?? await channel.receive(Math.max(0, until - performance.now()));
        first = undefined;
        if (pending?.access !== undefined && message !== undefined) {
          // The reply to a memory access made while the guest waits (see #accessDuringHostCall).
          const settle = pending.access;
          pending.access = undefined;
          settle(message);
          this.#nextAccess(pending);
          continue;
        }
        if (message === undefined) {
          if (live.crashed !== undefined) {
            this.#discard(live);
            throw stopping?.reason ?? live.crashed;
          }
          // Ended by close(): no answer can come any more.
          if (this.#closed) {
            throw stopping?.reason ?? new WorkerCrashedError("The plugin's worker is closed");
          }
          if (stopping === undefined) {
            if (performance.now() < lateServedUntil) continue;
            watch.expire();
          } else if (performance.now() >= stopping.graceEnd) {
            // The guest did not stop (a long instruction, a stuck host call): kill the worker.
            this.#discard(live);
            throw stopping.reason;
          }
          continue;
        }
        if (message.op === ToHost.LinkerCall || message.op === ToHost.ServiceCall) {
          // A call being stopped runs no more host functions. (Decided before serving it: one
          // that stops the call itself has answered the guest already, and one answer is all
          // the channel takes.)
          if (stopping !== undefined) {
            stopping.thrown = true;
            this.#throwToGuest(channel, stopping.reason);
          } else {
            // Pending from before it runs: a stop it raises itself answers the guest with the
            // reason, and its own answer is dropped (one answer is all the channel takes).
            pending = this.#hostCall = {
              answered: false,
              ended: false,
              start,
              channel,
              access: undefined,
              waiting: [],
              held: undefined,
              graceUntil: -Infinity,
            };
            // Not a start function's: the accesses waiting then wait for what started the worker.
            if (!start) this.#takeOverQueuedAccesses(pending);
            const servedAt = performance.now();
            if (servedAt >= watch.deadline) {
              // Sent in time, served late (the host was busy): the guest has a grace from when
              // it began, to end in (sync or async, the host function's own time counts, as
              // inline). The grace is the first late host call's: later ones do not renew it,
              // and go on in it. (One its guest sent after its clock said the deadline had
              // passed, with no grace yet, is late: it would have stopped at its next check.)
              if (
                lateServedUntil === -Infinity &&
                !(channel.hostCallSentAt() + live.clockOffset >= watch.deadline)
              ) {
                lateServedUntil = servedAt + GRACE_MS;
              }
              pending.graceUntil = lateServedUntil;
            }
            this.#serveHostCall(channel, message, pending);
            const now = performance.now();
            // One that held this thread past the deadline (no timer could fire) answered a
            // guest that runs on after it: the call is late whatever it does next, as inline
            // (one served late, once it held the thread past its grace).
            if (pending.answered && now >= Math.max(watch.deadline, pending.graceUntil)) {
              watch.expire();
            }
          }
          continue;
        }
        if (
          stopping !== undefined &&
          (message.op === ToHost.Failure ||
            message.op === ToHost.Result && (stopping.expired || stopping.thrown))
        ) {
          // A stopped call ends with the stop's reason, whatever the guest made of it. But a
          // guest that returned without an exception from the stop (the instance ends a call
          // it cancelled with the reason, see `PluginInstance`) ran to its end before an abort
          // reached it: the call answers as it ended, as inline, so that a caller told
          // "aborted" may retry it. (Past the deadline, the plugin makes it a TimeoutError.)
          const values = this.#readUsage(message);
          // A command's memory counts in the peak whatever ended it; its output (a late
          // result's too, as inline) goes only with the timeout made for this call, not with an
          // abort's or a stop's reason, which other calls may share.
          this.#noteCommandMemory(values);
          throw stopping.expired ? this.#withOutputOf(values, stopping.reason) : stopping.reason;
        }
        return message;
      }
    } finally {
      watch[Symbol.dispose]();
      if (pending !== undefined) {
        // No access waits for a worker that is done with the call (or dead).
        pending.answered = true;
        pending.ended = true;
        pending.held = undefined;
        pending.access?.(undefined);
        pending.access = undefined;
        this.#nextAccess(pending);
        if (this.#hostCall === pending) this.#hostCall = undefined;
      }
    }
  }

  /** Sends the guest its answer to `call`, or holds it while a memory access is in flight. */
  #answerGuest(call: PendingHostCall, send: () => void): void {
    if (call.access === undefined) send();
    else call.held = send;
  }

  #interrupt(live: LiveWorker, channel: HostChannel): void {
    channel.requestStop();
    Atomics.store(live.interrupt, 0, 1);
    Atomics.notify(live.interrupt, 0);
  }

  /**
   * Answers the guest's host call with an error (kept here, so the host gets
   * it back as is); `graceUntil`: see {@linkcode PendingHostCall.graceUntil}.
   */
  #throwToGuest(channel: HostChannel, err: unknown, graceUntil = -Infinity): void {
    const ref = this.#hostErrors.push(err) - 1;
    // Whatever it is (encodeError reads any value), the guest gets an answer.
    try {
      postAnswer(channel, ToWorker.Throw, [encodeError(err, ref)], graceUntil);
    } catch (tooLarge) {
      // Its text does not fit the channel: the guest gets a stand-in, the host its own error (`ref`).
      postAnswer(channel, ToWorker.Throw, [encodeError(tooLarge, ref)], graceUntil);
    }
  }

  #returnToGuest(channel: HostChannel, value: unknown, graceUntil: number): void {
    try {
      if (isManyResults(value)) {
        postAnswer(channel, ToWorker.ReturnMany, (value as unknown[]).map(wireValue), graceUntil);
      } else postAnswer(channel, ToWorker.Return, [wireValue(value)], graceUntil);
    } catch (err) {
      // Too large for the channel: the guest still needs an answer.
      this.#throwToGuest(channel, err, graceUntil);
    }
  }

  /**
   * Runs a linker function or a host service for the guest and answers it
   * once, unless `call` was answered already (its call stopped meanwhile).
   */
  #serveHostCall(channel: HostChannel, message: WireMessage, call: PendingHostCall): void {
    let value: unknown;
    try {
      if (message.op === ToHost.LinkerCall) {
        const [index, ...args] = message.values as [number, ...unknown[]];
        const fn = this.#host.linkerFunctions[index];
        if (fn === undefined) throw new RangeError(`No linker function ${index}`);
        const scope = call.start ? this.#startScope : undefined;
        value = scope === undefined
          ? runInHostCall(this.#host.env, fn, ...args)
          : runInHostCall(this.#host.env, () => runInHostCall(scope, fn, ...args));
      } else {
        const [name, ...args] = message.values as [ServiceName, ...unknown[]];
        const service = this.#services[name] as (...a: unknown[]) => unknown;
        if (typeof service !== "function") throw new RangeError(`No host service "${name}"`);
        value = service.apply(this.#services, args);
      }
    } catch (err) {
      // (Stopped by the host function itself, the call answered the guest with the reason.)
      if (call.answered) return;
      call.answered = true;
      this.#answerGuest(call, () => this.#throwToGuest(channel, err, call.graceUntil));
      return;
    }
    if (!(value instanceof Promise)) {
      if (call.answered) return;
      call.answered = true;
      this.#answerGuest(call, () => this.#returnToGuest(channel, value, call.graceUntil));
      return;
    }
    value.then(
      (result) => {
        if (call.answered) return;
        call.answered = true;
        this.#answerGuest(call, () => this.#returnToGuest(channel, result, call.graceUntil));
      },
      (err) => {
        if (call.answered) return;
        call.answered = true;
        this.#answerGuest(call, () => this.#throwToGuest(channel, err, call.graceUntil));
      },
    );
  }

  /**
   * A memory access. Made while the running call's guest waits on a host
   * function, the waiting worker serves it before the guest gets its
   * answer, as inline acts at once: a host function may read the memory of
   * the guest that called it (or a tool that of another plugin waiting on
   * its own tool) before it answers. Otherwise it waits for the channel's
   * turn, since it may overlap a call: it never waits for a host function
   * (one made from a host function that answered waits for the rest of the
   * call, which does not wait for it).
   */
  async #memoryRequest(op: number, values: WireValue[]): Promise<WireMessage> {
    const call = this.#hostCall;
    if (call !== undefined && !call.answered && (!call.start || isInHostCallOf(this.#host.env))) {
      const reply = await this.#accessDuringHostCall(call, op, values);
      if (reply !== undefined) return this.#accessReply(reply);
    }
    const taken = this.#queue.take();
    if (!(taken instanceof Promise)) {
      using _turn = taken;
      return await this.#accessInTurn(op, values);
    }
    // Waiting for the turn: a host call that begins meanwhile serves it first (its host
    // function may wait for it, and the call for the host function).
    const access: QueuedAccess = { op, values, served: undefined, wake: () => {} };
    const moved = new Promise<undefined>((resolve) => access.wake = () => resolve(undefined));
    this.#queuedAccesses.push(access);
    let turn: Disposable | undefined;
    try {
      turn = await Promise.race([taken, moved]);
    } finally {
      const at = this.#queuedAccesses.indexOf(access);
      if (at !== -1) this.#queuedAccesses.splice(at, 1);
    }
    if (access.served !== undefined) {
      let reply: WireMessage | undefined;
      try {
        reply = await access.served;
      } catch (err) {
        void taken.then((late) => late[Symbol.dispose]());
        throw err;
      }
      if (reply !== undefined) {
        // Served during the host call: the turn it waited for is not needed.
        if (turn === undefined) void taken.then((late) => late[Symbol.dispose]());
        else turn[Symbol.dispose]();
        return this.#accessReply(reply);
      }
      // The call ended before its worker served it: in turn after all.
      turn ??= await taken;
    }
    using _turn = turn!;
    return await this.#accessInTurn(op, values);
  }

  /** A memory access that holds the channel's turn: one exchange with the worker. */
  async #accessInTurn(op: number, values: WireValue[]): Promise<WireMessage> {
    const ready = this.#ready();
    const live = ready instanceof Promise ? await ready : ready;
    const reply = await this.#postTo(live, op, values).receive();
    if (reply === undefined) {
      this.#discard(live);
      throw live.crashed ?? new WorkerCrashedError("The plugin's worker stopped answering");
    }
    return this.#accessReply(reply);
  }

  /**
   * Hands the memory accesses waiting for the channel's turn, in order, to
   * the host call `call` that begins: its worker serves them before the
   * host function's own, and the call does not wait for them.
   */
  #takeOverQueuedAccesses(call: PendingHostCall): void {
    for (const access of this.#queuedAccesses.splice(0)) {
      access.served = this.#accessDuringHostCall(call, access.op, access.values);
      access.wake();
    }
  }

  #accessReply(reply: WireMessage): WireMessage {
    if (reply.op === ToHost.Failure) throw this.#decode(reply.values[0] as string);
    return reply;
  }

  /**
   * Posts a memory access to the worker waiting on `call` once the ones
   * before it during that call are answered (the guest's answer waits for
   * them all); resolves with the reply, or `undefined` if the call ended
   * first (its worker stopped answering).
   */
  #accessDuringHostCall(
    call: PendingHostCall,
    op: number,
    values: WireValue[],
  ): Promise<WireMessage | undefined> {
    const { promise, resolve, reject } = Promise.withResolvers<WireMessage | undefined>();
    const send = (): void => {
      try {
        call.channel.post(op, values);
      } catch (err) {
        // Too large for the channel: the worker got nothing, the next access may go.
        reject(err);
        return this.#nextAccess(call);
      }
      call.access = resolve;
    };
    const post = (): void => {
      if (call.ended) return resolve(undefined);
      const bytes = op === ToWorker.WriteMemory ? values[1] as Uint8Array : undefined;
      if (bytes === undefined || bytes.length <= UNPROBED_WRITE_BYTES) return send();
      // A long write is carried only once its end is known to be in memory: carrying one
      // that is not (a gigabyte) took the call's time for nothing.
      const offset = values[0] as number;
      call.channel.post(ToWorker.ReadMemory, [offset + bytes.length, 0]);
      call.access = (probe) => {
        if (probe === undefined) return resolve(undefined);
        if (probe.op !== ToHost.Failure) return send();
        reject(new MemoryOutOfBoundsError(undefined, { offset, size: bytes.length }));
      };
    };
    if (call.access === undefined) post();
    else call.waiting.push(post);
    return promise;
  }

  /**
   * After an access during `call` was answered: posts the next one waiting,
   * or else sends the guest's answer if it was held back for it.
   */
  #nextAccess(call: PendingHostCall): void {
    while (call.access === undefined) {
      const post = call.waiting.shift();
      if (post === undefined) break;
      post();
    }
    if (call.access !== undefined) return;
    const held = call.held;
    call.held = undefined;
    held?.();
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
    clearTimeout(this.#idleTimer);
    if (this.#queue.busy) {
      // Memory accesses made before close() finish first, as inline: they run no guest code.
      if (!this.#callInFlight) return this.#closeInTurn();
      // A call that still holds the turn (one stop({ abort: true }) ended) ends with its worker.
      this.#parked = null;
      if (this.#live !== undefined) this.#discard(this.#live);
      return Promise.resolve();
    }
    return this.#closeNow();
  }

  /** {@linkcode close} once the memory accesses in line have had their turn. */
  async #closeInTurn(): Promise<void> {
    const taken = this.#queue.take();
    using _turn = taken instanceof Promise ? await taken : taken;
    await this.#closeNow();
  }

  /** Lets go of the worker, which no exchange uses: another plugin may take it (see #release). */
  #closeNow(): Promise<void> {
    this.#parked = null;
    const live = this.#live;
    return live === undefined ? Promise.resolve() : this.#release(live);
  }
}

/**
 * Rejects arguments that cannot cross the channel (see `WireValue`): an
 * object or function passed to a reference parameter would arrive as
 * something else, or overflow the message.
 */
function checkCrossing(name: string, args: readonly unknown[]): void {
  for (const arg of args) {
    if (crossesAsItself(arg)) continue;
    throw new TypeMismatchError(
      `Cannot call "${name}" in worker isolation with ${
        describeValue(arg)
      }: only numbers, bigints of 64 bits, well-formed strings and null cross to the plugin's worker`,
    );
  }
}

/** A host function's result as it crosses the channel (the engine converts it further). */
function wireValue(value: unknown): WireValue {
  switch (typeof value) {
    case "number":
    case "string":
    case "undefined":
      return value;
    case "bigint":
      if (crossesAsItself(value)) return value; // 64 bits, signed or unsigned
      break;
    case "boolean":
      return Number(value);
    default:
      if (value === null || value instanceof Uint8Array) return value;
  }
  // Checked results of numeric types never get here: a reference the worker cannot hold.
  throw new TypeError(
    `It returned ${
      describeValue(value)
    }, which cannot cross to the plugin's worker: only numbers, bigints of 64 bits, strings and null do`,
  );
}

/**
 * Posts the answer to a guest's host call; one served late carries how long
 * the guest still has (see `ToWorker.LateServed`).
 */
function postAnswer(
  channel: HostChannel,
  op: number,
  values: WireValue[],
  graceUntil: number,
): void {
  // Most answers carry none: no clock read for them.
  const left = graceUntil === -Infinity ? 0 : graceUntil - performance.now();
  if (left > 0) channel.post(op | ToWorker.LateServed, [...values, left]);
  else channel.post(op, values);
}

/**
 * The entry of a plugin's worker: it instantiates the plugin's module with
 * proxies for the host's functions, then serves calls from the SAB channel
 * until the host terminates it.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { CallBudget } from "../backend/mod.ts";
import { TimeoutError } from "../errors.ts";
import { adoptFileBudget } from "../wasi/mod.ts";
import type { HostCallable } from "../host/mod.ts";
import type { HostServices, ServiceName } from "../host/mod.ts";
import {
  commandOutputOf,
  crossesAsItself,
  PluginInstance,
  START_NOT_READ,
} from "../backend/mod.ts";
import { describeValue } from "../common/mod.ts";
import { ChannelClosed, ChannelWaits, WorkerChannel } from "./_channel.ts";
import { decodeError, encodeError } from "./_error_codec.ts";
import { installWorkerStackTraces } from "./_stack_trace.ts";
import type { WorkerFailure } from "./_worker_failure.ts";
import {
  exportName,
  ToHost,
  ToWorker,
  unpackBytesShape,
  type WorkerReady,
  type WorkerSetup,
} from "./_protocol.ts";
import type { WireMessage, WireValue } from "./_wire.ts";

/**
 * Turns the host's answer to a linker or service call into a value or an
 * exception. One the host served late moves the call's deadline first.
 */
function answer(lane: Lane, { op, values }: WireMessage): unknown {
  if ((op & ToWorker.LateServed) !== 0) {
    op &= ~ToWorker.LateServed;
    lane.instance?.extendDeadline(values.pop() as number);
  }
  switch (op) {
    case ToWorker.Return:
      return values[0];
    case ToWorker.ReturnMany:
      return values;
    case ToWorker.Throw:
      throw decodeError(values[0] as string);
    default:
      throw new Error(`Unexpected message ${op} while waiting for a host function`);
  }
}

/**
 * The channel of the request being served: the host posts requests to its
 * channels in turn (see `_worker_backend.ts`), and a request's host calls go
 * over the channel it came on. `instance`: the plugin's, once made.
 */
interface Lane {
  channel: WorkerChannel;
  instance?: PluginInstance;
}

/**
 * Waits for the host's answer to a host call, serving the memory accesses
 * the host makes meanwhile (a host function may read its guest's memory
 * before it answers: see `WorkerBackend.readMemory`).
 */
function receiveAnswer(lane: Lane): WireMessage {
  const channel = lane.channel;
  while (true) {
    const message = channel.receive();
    if (!serveMemoryAccess(lane, message)) return message;
  }
}

/** {@linkcode receiveAnswer} for a suspended guest: the thread stays free meanwhile. */
async function receiveAnswerAsync(lane: Lane): Promise<WireMessage> {
  const channel = lane.channel;
  while (true) {
    const message = await channel.receiveAsync();
    if (!serveMemoryAccess(lane, message)) return message;
  }
}

/** Answers `message` if it is a memory access made during a host call; returns whether it was. */
function serveMemoryAccess(lane: Lane, message: WireMessage): boolean {
  if (message.op !== ToWorker.ReadMemory && message.op !== ToWorker.WriteMemory) return false;
  const instance = lane.instance!;
  let reply: Reply;
  try {
    reply = accessMemory(instance, message);
  } catch (err) {
    reply = failure(instance, err);
  }
  try {
    lane.channel.post(reply[0], reply[1]);
  } catch (err) {
    // Too large for the channel: the host still needs an answer.
    lane.channel.post(...failure(instance, err));
  }
  return true;
}

/** Reads or writes the instance's memory for the host (`ReadMemory`, `WriteMemory`). */
function accessMemory(instance: PluginInstance, { op, values }: WireMessage): Reply {
  if (op === ToWorker.ReadMemory) {
    const [offset, length] = values as [number, number];
    return [ToHost.Done, [instance.memory.view(offset, length)]];
  }
  const [offset, bytes] = values as [number, Uint8Array];
  instance.memory.write(offset, bytes);
  return [ToHost.Done, []];
}

/** When the lane's guest last read its clock (see `PluginInstance.beforeHostCall`). */
function clockRead(lane: Lane): number {
  return lane.instance?.beforeHostCall() ?? NaN;
}

/** Host services reached over the channel; the guest waits for each answer. */
function proxyServices(lane: Lane): HostServices {
  const call = (name: ServiceName, ...args: WireValue[]): unknown => {
    lane.channel.postHostCall(ToHost.ServiceCall, [name, ...args], clockRead(lane));
    return answer(lane, receiveAnswer(lane));
  };
  return {
    log: (level, text) => void call("log", level, text),
    logsDropped: (count) => void call("logsDropped", count),
    getConfig: (key) => (call("getConfig", key) ?? undefined) as string | undefined,
    setConfig: (key, value) => void call("setConfig", key, value),
    storageGet: (key) => (call("storageGet", key) ?? undefined) as Uint8Array | undefined,
    storageSet: (key, value) => void call("storageSet", key, value),
    sendMessage: (to, data) => void call("sendMessage", to, data),
    async callTool(name, argsJson): Promise<string | undefined> {
      lane.channel.postHostCall(ToHost.ServiceCall, ["callTool", name, argsJson], clockRead(lane));
      // The host keeps the deadline while it serves the tool (its own clock, its grace).
      using _hostKeepsDeadline = lane.instance?.holdDeadline();
      return (answer(lane, await receiveAnswerAsync(lane)) ?? undefined) as string | undefined;
    },
  };
}

function linkerProxy(lane: Lane, index: number): HostCallable {
  return (...args) => {
    // A function reference (a funcref parameter) would reach the host as bytes of its arity.
    for (const arg of args) {
      if (!crossesAsItself(arg)) {
        throw new TypeError(
          `It was passed ${
            describeValue(arg)
          }, which cannot cross to the host from the plugin's worker: only numbers, bigints of 64 bits, strings and null do`,
        );
      }
    }
    lane.channel.postHostCall(
      ToHost.LinkerCall,
      [index, ...(args as WireValue[])],
      clockRead(lane),
    );
    return answer(lane, receiveAnswer(lane));
  };
}

type Reply = [op: number, values: WireValue[]];

/**
 * Drops the instance for good: closes what its guest opened (a kept
 * worker outlives it, and a file opened through WASI stays open until
 * closed), and answers whether it is clean (see `PluginInstance.settled`).
 */
async function retire(instance: PluginInstance): Promise<Reply> {
  // One turn of the event loop first: a timer already due (work a host
  // function left behind) runs before the worker calls itself clean, so
  // one that fails ends this worker here, not in its next plugin's.
  await nextTurn();
  const clean = instance.settled;
  await instance.close();
  return [ToHost.Done, [clean ? 1 : 0]];
}

/** Settles after the timers due now have run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The reply to a call: its results, then the fuel it used and the memory's size. */
function callResult(instance: PluginInstance, result: unknown): Reply {
  const fuel = instance.lastFuelUsed;
  const memory = instance.memoryBytes();
  // One array literal for the usual single result (an array grown later is copied).
  if (result === undefined) return [ToHost.Result, [fuel, memory]];
  if (!Array.isArray(result)) return [ToHost.Result, [result as WireValue, fuel, memory]];
  return [ToHost.Result, [...result as WireValue[], fuel, memory]];
}

function failure(instance: PluginInstance, err: unknown): Reply {
  return [ToHost.Failure, [encodeError(err), instance.lastFuelUsed, instance.memoryBytes()]];
}

/**
 * Runs one request of the host and returns the reply (synchronously when it
 * can). `exports` are the module's export names, in the order requests
 * index them.
 */
function handle(
  instance: PluginInstance,
  exports: readonly string[],
  { op, values }: WireMessage,
): Reply | Promise<Reply> {
  switch (op) {
    case ToWorker.Call: {
      // The budgets and the export come last: popped off, what is left are the arguments.
      const timeoutMs = values.pop() as number;
      const fuel = values.pop() as number | null;
      const name = exportName(exports, values.pop());
      const budget: CallBudget = { fuel, timeoutMs, signal: undefined };
      // The host enforces the deadline: the worker reads the clock only if something needs it.
      // Its own check, from the guest's first clock check on, holds while the host is held up.
      const result = instance.invoke(name, values, budget, START_NOT_READ);
      return result instanceof Promise
        ? result.then((value) => callResult(instance, value))
        : callResult(instance, result);
    }
    case ToWorker.Bytes: {
      const [sent, fuel, timeoutMs, shape, input] = values as [
        number | string,
        number | null,
        number,
        number,
        Uint8Array,
      ];
      const { packedOutput, alloc, free } = unpackBytesShape(shape);
      const call = { fn: exportName(exports, sent), input, packedOutput, alloc, free };
      const result = instance.invokeBytes(
        call,
        { fuel, timeoutMs, signal: undefined },
        START_NOT_READ,
      );
      return result instanceof Promise
        ? result.then((value) => callResult(instance, value))
        : callResult(instance, result);
    }
    case ToWorker.Start: {
      const [fuel, timeoutMs] = values as [number | null, number];
      const started = instance.start({ fuel, timeoutMs, signal: undefined }, performance.now());
      const usage = (): Reply => [ToHost.Result, [instance.lastFuelUsed, instance.memoryBytes()]];
      return started instanceof Promise ? started.then(usage) : usage();
    }
    case ToWorker.Run: {
      const [stdin, fuel, timeoutMs] = values as [Uint8Array, number | null, number];
      return instance.runCommand(stdin, { fuel, timeoutMs, signal: undefined }, performance.now())
        .then(({ exitCode, stdout, stderr, outputTruncated }) => [ToHost.Result, [
          exitCode,
          stdout,
          stderr,
          outputTruncated ? 1 : 0,
          instance.takeCommandMemoryBytes(),
          instance.lastFuelUsed,
          instance.memoryBytes(),
        ]], (err) => {
          // What the command wrote before it failed follows its error (see `WorkerBackend`).
          const output = commandOutputOf(err);
          if (output === undefined) throw err;
          const [op, [error, ...usage]] = failure(instance, err);
          return [op, [
            error!,
            output.stdout,
            output.stderr,
            output.outputTruncated ? 1 : 0,
            instance.takeCommandMemoryBytes(),
            ...usage,
          ]];
        });
    }
    case ToWorker.ReadMemory:
    case ToWorker.WriteMemory:
      return accessMemory(instance, { op, values });
    case ToWorker.Park: {
      const state = instance.captureState();
      if (typeof state === "string") return [ToHost.Done, [state]];
      const { tokens, at } = state.logBudget!;
      return [ToHost.Done, [
        null,
        state.memories.length,
        tokens,
        at,
        state.wasiCreatedAt ?? -1, // none without WASI
        ...state.memories,
        ...state.globals,
      ]];
    }
    case ToWorker.Retire:
      return retire(instance);
    default:
      throw new Error(`Unexpected message ${op} from the host`);
  }
}

/**
 * Serves the host's requests until it closes the channels or retires the
 * instance: each request on the channel after the last one's, in turn (the
 * host may post one ahead while this worker runs the one before).
 */
async function serve(
  channels: readonly WorkerChannel[],
  lane: Lane,
  instance: PluginInstance,
  exports: readonly string[],
): Promise<void> {
  for (let next = 0;; next = (next + 1) % channels.length) {
    const channel = lane.channel = channels[next]!;
    let message: WireMessage;
    try {
      // Only WriteMemory carries bytes, and it copies them into memory before it answers.
      message = channel.receiveRequest(true);
    } catch (err) {
      if (err instanceof ChannelClosed) return;
      throw err;
    }
    let reply: Reply;
    try {
      const handled = handle(instance, exports, message);
      reply = handled instanceof Promise ? await handled : handled;
    } catch (err) {
      if (err instanceof ChannelClosed) return;
      reply = failure(instance, err);
    }
    if (channel.awaiting) await channel.settle();
    try {
      if (reply[0] === ToHost.Failure) channel.postFailure(reply[0], reply[1]);
      else channel.post(reply[0], reply[1]);
    } catch (err) {
      // Too large for the channel: the host still needs an answer.
      channel.postFailure(...failure(instance, err));
    }
    if (message.op === ToWorker.Retire) return;
  }
}

/**
 * Cancels what a suspended guest waits on (a sleep, a fetch) when the host
 * raises the interrupt flag; running wasm code stops at its next clock check,
 * which asks the channel whether the host wants it to.
 */
async function watchInterrupts(
  flag: Int32Array,
  lane: Lane,
  instance: PluginInstance,
  served: { done: boolean },
): Promise<void> {
  while (true) {
    const waited = Atomics.waitAsync(flag, 0, 0);
    if (waited.async) await waited.value;
    if (served.done) return;
    Atomics.store(flag, 0, 0);
    // The host asks for the stop on the call's channel before it raises the flag.
    if (lane.channel.stopRequested) instance.cancel(new TimeoutError(undefined, { timeoutMs: 0 }));
  }
}

/**
 * Serves one plugin: makes its instance from `setup`, tells the host it is
 * ready, and serves it until the host closes its channels or retires it
 * (then the worker may serve another plugin with the same permissions: see
 * `_worker_pool.ts`). Nothing of the instance is kept afterwards.
 */
async function servePlugin(setup: WorkerSetup): Promise<void> {
  serving = setup.spec.pluginName;
  await serveInstance(setup);
  // Not when it throws: the failure it reports names the plugin.
  serving = "";
}

/** Makes the instance of `setup`, tells the host it is ready, and serves it (see {@linkcode servePlugin}). */
async function serveInstance({ spec, channels: buffers }: WorkerSetup): Promise<void> {
  const waits = new ChannelWaits();
  const channels = buffers.map((each) => new WorkerChannel(each, waits));
  const lane: Lane = { channel: channels[0]! };
  let instance: PluginInstance;
  // Guests' host files count in the host's process-wide budget, whichever thread opens them.
  adoptFileBudget(spec.files.budget);
  try {
    // The host runs the start function as a call (`Start`), so it can serve and interrupt it.
    instance = await PluginInstance.create(spec, {
      linkerFunction: (index) => linkerProxy(lane, index),
      services: proxyServices(lane),
      stopRequested: () => lane.channel.stopRequested,
    });
    // The channel copies each bytes call's output on at once.
    instance.reuseOutputBuffer();
    lane.instance = instance;
  } catch (err) {
    self.postMessage({ ok: false, error: encodeError(err) } satisfies WorkerReady);
    return;
  }
  const interrupt = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  self.postMessage(
    {
      ok: true,
      memoryBytes: instance.memoryBytes(),
      interrupt,
      hasStart: instance.hasStart,
      now: performance.now(),
      timeOrigin: performance.timeOrigin,
    } satisfies WorkerReady,
  );
  const flag = new Int32Array(interrupt);
  const served = { done: false };
  const watching = watchInterrupts(flag, lane, instance, served);
  await serve(
    channels,
    lane,
    instance,
    WebAssembly.Module.exports(spec.module).map(({ name }) => name),
  );
  // End the interrupt watch too, so that nothing holds the instance any more.
  served.done = true;
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  await watching;
}

installWorkerStackTraces();

/**
 * Makes the worker report its own uncaught exceptions and unhandled
 * rejections to the host (a {@linkcode WorkerFailure}), then close: the
 * host learns which plugin it served, and Deno prints nothing of it.
 */
function reportWorkerFailures(plugin: () => string): void {
  const report = (reason: unknown): void => {
    const failure: WorkerFailure = {
      failure: String(reason),
      stack: reason instanceof Error ? reason.stack : undefined,
      plugin: plugin(),
    };
    self.postMessage(failure);
    self.close();
  };
  self.addEventListener("error", (event) => {
    event.preventDefault();
    report(event.error ?? event.message);
  });
  self.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report(event.reason);
  });
}

/** The plugin served now, which a failure report names (`""` between plugins). */
let serving = "";
reportWorkerFailures(() => serving);

/** Setups are served one after the other: a retired worker may get the next one early. */
let turn: Promise<void> = Promise.resolve();

self.onmessage = (event: MessageEvent<WorkerSetup>) => {
  turn = turn.then(() => servePlugin(event.data));
};

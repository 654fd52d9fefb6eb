/**
 * The entry of a plugin's worker: it instantiates the plugin's module with
 * proxies for the host's functions, then serves calls from the SAB channel
 * until the host terminates it.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { CallBudget } from "../_backend.ts";
import type { HostCallable } from "../host/_env.ts";
import type { HostServices, ServiceName } from "../host/_services.ts";
import { PluginInstance } from "../_instance.ts";
import { ChannelClosed, WorkerChannel } from "./_channel.ts";
import { decodeError, encodeError } from "./_error_codec.ts";
import { ToHost, ToWorker, type WorkerReady, type WorkerSetup } from "./_protocol.ts";
import type { WireMessage, WireValue } from "./_wire.ts";

/** Turns the host's answer to a linker or service call into a value or an exception. */
function answer(message: WireMessage): WireValue {
  if (message.op === ToWorker.Throw) throw decodeError(message.values[0] as string);
  if (message.op !== ToWorker.Return) {
    throw new Error(`Unexpected message ${message.op} while waiting for a host function`);
  }
  return message.values[0];
}

/** Host services reached over the channel; the guest waits for each answer. */
function proxyServices(channel: WorkerChannel): HostServices {
  const call = (name: ServiceName, ...args: WireValue[]): WireValue => {
    channel.post(ToHost.ServiceCall, [name, ...args]);
    return answer(channel.receive());
  };
  return {
    log: (level, text) => void call("log", level, text),
    getConfig: (key) => (call("getConfig", key) ?? undefined) as string | undefined,
    setConfig: (key, value) => void call("setConfig", key, value),
    storageGet: (key) => (call("storageGet", key) ?? undefined) as Uint8Array | undefined,
    storageSet: (key, value) => void call("storageSet", key, value),
    sendMessage: (to, data) => void call("sendMessage", to, data),
    async callTool(name, argsJson): Promise<string | undefined> {
      channel.post(ToHost.ServiceCall, ["callTool", name, argsJson]);
      return (answer(await channel.receiveAsync()) ?? undefined) as string | undefined;
    },
  };
}

function linkerProxy(channel: WorkerChannel, index: number): HostCallable {
  return (...args) => {
    channel.post(ToHost.LinkerCall, [index, ...(args as WireValue[])]);
    return answer(channel.receive());
  };
}

function resultValues(result: unknown): WireValue[] {
  if (result === undefined) return [];
  if (Array.isArray(result)) return result as WireValue[];
  return [result as WireValue];
}

/** Serves the host's requests until it closes the channel. */
async function serve(channel: WorkerChannel, instance: PluginInstance): Promise<void> {
  while (true) {
    let message: WireMessage;
    try {
      message = channel.receive();
    } catch (err) {
      if (err instanceof ChannelClosed) return;
      throw err;
    }
    const { op, values } = message;
    try {
      switch (op) {
        case ToWorker.Call: {
          const [name, fuel, timeoutMs, ...args] = values as [
            string,
            number | null,
            number,
            ...unknown[],
          ];
          const budget: CallBudget = { fuel, timeoutMs, signal: undefined };
          let result = instance.invoke(name, args, budget, performance.now());
          if (result instanceof Promise) result = await result;
          channel.post(ToHost.Result, [
            instance.lastFuelUsed,
            instance.memory.byteLength,
            ...resultValues(result),
          ]);
          break;
        }
        case ToWorker.ReadMemory: {
          const [offset, length] = values as [number, number];
          channel.post(ToHost.Done, [instance.memory.view(offset, length)]);
          break;
        }
        case ToWorker.WriteMemory: {
          const [offset, bytes] = values as [number, Uint8Array];
          instance.memory.write(offset, bytes);
          channel.post(ToHost.Done, []);
          break;
        }
        default:
          throw new Error(`Unexpected message ${op} from the host`);
      }
    } catch (err) {
      if (err instanceof ChannelClosed) return;
      channel.post(ToHost.Failure, [
        encodeError(err),
        instance.lastFuelUsed,
        instance.memory.byteLength,
      ]);
    }
  }
}

self.onmessage = async (event: MessageEvent<WorkerSetup>) => {
  self.onmessage = null;
  const setup = event.data;
  const channel = new WorkerChannel(setup.channel);
  let instance: PluginInstance;
  try {
    instance = await PluginInstance.create({
      module: setup.module,
      instrumentation: setup.instrumentation,
      imports: setup.imports,
      linkerFunction: (index) => linkerProxy(channel, index),
      services: proxyServices(channel),
      capabilities: new Set(setup.capabilities),
      allowedHosts: setup.allowedHosts,
      maxCallDepth: setup.maxCallDepth,
      startBudget: { fuel: setup.startFuel, timeoutMs: setup.startTimeoutMs, signal: undefined },
      pluginName: setup.pluginName,
    });
  } catch (err) {
    self.postMessage({ ok: false, error: encodeError(err) } satisfies WorkerReady);
    return;
  }
  self.postMessage(
    {
      ok: true,
      memoryBytes: instance.memory.byteLength,
      interrupt: instance.interruptBuffer,
    } satisfies WorkerReady,
  );
  await serve(channel, instance);
};

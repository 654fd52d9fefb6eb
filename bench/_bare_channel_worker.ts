/**
 * The worker of the bare channel (`_floor_workers.ts`): answers each
 * message `[a, b]` on wasmplug's channel with `[a + b]` at once, until the
 * host closes the channel.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type ChannelBuffers, ChannelClosed, WorkerChannel } from "../src/worker/_channel.ts";

self.onmessage = (event: MessageEvent<ChannelBuffers>) => {
  const channel = new WorkerChannel(event.data);
  self.postMessage("ready");
  try {
    while (true) {
      const { values } = channel.receive();
      channel.post(2, [(values[0] as number) + (values[1] as number)]);
    }
  } catch (err) {
    if (!(err instanceof ChannelClosed)) throw err;
  }
};

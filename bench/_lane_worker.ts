/**
 * The worker of `crowd_floor.ts`'s "wasmplug's channel" variant: takes each
 * request `[a, b]` from its channels in turn, as a plugin's worker does
 * (`WorkerChannel.receiveRequest`), and answers `[a + b, 0, 0]` at once,
 * until the host closes the channels.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  type ChannelBuffers,
  ChannelClosed,
  ChannelWaits,
  WorkerChannel,
} from "../src/worker/_channel.ts";

self.onmessage = (event: MessageEvent<ChannelBuffers[]>) => {
  const waits = new ChannelWaits();
  const channels = event.data.map((buffers) => new WorkerChannel(buffers, waits));
  self.postMessage("ready");
  try {
    for (let next = 0;; next = (next + 1) % channels.length) {
      const channel = channels[next]!;
      const { values } = channel.receiveRequest(true);
      channel.post(10, [(values[0] as number) + (values[1] as number), 0, 0]);
    }
  } catch (err) {
    if (!(err instanceof ChannelClosed)) throw err;
  }
};

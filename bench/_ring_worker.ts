/**
 * The worker of `crowd_floor.ts`: answers `add(value, 1)` for every request
 * in its ring (see `_ring.ts`), then rings the host's bell, and sleeps only
 * when the ring is empty.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  BELL_RUNG,
  BELL_SLEEPS,
  RING_ANSWERS,
  RING_CLOSE,
  RING_DONE,
  RING_REQUESTS,
  RING_SENT,
  RING_SLEEPS,
  RING_SLOTS,
  type RingSetup,
} from "./_ring.ts";

self.onmessage = (event: MessageEvent<RingSetup>) => {
  const block = new Int32Array(event.data.block);
  const bell = new Int32Array(event.data.bell);
  const instance = new WebAssembly.Instance(event.data.module, {});
  const add = instance.exports.add as (a: number, b: number) => number;
  self.postMessage("ready");
  let done = 0;
  while (true) {
    let sent = Atomics.load(block, RING_SENT);
    if (sent === done) {
      Atomics.store(block, RING_SLEEPS, 1);
      while ((sent = Atomics.load(block, RING_SENT)) === done) {
        Atomics.wait(block, RING_SENT, done);
      }
      Atomics.store(block, RING_SLEEPS, 0);
    }
    if (Atomics.load(block, RING_CLOSE) !== 0) return;
    while (done !== sent) {
      const slot = done % RING_SLOTS;
      block[RING_ANSWERS + slot] = add(block[RING_REQUESTS + slot]!, 1);
      Atomics.store(block, RING_DONE, ++done);
      sent = Atomics.load(block, RING_SENT);
    }
    Atomics.add(bell, BELL_RUNG, 1);
    if (Atomics.load(bell, BELL_SLEEPS) !== 0) Atomics.notify(bell, BELL_RUNG);
  }
};

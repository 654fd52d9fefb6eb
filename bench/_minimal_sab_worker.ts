/**
 * The worker of the minimal shared-memory round trip (`_floor_workers.ts`):
 * instantiates the module it is sent, then answers `add(value, 1)` through
 * the shared block until the host closes it.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  ANSWER,
  CLOSE,
  HOST_SLEEPS,
  REQUEST,
  RESULT,
  SPIN_POLLS,
  SpinSkip,
  VALUE,
  WORKER_SLEEPS,
} from "./_floor_workers.ts";

self.onmessage = (
  event: MessageEvent<{ block: SharedArrayBuffer; module: WebAssembly.Module }>,
) => {
  const block = new Int32Array(event.data.block);
  const instance = new WebAssembly.Instance(event.data.module, {});
  const add = instance.exports.add as (a: number, b: number) => number;
  self.postMessage("ready");
  let seen = 0;
  const skip = new SpinSkip();
  while (true) {
    let arrived = false;
    if (skip.spins()) {
      for (let i = 0; i < SPIN_POLLS && !arrived; i++) {
        arrived = Atomics.load(block, REQUEST) !== seen;
      }
      skip.spun(arrived);
    }
    if (!arrived) {
      Atomics.store(block, WORKER_SLEEPS, 1);
      while (Atomics.load(block, REQUEST) === seen) Atomics.wait(block, REQUEST, seen);
      Atomics.store(block, WORKER_SLEEPS, 0);
    }
    seen = Atomics.load(block, REQUEST);
    if (Atomics.load(block, CLOSE) !== 0) return;
    block[RESULT] = add(block[VALUE]!, 1);
    Atomics.add(block, ANSWER, 1);
    if (Atomics.load(block, HOST_SLEEPS) !== 0) Atomics.notify(block, ANSWER);
  }
};

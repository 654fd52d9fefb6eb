/**
 * The floors a worker channel is measured against, in the bench: two bare
 * workers that answer `add(value, 1)` over a SharedArrayBuffer, with no
 * plugin around them.
 *
 * - {@linkcode spawnMinimalSab}: the least a shared-memory round trip costs
 *   here. One 64-byte block holds the counters, the flags and the values;
 *   each side spins up to about 10 µs, then sleeps (worker `Atomics.wait`,
 *   host `Atomics.waitAsync`). No message format, no back-off, no crowd
 *   handling: the floor, not a design.
 * - {@linkcode spawnBareChannel}: wasmplug's own channel
 *   (`src/worker/_channel.ts`) with a worker that answers at once, so the
 *   plugin's share of a worker call is what a plugin call costs beyond it.
 *
 * Each caller takes one call at a time (the bench awaits each).
 *
 * @module
 */

import { createChannelBuffers, HostChannel } from "../src/worker/_channel.ts";

/** A bare worker's caller, and how to end it. */
export interface FloorWorker extends AsyncDisposable {
  /** One round trip: sends `value`, resolves to `value + 1`. */
  call(value: number): Promise<number>;
}

/** Polls before a side sleeps: about 10 µs (as the channel's short spin). */
const SPIN_POLLS = 1500;

/** Word indices of the minimal block (see `_minimal_sab_worker.ts`, which shares them). */
const REQUEST = 0;
const ANSWER = 1;
const VALUE = 2;
const RESULT = 3;
const CLOSE = 4;
const WORKER_SLEEPS = 5;
const HOST_SLEEPS = 6;

async function started(worker: Worker, setup: unknown): Promise<void> {
  await new Promise((resolve, reject) => {
    worker.onmessage = resolve;
    worker.onerror = reject;
    worker.postMessage(setup);
  });
}

/** Spawns the minimal shared-memory round trip's worker (see the module doc). */
export async function spawnMinimalSab(module: WebAssembly.Module): Promise<FloorWorker> {
  const block = new Int32Array(new SharedArrayBuffer(64));
  const worker = new Worker(new URL("./_minimal_sab_worker.ts", import.meta.url), {
    type: "module",
  });
  await started(worker, { block: block.buffer, module });
  let answered = 0;
  return {
    async call(value: number): Promise<number> {
      block[VALUE] = value;
      Atomics.add(block, REQUEST, 1);
      if (Atomics.load(block, WORKER_SLEEPS) !== 0) Atomics.notify(block, REQUEST);
      answered++;
      for (let i = 0; i < SPIN_POLLS; i++) {
        if (Atomics.load(block, ANSWER) === answered) return block[RESULT]!;
      }
      Atomics.store(block, HOST_SLEEPS, 1);
      while (Atomics.load(block, ANSWER) !== answered) {
        const waited = Atomics.waitAsync(block, ANSWER, answered - 1);
        if (waited.async) await waited.value;
      }
      Atomics.store(block, HOST_SLEEPS, 0);
      return block[RESULT]!;
    },
    [Symbol.asyncDispose](): Promise<void> {
      Atomics.store(block, CLOSE, 1);
      Atomics.add(block, REQUEST, 1);
      Atomics.notify(block, REQUEST);
      worker.terminate();
      return Promise.resolve();
    },
  };
}

/** Spawns a worker that answers on wasmplug's channel at once (see the module doc). */
export async function spawnBareChannel(): Promise<FloorWorker> {
  const buffers = createChannelBuffers();
  const worker = new Worker(new URL("./_bare_channel_worker.ts", import.meta.url), {
    type: "module",
  });
  await started(worker, buffers);
  const channel = new HostChannel(buffers);
  return {
    async call(value: number): Promise<number> {
      channel.post(1, [value, 1]);
      const reply = channel.poll() ?? await channel.receive();
      return reply!.values[0] as number;
    },
    [Symbol.asyncDispose](): Promise<void> {
      channel.close();
      worker.terminate();
      return Promise.resolve();
    },
  };
}

export { ANSWER, CLOSE, HOST_SLEEPS, REQUEST, RESULT, SPIN_POLLS, VALUE, WORKER_SLEEPS };

/**
 * The floors a worker channel is measured against, in the bench: two bare
 * workers that answer `add(value, 1)` over a SharedArrayBuffer, with no
 * plugin around them.
 *
 * - {@linkcode spawnMinimalSab}: the least a shared-memory round trip costs
 *   here. One 64-byte block holds the counters, the flags and the values;
 *   each side spins up to about 10 µs, then sleeps (worker `Atomics.wait`,
 *   host `Atomics.waitAsync`), and skips its spin for 1, 2, 4 … 256 waits
 *   after spins that failed ({@linkcode SpinSkip}), as the prototypes of
 *   `wakeup-facts.md` did. No message format, no crowd handling: the
 *   floor, not a design. (Without the skips, its spins held the one free
 *   core on a busy machine: it read 1.2–1.5x a postMessage round trip
 *   there, against 0.32–0.35x with them.)
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

/**
 * When a side skips its spin and sleeps at once: after a spin that failed,
 * the next 1, 2, 4 … 256 waits (doubling with each failure in a row); a
 * spin that succeeds resets it.
 */
export class SpinSkip {
  #left = 0;
  #length = 0;

  /** Whether this wait spins (else it skips the spin, and counts it). */
  spins(): boolean {
    if (this.#left === 0) return true;
    this.#left--;
    return false;
  }

  /** Records how the spin went. */
  spun(succeeded: boolean): void {
    this.#length = succeeded ? 0 : this.#length === 0 ? 1 : Math.min(256, this.#length * 2);
    this.#left = this.#length;
  }
}

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
  const skip = new SpinSkip();
  return {
    async call(value: number): Promise<number> {
      block[VALUE] = value;
      Atomics.add(block, REQUEST, 1);
      if (Atomics.load(block, WORKER_SLEEPS) !== 0) Atomics.notify(block, REQUEST);
      answered++;
      if (skip.spins()) {
        let arrived = false;
        for (let i = 0; i < SPIN_POLLS && !arrived; i++) {
          arrived = Atomics.load(block, ANSWER) === answered;
        }
        skip.spun(arrived);
        if (arrived) return block[RESULT]!;
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

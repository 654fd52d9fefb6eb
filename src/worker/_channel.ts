/**
 * The call channel between the host and one plugin's worker: two sequence
 * counters in a small SharedArrayBuffer and one growable data buffer that
 * both sides take turns writing (strict request/response).
 *
 * A waiting side first spins briefly (a few tens of microseconds: most
 * replies arrive by then), then sleeps in `Atomics.wait` (worker) or awaits
 * `Atomics.waitAsync` (host), so an idle side never burns a core.
 *
 * @module
 */

import {
  readMessage,
  type WireBuffer,
  wireBuffer,
  type WireMessage,
  type WireValue,
  writeMessage,
} from "./_wire.ts";

/** Index of the host-to-worker counter in `control`. */
const TO_WORKER = 0;
/** Index of the worker-to-host counter in `control`. */
const TO_HOST = 1;
/** Index of the word the host sets when it ends the channel. */
const CLOSED = 2;
/** Index of the word the host sets when it wants the running call stopped. */
const STOP = 3;

/** Thrown in the worker when the host ended the channel: the worker must return to its event loop. */
export class ChannelClosed extends Error {
  constructor() {
    super("The host closed the channel");
    this.name = "ChannelClosed";
  }
}

/** How long a waiting side spins before it sleeps, in milliseconds. */
const SPIN_MS = 0.05;

/** Answers the host thread is sleeping on, over every channel. */
let hostReceives = 0;
/** The host spins only while fewer answers than this are outstanding: one per core. */
const SPIN_BELOW = navigator.hardwareConcurrency;

/** Initial and maximum sizes of the data buffer. */
const DATA_INITIAL_BYTES = 64 * 1024;
const DATA_MAX_BYTES = 1024 * 1024 * 1024 + 64 * 1024;

/** The shared buffers of a channel; posted to the worker at setup. */
export interface ChannelBuffers {
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  /** How many workers are spinning right now, shared by every channel of the process. */
  readonly spinners: SharedArrayBuffer;
}

/** The process's count of spinning workers (see {@linkcode ChannelBuffers.spinners}). */
const SPINNERS = new SharedArrayBuffer(4);

/**
 * Workers that may spin at once: one core is left to the host, the others
 * to workers; a worker beyond that sleeps at once, so that spinning workers
 * never take the cores that busy ones (and the host) need.
 */
const WORKER_SPINNERS = Math.max(1, navigator.hardwareConcurrency - 1);

/** Allocates the buffers of a new channel. */
export function createChannelBuffers(): ChannelBuffers {
  return {
    control: new SharedArrayBuffer(16),
    data: new SharedArrayBuffer(DATA_INITIAL_BYTES, { maxByteLength: DATA_MAX_BYTES }),
    spinners: SPINNERS,
  };
}

/** One side of a channel. */
abstract class ChannelEnd {
  protected readonly control: Int32Array;
  protected readonly data: WireBuffer;
  /** Last counter value seen from the other side. */
  protected seen = 0;

  constructor(buffers: ChannelBuffers) {
    this.control = new Int32Array(buffers.control);
    this.data = wireBuffer(buffers.data);
  }

  protected send(counter: number, op: number, values: readonly WireValue[]): void {
    writeMessage(this.data, op, values);
    Atomics.add(this.control, counter, 1);
    Atomics.notify(this.control, counter);
  }

  /** Whether the other side's counter moved. */
  protected ready(counter: number): boolean {
    return Atomics.load(this.control, counter) !== this.seen;
  }

  /** Spins until the other side's counter moves, for at most {@linkcode SPIN_MS}. */
  protected spin(counter: number): boolean {
    const deadline = performance.now() + SPIN_MS;
    for (let i = 0;; i++) {
      if (Atomics.load(this.control, counter) !== this.seen) return true;
      if ((i & 63) === 63 && performance.now() > deadline) return false;
    }
  }

  protected take(counter: number, views = false): WireMessage {
    this.seen = Atomics.load(this.control, counter);
    return readMessage(this.data, views);
  }
}

/** The worker's end: it blocks its own thread while it waits. */
export class WorkerChannel extends ChannelEnd {
  /** The host's answer a suspended guest waits for, see {@linkcode settle}. */
  #awaited: Promise<unknown> | undefined;
  readonly #spinners: Int32Array;

  constructor(buffers: ChannelBuffers) {
    super(buffers);
    this.#spinners = new Int32Array(buffers.spinners);
  }

  /** Spins for the host's message unless enough other workers already do. */
  #spinIfFree(): boolean {
    const spinners = this.#spinners;
    try {
      return Atomics.add(spinners, 0, 1) < WORKER_SPINNERS && this.spin(TO_WORKER);
    } finally {
      Atomics.sub(spinners, 0, 1);
    }
  }

  /** Sends a message to the host. */
  post(op: number, values: readonly WireValue[]): void {
    this.send(TO_HOST, op, values);
  }

  /**
   * Blocks until the host sends a message, and returns it. With `views`,
   * its bytes are views into the channel, valid until the next `post()`.
   *
   * @throws {ChannelClosed} When the host ended the channel. A terminated
   * worker only ends once its code returns to the event loop, so this must
   * propagate out of every loop.
   */
  receive(views = false): WireMessage {
    if (!this.#spinIfFree()) {
      while (Atomics.load(this.control, TO_WORKER) === this.seen) {
        Atomics.wait(this.control, TO_WORKER, this.seen);
      }
    }
    if (Atomics.load(this.control, CLOSED) !== 0) throw new ChannelClosed();
    return this.take(TO_WORKER, views);
  }

  /** Waits for the host's next message without blocking the thread (for suspended guests). */
  receiveAsync(): Promise<WireMessage> {
    const received = this.#receiveAsync();
    const done = (): void => {
      if (this.#awaited === received) this.#awaited = undefined;
    };
    this.#awaited = received;
    received.then(done, done);
    return received;
  }

  async #receiveAsync(): Promise<WireMessage> {
    while (Atomics.load(this.control, TO_WORKER) === this.seen) {
      const result = Atomics.waitAsync(this.control, TO_WORKER, this.seen);
      if (result.async) await result.value;
    }
    if (Atomics.load(this.control, CLOSED) !== 0) throw new ChannelClosed();
    return this.take(TO_WORKER);
  }

  /**
   * True when the host wants the running call stopped. The interrupt flag
   * says it too, but the flag is reset as a call begins: a stop the host
   * asked for just before must be raised again.
   */
  get stopRequested(): boolean {
    return Atomics.load(this.control, STOP) !== 0;
  }

  /** True while a `receiveAsync()` is pending. */
  get awaiting(): boolean {
    return this.#awaited !== undefined;
  }

  /**
   * Resolves once no `receiveAsync()` is pending. A guest whose call was
   * cancelled stops waiting for a host function's answer, but the host
   * still sends it: the worker must take it before it answers the call, or
   * the two messages would cross.
   */
  async settle(): Promise<void> {
    while (this.#awaited !== undefined) await this.#awaited.catch(() => {});
  }
}

/** The host's end: it awaits, so the host's event loop keeps running. */
export class HostChannel extends ChannelEnd {
  #closed = false;

  /** Sends a message to the worker. */
  post(op: number, values: readonly WireValue[]): void {
    this.send(TO_WORKER, op, values);
  }

  /** Sends a call (or the start function) to the worker, which has not been asked to stop. */
  postCall(op: number, values: readonly WireValue[]): void {
    Atomics.store(this.control, STOP, 0);
    this.send(TO_WORKER, op, values);
  }

  /** Asks the worker to stop the running call (see `WorkerChannel.stopRequested`). */
  requestStop(): void {
    Atomics.store(this.control, STOP, 1);
  }

  /**
   * Waits for the worker's next message, or until `timeoutMs` passes
   * (`undefined` then).
   */
  async receive(timeoutMs: number = Infinity): Promise<WireMessage | undefined> {
    // Spin only when this is the one answer the host waits for: with more in
    // flight, the host thread has other answers to take, and spinning would
    // keep it from them (and take a core from the workers that send them).
    if (hostReceives < SPIN_BELOW ? this.spin(TO_HOST) : this.ready(TO_HOST)) {
      return this.take(TO_HOST);
    }
    const deadline = performance.now() + timeoutMs;
    hostReceives++;
    try {
      while (Atomics.load(this.control, TO_HOST) === this.seen) {
        const left = deadline - performance.now();
        if (left <= 0 || this.#closed) return undefined;
        const result = Atomics.waitAsync(
          this.control,
          TO_HOST,
          this.seen,
          Number.isFinite(left) ? left : undefined,
        );
        if (result.async) await result.value;
      }
    } finally {
      hostReceives--;
    }
    return this.take(TO_HOST);
  }

  /**
   * Ends the channel: a pending `receive()` returns `undefined` (e.g. the
   * worker died), and a worker blocked in `Atomics.wait` wakes up, which a
   * terminated worker must do to actually end.
   */
  close(): void {
    this.#closed = true;
    Atomics.notify(this.control, TO_HOST);
    Atomics.store(this.control, CLOSED, 1);
    Atomics.add(this.control, TO_WORKER, 1);
    Atomics.notify(this.control, TO_WORKER);
  }
}

/**
 * The call channel between the host and one plugin's worker: two sequence
 * counters in a small SharedArrayBuffer and one growable data buffer that
 * both sides take turns writing (strict request/response).
 *
 * A waiting side first spins briefly (about 10 µs, adaptively: see
 * {@linkcode ChannelEnd}), then sleeps in `Atomics.wait` (worker) or awaits
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
/** Index of the word set while the host spins for the worker's message. */
const HOST_SPINNING = 4;
/** Index of the word set while the worker spins for the host's message. */
const WORKER_SPINNING = 5;

/** Thrown in the worker when the host ended the channel: the worker must return to its event loop. */
export class ChannelClosed extends Error {
  constructor() {
    super("The host closed the channel");
    this.name = "ChannelClosed";
  }
}

/**
 * How many times a waiting side polls the other side's counter before it
 * sleeps: about 10 µs on the machines measured (≈ 150 polls per µs). Counted
 * in polls, not by the clock: `performance.now()` costs ≈ 0.2 µs here.
 * Longer spins lose under contention, where the spinning side holds the
 * core the other side needs to answer.
 */
const SPIN_POLLS = 1500;
/** The most waits a side skips spinning for after spins that failed in a row. */
const MAX_SPIN_SKIP = 256;

/** Largest delay `setTimeout` takes as is (a larger one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Initial and maximum sizes of the data buffer. */
const DATA_INITIAL_BYTES = 64 * 1024;
const DATA_MAX_BYTES = 1024 * 1024 * 1024 + 64 * 1024;

/** The shared buffers of a channel; posted to the worker at setup. */
export interface ChannelBuffers {
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
}

/** Allocates the buffers of a new channel. */
export function createChannelBuffers(): ChannelBuffers {
  return {
    control: new SharedArrayBuffer(24),
    data: new SharedArrayBuffer(DATA_INITIAL_BYTES, { maxByteLength: DATA_MAX_BYTES }),
  };
}

/**
 * One side of a channel.
 *
 * A waiting side spins briefly before it sleeps, adaptively: a spin that
 * fails makes this side sleep at once for the next 1, 2, 4 … 256 waits (a
 * peer that answers slowly, or a crowd of channels, costs no CPU), and one
 * that succeeds resets that. While the other side spins, this side spins
 * too, skipping or not: the other side is on a core and about to answer
 * (that is how a pair that slept gets back to answering within
 * microseconds). Each channel decides alone: no count shared between
 * channels, which would let busy channels starve quiet ones.
 */
abstract class ChannelEnd {
  protected readonly control: Int32Array;
  protected readonly data: WireBuffer;
  /** Last counter value seen from the other side. */
  protected seen = 0;
  /** Waits still to sleep through without spinning. */
  #skipLeft = 0;
  /** Waits skipped after the last failed spin (doubles with each failure in a row). */
  #skipped = 0;
  /** The control words saying that this side, and the other, spin. */
  readonly #spinning: number;
  readonly #peerSpinning: number;

  constructor(buffers: ChannelBuffers, spinning: number, peerSpinning: number) {
    this.control = new Int32Array(buffers.control);
    this.data = wireBuffer(buffers.data);
    this.#spinning = spinning;
    this.#peerSpinning = peerSpinning;
  }

  protected send(counter: number, op: number, values: readonly WireValue[]): void {
    writeMessage(this.data, op, values);
    Atomics.add(this.control, counter, 1);
    Atomics.notify(this.control, counter);
  }

  /**
   * Whether the other side's counter moved, after spinning for it (unless
   * recent spins failed).
   */
  protected arrived(counter: number): boolean {
    const control = this.control;
    const seen = this.seen;
    if (this.#skipLeft > 0 && Atomics.load(control, this.#peerSpinning) === 0) {
      // Sleeping waits count whether or not the message is there already.
      this.#skipLeft--;
      return Atomics.load(control, counter) !== seen;
    }
    Atomics.store(control, this.#spinning, 1);
    for (let i = 0; i < SPIN_POLLS; i++) {
      if (Atomics.load(control, counter) !== seen) {
        Atomics.store(control, this.#spinning, 0);
        this.#skipped = this.#skipLeft = 0;
        return true;
      }
    }
    Atomics.store(control, this.#spinning, 0);
    this.#skipped = this.#skipped === 0 ? 1 : Math.min(MAX_SPIN_SKIP, this.#skipped * 2);
    this.#skipLeft = this.#skipped;
    return false;
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

  constructor(buffers: ChannelBuffers) {
    super(buffers, WORKER_SPINNING, HOST_SPINNING);
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
    if (!this.arrived(TO_WORKER)) {
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

  constructor(buffers: ChannelBuffers) {
    super(buffers, HOST_SPINNING, WORKER_SPINNING);
  }
  /**
   * When the sleeping `receive()` gives up (`performance.now()` time), or
   * `Infinity` when none sleeps or it waits for good.
   */
  #sleepUntil = Infinity;
  /** The timer that wakes a sleeping `receive()` at its deadline, and when it fires. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

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
   * (`undefined` then), or the channel is closed (`undefined` too).
   */
  receive(timeoutMs: number = Infinity): Promise<WireMessage | undefined> {
    if (this.arrived(TO_HOST)) return Promise.resolve(this.take(TO_HOST));
    return this.#sleep(timeoutMs);
  }

  async #sleep(timeoutMs: number): Promise<WireMessage | undefined> {
    const control = this.control;
    // No timeout is passed to waitAsync: each would queue a timer task in the
    // engine that outlives the wait (for the whole timeout). One timer per
    // channel serves every wait instead (see #wakeAt).
    const until = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    if (this.#closed || !(until > performance.now())) return undefined;
    if (until !== Infinity) this.#wakeAt(until);
    try {
      while (Atomics.load(control, TO_HOST) === this.seen) {
        if (this.#closed || performance.now() >= until) return undefined;
        const result = Atomics.waitAsync(control, TO_HOST, this.seen);
        if (result.async) await result.value;
      }
    } finally {
      this.#sleepUntil = Infinity;
    }
    return this.take(TO_HOST);
  }

  /**
   * Has the sleeping `receive()` woken at `until`. A timer that fires no
   * later than that is kept (it re-arms itself for what is left when it
   * fires early), so a stream of calls with the same timeout costs one timer
   * per timeout, not one per call.
   */
  #wakeAt(until: number): void {
    this.#sleepUntil = until;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= until) return;
      clearTimeout(this.#timer);
    }
    this.#startTimer(until);
  }

  #startTimer(at: number): void {
    const delay = Math.max(1, Math.ceil(at - performance.now()));
    this.#timerAt = performance.now() + delay;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      const until = this.#sleepUntil;
      if (until === Infinity) return;
      if (performance.now() >= until) Atomics.notify(this.control, TO_HOST);
      else this.#startTimer(until);
    }, Math.min(delay, MAX_TIMER_MS));
    // A call in flight keeps the process alive through its worker; the timer must not.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * Ends the channel: a pending `receive()` returns `undefined` (e.g. the
   * worker died), and a worker blocked in `Atomics.wait` wakes up, which a
   * terminated worker must do to actually end.
   */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    Atomics.notify(this.control, TO_HOST);
    Atomics.store(this.control, CLOSED, 1);
    Atomics.add(this.control, TO_WORKER, 1);
    Atomics.notify(this.control, TO_WORKER);
  }
}

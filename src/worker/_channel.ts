/**
 * The call channel between the host and one plugin's worker: one data
 * buffer that both sides take turns writing (strict request/response). It
 * starts with a 16-byte header: the two sequence counters, the host's stop
 * and closed signals, one flag per side saying that it sleeps, and the
 * claim of a request posted ahead.
 *
 * A worker has several channels (see `_worker_backend.ts`), of a fixed
 * 64 KiB each. A longer message goes through the worker's one growable bulk
 * buffer instead, which its channels share (see {@linkcode ChannelBuffers.bulk}):
 * it grows to the largest message, once per worker, not once per channel.
 *
 * Laid out by cache line, since every 64-byte line the two threads hand each
 * other costs up to ≈ 0.25 µs a round trip on the machines measured: the
 * header and the start of the message share the data buffer's first line (a
 * call's request and its answer fit in it, and so does a 16-byte bytes
 * call), so a quiet call moves that one line to and fro. No flag is written
 * on that path: a side writes its sleep flag only as it falls asleep and
 * wakes. (Flags on lines of their own, or a "spinning" flag written around
 * every spin, measured 0.15–0.2 µs slower a round trip when lines move
 * slowly, and at most 0.07 µs faster when they move fast.)
 *
 * A waiting side first spins briefly (about 10 µs, adaptively: see
 * {@linkcode ChannelEnd}), then sleeps, so an idle side never burns a core:
 * a worker in `Atomics.wait` on its channel, the host on the process's one
 * {@linkcode Doorbell}, which every worker rings after answering a sleeping
 * host. One host wake-up then serves every channel that answered meanwhile
 * (a crowd of busy plugins costs one wake-up per batch, not one per call),
 * and a side only calls `Atomics.notify` when the other one sleeps. In a
 * crowd the host wakes the workers it posted to once its current batch of
 * work is done (see `Doorbell.wakeLater`).
 *
 * @module
 */

import { MAX_TIMER_MS } from "../common/mod.ts";
import { ResourceLimitError } from "../errors.ts";
import {
  readMessage,
  type WireBuffer,
  wireBuffer,
  type WireMessage,
  type WireValue,
  writeMessage,
} from "./_wire.ts";

/** Index of the host-to-worker counter in the header's words. */
const TO_WORKER = 0;
/** Index of the worker-to-host counter in the header's words. */
const TO_HOST = 1;
/**
 * Index in the header's words of the host's signals: {@linkcode STOP}
 * and {@linkcode CLOSED} bits, set and cleared atomically (the worker reads
 * them as each call begins and after each wait).
 */
const SIGNALS = 2;
/** The signal bit the host sets when it wants the running call stopped. */
const STOP = 1;
/** The signal bit the host sets when it ends the channel. */
const CLOSED = 2;
/** The header's words (the counters and the signals). */
const COUNTER_WORDS = 3;
/** Byte offset in the data buffer of the header's sleep flags, one byte per side. */
const FLAGS_OFFSET = COUNTER_WORDS * 4;
/** Index in the flags of the byte set while the host sleeps on the doorbell for this channel. */
const HOST_SLEEPING = 0;
/** Index in the flags of the byte set while the worker sleeps for the host's message. */
const WORKER_SLEEPING = 1;
/**
 * Index in the flags of a request's claim. The host sets it with each
 * request (see `HostChannel.postRequest`): {@linkcode FIRM} for a request it
 * will not take back, which the worker takes as is, or {@linkcode POSTED}
 * for one posted ahead, which the worker swaps to {@linkcode CLAIMED} as it
 * takes it, unless the host took it back first (to {@linkcode RETRACTED}).
 * (A swap on every request would take the line from the host once more per
 * call: 0.1 µs on the quiet path.)
 */
const CLAIM = 2;
/** A request's claim, taken back by the host before the worker took it (or none posted). */
const RETRACTED = 0;
/** A request's claim, posted ahead and not taken yet. */
const POSTED = 1;
/** A request's claim, taken by the worker: it runs. */
const CLAIMED = 2;
/** A request's claim, posted for good: the worker takes it without a swap. */
const FIRM = 3;
/** The bytes of the header: the messages start after it. */
export const CHANNEL_HEADER_BYTES = 16;

/** Index in the doorbell of the counter workers bump to wake the host. */
const RING = 0;
/**
 * Index in the doorbell of the word that says {@linkcode CROWD_AT} or more
 * requests are in flight, over all channels (written only when that
 * changes: a write takes the line from the workers that read it).
 */
const CROWDED = 1;

/** The machine's cores. */
const CORES = Math.max(1, navigator.hardwareConcurrency ?? 1);
/**
 * How many busy workers (requests in flight, each worker counted once:
 * see `ChannelWaits.waiting`) make a crowd, in which nobody spins: the one
 * doorbell batches the host's wake-ups instead. Spins are short and back
 * off on their own when they fail, and a wake-up costs 10–35 µs here, so
 * they pay with more busy threads than cores. With the crowd at one per
 * core, two to four plugins called at once on 2 cores took 19–21 µs a
 * call, every call asleep; at four per core, 2.1–8.3 µs (two plugins, one
 * caller each) and 2.0–5.5 µs (four), while 50 plugins × 4 callers took
 * 13.0–14.2 against 11.7–13.1 µs (three runs of a sweep each).
 */
const CROWD_AT = CORES * 4;

/**
 * The most turns of the microtask queue the host waits for its batch of
 * posts to a crowd to end before it wakes their workers (see
 * `Doorbell.wakeLater`): a host whose microtasks keep posting must not keep
 * the first worker asleep for long.
 */
const MAX_WAKE_PASSES = 32;

/** Thrown in the worker when the host ended the channel: the worker must return to its event loop. */
export class ChannelClosed extends Error {
  constructor() {
    super("The host closed the channel");
    this.name = "ChannelClosed";
  }
}

/**
 * How many times a waiting side polls the other side's counter before it
 * sleeps, while the other side is awake: about 10 µs on the machines
 * measured (≈ 150 polls per µs). Counted in polls, not by the clock:
 * `performance.now()` costs ≈ 0.2 µs here. Longer spins lose under
 * contention, where the spinning side holds the core the other side needs
 * to answer.
 */
const SPIN_POLLS = 1500;
/**
 * The polls of a probe: a spin long enough (about 40 µs) to outlast the
 * wake-up of a sleeping peer (10–35 µs on an idle vCPU), after which both
 * sides are awake and short spins succeed again. Without it, two sides that
 * both fell asleep stay that way: each short spin ends before the other
 * side wakes.
 */
const PROBE_POLLS = 6000;
/**
 * The polls of the worker's wait for the request after a failed call (about
 * 100 µs): the host wakes, if it slept, and makes the failure's error before
 * it sends the next request, which takes longer than a probe. Without it,
 * both sides slept on every call of a run of failing calls.
 */
const AFTER_FAILURE_POLLS = 15_000;
/**
 * The most waits a side skips spinning for after short spins that failed in
 * a row (the skip doubles with each failure: 1, 2, 4 … this). On a busy
 * machine a failed spin holds the one free core that the other side needs:
 * with 16 here, worker calls read 0.71–0.78x a postMessage round trip with
 * the other core busy, with 256 0.56x (two runs of 15 interleaved rounds,
 * both versions in one process), and quiet calls were within noise (this ÷
 * 16: 0.92, 0.97 and 1.08, paired medians of three runs).
 */
const MAX_SPIN_SKIP = 256;
/** The most waits a side skips probing for after probes that failed in a row. */
const MAX_PROBE_SKIP = 64;

/**
 * Exponential back-off of one kind of spin: each failure in a row doubles
 * the number of waits that skip it (up to a maximum), a success resets it.
 */
class SpinBackoff {
  readonly #max: number;
  #left = 0;
  #skipped = 0;
  #strikes = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Whether this wait skips the spin (and counts it). */
  skip(): boolean {
    if (this.#left === 0) return false;
    this.#left--;
    return true;
  }

  succeeded(): void {
    this.#left = this.#skipped = this.#strikes = 0;
  }

  failed(): void {
    // One failure after a success costs nothing: a pause (a collection, an interrupt)
    // must not make the sides sleep, since every wake-up may land both on one core.
    if (this.#strikes++ === 0) return;
    this.#skipped = this.#skipped === 0 ? 1 : Math.min(this.#max, this.#skipped * 2);
    this.#left = this.#skipped;
  }
}

/**
 * How one side waits for the other: shared by the channels of one worker
 * (see `WorkerSetup.channels`), which take turns carrying one conversation,
 * so what a wait learns holds for the next one, on whichever channel.
 */
export class ChannelWaits {
  /** Short spins, for a peer that is awake but was asleep as this side sent. */
  readonly spins = new SpinBackoff(MAX_SPIN_SKIP);
  /** Spins for the answer of a peer that is on a core (it waited for this side's message). */
  readonly followers = new SpinBackoff(MAX_SPIN_SKIP);
  /** Probes of a sleeping peer. */
  readonly probes = new SpinBackoff(MAX_PROBE_SKIP);
  /** (Worker side.) The long spins after a failure (see `WorkerChannel.postFailure`). */
  readonly afterFailure = new SpinBackoff(MAX_PROBE_SKIP);
  /** Whether the other side was awake, waiting, as this side sent its last message. */
  peerWaited = false;
  /** (Worker side.) Whether the last answer was a failure (see `WorkerChannel.postFailure`). */
  answeredFailure = false;
  /**
   * (Host side.) Whether the last answer came late to a spin that followed
   * a working peer, and waits for {@linkcode judgeLateAnswer}.
   */
  lateAnswer = false;
  /** The flags of the channel this side sent its last message on. */
  lastSent: Int8Array | undefined;
  /**
   * (Host side.) How many of the channels wait for an answer: while any
   * does, the worker counts once in the doorbell's requests in flight.
   */
  waiting = 0;

  /**
   * Judges a late answer (see {@linkcode lateAnswer}), if one waits: a
   * success for the follower spins if the peer `worked` through the wait
   * (the call ran long enough to explain it), else a failure.
   */
  judgeLateAnswer(worked: boolean): void {
    if (!this.lateAnswer) return;
    this.lateAnswer = false;
    if (worked) this.followers.succeeded();
    else this.followers.failed();
  }
}

/** Size of a channel's data buffer: a longer message goes through the bulk buffer. */
const DATA_BYTES = 64 * 1024;
/**
 * The name a too long message's `ResourceLimitError` gives its limit: the
 * bulk buffer's maximum size, the most a worker plugin's call can carry
 * either way (see `docs/ABI.md`).
 */
const MAX_MESSAGE_LIMIT = "MAX_WORKER_MESSAGE_BYTES";
/** Initial and maximum sizes of the bulk buffer. */
const BULK_INITIAL_BYTES = 64 * 1024;
const BULK_MAX_BYTES = 1024 * 1024 * 1024 + 64 * 1024;
/** The bulk buffer's header: one word saying who holds it (see {@linkcode BULK_FREE}). */
const BULK_HEADER_BYTES = 16;
/** The bulk buffer holds no message anyone still reads. */
const BULK_FREE = 0;
/** The bulk buffer holds the host's message (the worker frees it as it next posts). */
const BULK_HOST = 1;
/** The bulk buffer holds the worker's message (the host frees it as it takes it). */
const BULK_WORKER = 2;
/** The host ended the channels. */
const BULK_CLOSED = 3;
/**
 * The op of the message a channel carries in place of one too long for it,
 * which is in the bulk buffer (no protocol op is this large).
 */
const IN_BULK = 255;

/** The shared buffers of a channel; posted to the worker at setup. */
export interface ChannelBuffers {
  /** The header (see {@linkcode CHANNEL_HEADER_BYTES}), then the messages. */
  readonly data: SharedArrayBuffer;
  /**
   * Where a message too long for `data` goes, with a 16-byte header saying
   * who holds it: shared by the channels of one worker, which carry one
   * conversation at a time, so it holds one message at a time. A worker
   * that has one to put there while the host has not taken the one before
   * (the answer of a call before, posted ahead) waits for it.
   */
  readonly bulk: SharedArrayBuffer;
  /** The host's {@linkcode Doorbell}, shared by every channel of the process. */
  readonly doorbell: SharedArrayBuffer;
  /**
   * Two floats, on the worker's clock: when the worker took a request that
   * was waiting for it (see `WorkerChannel.receiveRequest`), written only
   * then; and when its guest last read the clock before its last host call
   * (see `WorkerChannel.postHostCall`). On a line of their own.
   */
  readonly started: SharedArrayBuffer;
}

/** Allocates the buffers of a new channel; `bulk`: the bulk buffer of the worker's other channels. */
export function createChannelBuffers(bulk: SharedArrayBuffer = newBulkBuffer()): ChannelBuffers {
  return {
    // Growable only to be page-aligned (a plain one of this size comes from the allocator),
    // so the header and a call's message share one cache line.
    data: new SharedArrayBuffer(DATA_BYTES, { maxByteLength: DATA_BYTES }),
    bulk,
    doorbell: Doorbell.shared().buffer,
    // A line of its own: the worker writes it while the host posts to its neighbours.
    started: new SharedArrayBuffer(64),
  };
}

/** Allocates the buffers of `count` channels to one worker, sharing one bulk buffer. */
export function createLaneBuffers(count: number): ChannelBuffers[] {
  const bulk = newBulkBuffer();
  return Array.from({ length: count }, () => createChannelBuffers(bulk));
}

function newBulkBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(BULK_INITIAL_BYTES, { maxByteLength: BULK_MAX_BYTES });
}

/**
 * Where the host thread sleeps while channels wait for their workers: one
 * word in shared memory for the whole process. A worker that answers a
 * sleeping host bumps it and notifies; the host, woken once, takes the
 * answer of every sleeping channel whose worker answered. At most one
 * `Atomics.waitAsync` is pending at a time, only while some channel sleeps.
 */
class Doorbell {
  static #shared: Doorbell | undefined;

  /** The process's doorbell (host side). */
  static shared(): Doorbell {
    return Doorbell.#shared ??= new Doorbell();
  }

  readonly buffer = new SharedArrayBuffer(8);
  readonly #word = new Int32Array(this.buffer);
  readonly #sleepers = new Set<HostChannel>();
  #watching = false;
  #inFlight = 0;
  #crowded = 0;

  /** The number of requests sent and not yet answered, over all channels. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts a request sent (`+1`) or answered (`-1`); workers read whether that is a crowd. */
  count(change: 1 | -1): void {
    const crowded = (this.#inFlight += change) >= CROWD_AT ? 1 : 0;
    if (crowded !== this.#crowded) Atomics.store(this.#word, CROWDED, this.#crowded = crowded);
  }

  /** Whether the requests in flight make a crowd (see {@linkcode CROWD_AT}). */
  get crowded(): boolean {
    return this.#crowded === 1;
  }

  /** The channels whose sleeping workers {@linkcode wakeLater} wakes, in the order posted to. */
  readonly #wakes: HostChannel[] = [];
  /** How many wakes the last pass of {@linkcode #wakeAll} found, and its passes so far. */
  #wakesSeen = 0;
  #passes = 0;
  readonly #wakeAll = (): void => {
    const wakes = this.#wakes;
    // The batch is done once a turn of the microtasks posts to no further worker.
    if (wakes.length > this.#wakesSeen && this.#passes < MAX_WAKE_PASSES) {
      this.#wakesSeen = wakes.length;
      this.#passes++;
      queueMicrotask(this.#wakeAll);
      return;
    }
    this.#wakesSeen = this.#passes = 0;
    for (let i = 0; i < wakes.length; i++) wakes[i]!.wakeWorker();
    wakes.length = 0;
  };

  /**
   * Wakes the worker of `channel` (see `HostChannel.wakeWorker`) once the
   * host's current batch of work is done, not at once: for a crowd. A
   * channel is handed over once until then. The batch is done when a turn
   * of the microtask queue posts to no further worker (the answers taken
   * have let their callers make their next calls), or after
   * {@linkcode MAX_WAKE_PASSES} turns. A worker woken at once takes a core
   * from the host while it still posts to the others (on 2 cores, the one
   * that worker runs on), and would find one request where it finds
   * several now. Measured on 50 plugins × 4 callers, 2 cores, 21
   * interleaved rounds: 0.78–0.82x the time a call with one turn, and
   * 0.74–0.87x that again with up to 32; 0.30 worker sleeps a call, against
   * 0.50–0.53 with wakes at once.
   */
  wakeLater(channel: HostChannel): void {
    if (this.#wakes.push(channel) === 1) queueMicrotask(this.#wakeAll);
  }

  /** Has `channel` woken (see `HostChannel.wake`) when its worker rings. */
  add(channel: HostChannel): void {
    this.#sleepers.add(channel);
    if (!this.#watching) void this.#watch();
  }

  delete(channel: HostChannel): void {
    this.#sleepers.delete(channel);
  }

  async #watch(): Promise<void> {
    this.#watching = true;
    try {
      while (this.#sleepers.size > 0) {
        const rung = Atomics.load(this.#word, RING);
        // A channel that woke leaves the set (deleting while iterating a Set is safe).
        for (const channel of this.#sleepers) channel.wakeIfAnswered();
        if (this.#sleepers.size === 0) break;
        const waited = Atomics.waitAsync(this.#word, RING, rung);
        if (waited.async) await waited.value;
      }
    } finally {
      this.#watching = false;
    }
  }
}

/**
 * One side of a channel.
 *
 * A waiting side spins before it sleeps when that can pay off:
 * - never in a crowd of calls ({@linkcode CROWD_AT} requests in flight):
 *   then the one doorbell batches the host's wake-ups instead;
 * - a longer spin while the other side was awake as this side sent its
 *   message: in strict request/response it was waiting for that message, so
 *   it is on a core and about to answer (or to send the next request);
 * - a short spin while the other side is awake but was asleep then (it was
 *   woken, and its answer may take a while), skipped after failures;
 * - a probe (a longer spin too) now and then while the other side sleeps,
 *   which gets a pair that fell asleep back to answering within
 *   microseconds.
 *
 * Each kind backs off on its own after failures; an answer that only came
 * after a short spin's length counts as one (the other side waited for a
 * core: on a busy machine, this one), so on a busy machine the sides soon
 * sleep instead, which costs less there.
 *
 * Each channel decides alone: no count shared between channels, which would
 * let busy channels starve quiet ones.
 */
abstract class ChannelEnd {
  /** The header's sleep flags (see {@linkcode HOST_SLEEPING}), in the messages' first cache line. */
  protected readonly flags: Int8Array;
  /** The header's counters and signals, in the messages' first cache line. */
  protected readonly counters: Int32Array;
  protected readonly data: WireBuffer;
  /** The worker's bulk buffer (see {@linkcode ChannelBuffers.bulk}), and its holder word. */
  protected readonly bulk: WireBuffer;
  protected readonly bulkHolder: Int32Array;
  /** Last counter value seen from the other side. */
  protected seen = 0;
  protected readonly waits: ChannelWaits;
  /** The flag saying that the other side sleeps. */
  readonly #peerSleeping: number;

  constructor(buffers: ChannelBuffers, peerSleeping: number, waits: ChannelWaits) {
    this.flags = new Int8Array(buffers.data, FLAGS_OFFSET, CHANNEL_HEADER_BYTES - FLAGS_OFFSET);
    this.counters = new Int32Array(buffers.data, 0, COUNTER_WORDS);
    this.data = wireBuffer(buffers.data, CHANNEL_HEADER_BYTES);
    this.bulk = wireBuffer(buffers.bulk, BULK_HEADER_BYTES);
    this.bulkHolder = new Int32Array(buffers.bulk, 0, 1);
    this.#peerSleeping = peerSleeping;
    this.waits = waits;
  }

  /**
   * Writes a message and publishes it; returns whether the other side sleeps
   * (wake it then). `claim`: the message is a request, with that claim
   * (see {@linkcode CLAIM}); the counter publishes it with the message.
   */
  protected send(counter: number, op: number, values: readonly WireValue[], claim = -1): boolean {
    if (writeMessage(this.data, op, values, true) === -1) {
      this.holdBulk();
      try {
        writeMessage(this.bulk, op, values);
      } catch (err) {
        // Too long for the bulk buffer too: it stays free for the next message.
        Atomics.store(this.bulkHolder, 0, BULK_FREE);
        if (!(err instanceof RangeError)) throw err;
        throw new ResourceLimitError(err.message, { limit: MAX_MESSAGE_LIMIT, cause: err });
      }
      writeMessage(this.data, IN_BULK, []);
    }
    if (claim !== -1) this.flags[CLAIM] = claim;
    Atomics.add(this.counters, counter, 1);
    const peerSleeps = Atomics.load(this.flags, this.#peerSleeping) !== 0;
    this.waits.peerWaited = !peerSleeps;
    this.waits.lastSent = this.flags;
    return peerSleeps;
  }

  /**
   * Whether the other side's counter moved, after spinning for it when that
   * can pay off (see {@linkcode ChannelEnd}); `crowded`: never spin.
   */
  protected arrived(counter: number, crowded: boolean): boolean {
    if (!crowded) {
      // The other side sleeps, if at all, on the channel this side sent on last.
      const waits = this.waits;
      if (Atomics.load(waits.lastSent ?? this.flags, this.#peerSleeping) !== 0) {
        if (!waits.probes.skip()) return this.#spin(counter, PROBE_POLLS, waits.probes);
      } else if (waits.peerWaited) {
        // The peer took the message at once: an answer after a short spin is its work's length.
        if (!waits.followers.skip()) {
          return this.#spin(counter, PROBE_POLLS, waits.followers, this.lateAnswerPays());
        }
      } else if (!waits.spins.skip()) {
        return this.#spin(counter, SPIN_POLLS, waits.spins);
      }
    }
    return Atomics.load(this.counters, counter) !== this.seen;
  }

  /**
   * Spins up to `polls` times for the counter to move. An answer within a
   * short spin counts as a success for `backoff`. A later one means either
   * that the other side had to wait for a core (this one, when the machine
   * is busy), and sleeping would have cost less, or that it was working all
   * along: with `lateMayCount`, its judgement waits for what the answer says
   * of the work done (see {@linkcode ChannelWaits.judgeLateAnswer}); else it
   * is a failure.
   */
  #spin(counter: number, polls: number, backoff: SpinBackoff, lateMayCount = false): boolean {
    this.waits.judgeLateAnswer(false);
    const polled = this.#pollsUntilMoved(counter, polls);
    if (polled === -1 || (polled >= SPIN_POLLS && !lateMayCount)) backoff.failed();
    else if (polled < SPIN_POLLS) backoff.succeeded();
    else this.waits.lateAnswer = true;
    return polled !== -1;
  }

  /** How many polls it took the counter to move, up to `polls`; -1 if it did not. */
  #pollsUntilMoved(counter: number, polls: number): number {
    const counters = this.counters;
    const seen = this.seen;
    for (let i = 0; i < polls; i++) {
      if (Atomics.load(counters, counter) !== seen) return i;
    }
    return -1;
  }

  /**
   * Whether an answer that came after a short spin, within a long one, from
   * a peer that took the message at once (it was working all along), still
   * pays for spinning next time.
   */
  protected lateAnswerPays(): boolean {
    return false;
  }

  /** Spins up to `polls` times for the counter to move, whatever the spins' back-off says. */
  protected spinFor(counter: number, polls: number): boolean {
    return this.#pollsUntilMoved(counter, polls) !== -1;
  }

  protected take(counter: number, views = false): WireMessage {
    const counted = Atomics.load(this.counters, counter);
    const message = readMessage(this.data, views);
    const taken = message.op === IN_BULK ? this.takeFromBulk(views) : message;
    // Seen once read whole: a reader whose stack runs out midway leaves it to be read again.
    this.seen = counted;
    return taken;
  }

  /** Makes the bulk buffer this side's, to write a message there. */
  protected abstract holdBulk(): void;

  /** Reads the other side's message from the bulk buffer (see {@linkcode take}). */
  protected abstract takeFromBulk(views: boolean): WireMessage;
}

/** The worker's end: it blocks its own thread while it waits. */
export class WorkerChannel extends ChannelEnd {
  /** The host's answer a suspended guest waits for, see {@linkcode settle}. */
  #awaited: Promise<unknown> | undefined;
  readonly #doorbell: Int32Array;
  readonly #started: Float64Array;

  /** `waits`: shared by the channels of one worker, see {@linkcode ChannelWaits}. */
  constructor(buffers: ChannelBuffers, waits: ChannelWaits = new ChannelWaits()) {
    super(buffers, HOST_SLEEPING, waits);
    this.#doorbell = new Int32Array(buffers.doorbell);
    this.#started = new Float64Array(buffers.started);
  }
  /**
   * Whether this side read the host's message from the bulk buffer, maybe
   * as views: the buffer is the host's until this side next posts.
   */
  #readBulk = false;

  /**
   * {@linkcode post} for the answer of a failed call: the host takes longer
   * to send the next request (it makes the error first), so this side's
   * next wait spins longer before it sleeps.
   */
  postFailure(op: number, values: readonly WireValue[]): void {
    this.post(op, values);
    this.waits.answeredFailure = true;
  }

  /**
   * {@linkcode post} for a host call the guest waits for, with `clockRead`:
   * when the guest's instrumentation last read the clock (no later than the
   * call was sent: the guest, its deadline past then, would have stopped),
   * so that the host can tell a call sent late from one it served late (see
   * `HostChannel.hostCallSentAt`). Not a clock read of its own: one per host
   * call cost 5-15 % of a host call's round trip.
   */
  postHostCall(op: number, values: readonly WireValue[], clockRead: number): void {
    this.#started[1] = clockRead;
    this.post(op, values);
  }

  /** Sends a message to the host, and rings its doorbell when it sleeps. */
  post(op: number, values: readonly WireValue[]): void {
    if (this.#readBulk) {
      this.#readBulk = false;
      Atomics.store(this.bulkHolder, 0, BULK_FREE);
    }
    if (this.send(TO_HOST, op, values)) {
      Atomics.add(this.#doorbell, RING, 1);
      Atomics.notify(this.#doorbell, RING);
    }
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
    this.#await();
    this.#throwIfClosed();
    return this.take(TO_WORKER, views);
  }

  /**
   * Blocks until the host posts a request (see `HostChannel.postRequest`),
   * claims it and returns it, as {@linkcode receive}. A request the host
   * took back before this side claimed it is skipped. A request that was
   * waiting already ran behind the one before (the host posted it ahead):
   * its start is written for the host, whose deadline counts from it.
   *
   * @throws {ChannelClosed} As {@linkcode receive}.
   */
  receiveRequest(views = false): WireMessage {
    let waiting = Atomics.load(this.counters, TO_WORKER) !== this.seen;
    while (true) {
      if (waiting) this.#started[0] = performance.now();
      else this.#await();
      this.#throwIfClosed();
      const seen = Atomics.load(this.counters, TO_WORKER);
      const claim = Atomics.load(this.flags, CLAIM);
      if (
        claim === FIRM ||
        claim === POSTED && Atomics.compareExchange(this.flags, CLAIM, POSTED, CLAIMED) === POSTED
      ) {
        return this.take(TO_WORKER, views);
      }
      // Taken back: the host posts it again when it wants it run.
      this.seen = seen;
      waiting = false;
    }
  }

  /** Returns once the host's counter moved: after a spin, or asleep. */
  #await(): void {
    // Its own answer may still count as in flight: the host has not taken it yet.
    const crowded = Atomics.load(this.#doorbell, CROWDED) !== 0;
    const waits = this.waits;
    if (waits.answeredFailure) {
      waits.answeredFailure = false;
      // On a busy machine the host may need this core to get there: the spin backs off then.
      if (!crowded && !waits.afterFailure.skip()) {
        if (this.spinFor(TO_WORKER, AFTER_FAILURE_POLLS)) {
          waits.afterFailure.succeeded();
          return;
        }
        waits.afterFailure.failed();
      }
    }
    if (this.arrived(TO_WORKER, crowded)) return;
    const counters = this.counters;
    Atomics.store(this.flags, WORKER_SLEEPING, 1);
    while (Atomics.load(counters, TO_WORKER) === this.seen) {
      Atomics.wait(counters, TO_WORKER, this.seen);
    }
    Atomics.store(this.flags, WORKER_SLEEPING, 0);
  }

  /**
   * Waits until the host took this side's last message in the bulk buffer
   * (the answer of a call before: the host takes it in its turn), then
   * holds it.
   *
   * @throws {ChannelClosed} When the host ended the channels meanwhile.
   */
  protected holdBulk(): void {
    const holder = this.bulkHolder;
    while (true) {
      const held = Atomics.compareExchange(holder, 0, BULK_FREE, BULK_WORKER);
      if (held === BULK_FREE) return;
      if (held === BULK_CLOSED) throw new ChannelClosed();
      Atomics.wait(holder, 0, held);
    }
  }

  protected takeFromBulk(views: boolean): WireMessage {
    const message = readMessage(this.bulk, views);
    if (views) this.#readBulk = true;
    else Atomics.store(this.bulkHolder, 0, BULK_FREE);
    return message;
  }

  /** Throws {@linkcode ChannelClosed} once the host has ended the channel. */
  #throwIfClosed(): void {
    if ((Atomics.load(this.counters, SIGNALS) & CLOSED) !== 0) throw new ChannelClosed();
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
    const counters = this.counters;
    Atomics.store(this.flags, WORKER_SLEEPING, 1);
    try {
      while (Atomics.load(counters, TO_WORKER) === this.seen) {
        const result = Atomics.waitAsync(counters, TO_WORKER, this.seen);
        if (result.async) await result.value;
      }
    } finally {
      Atomics.store(this.flags, WORKER_SLEEPING, 0);
    }
    this.#throwIfClosed();
    return this.take(TO_WORKER);
  }

  /**
   * True when the host wants the running call stopped: the clock hook of
   * the guest's instrumentation asks it, and so does each call as it begins
   * (a stop the host asked for just before must not be lost).
   */
  get stopRequested(): boolean {
    return (Atomics.load(this.counters, SIGNALS) & STOP) !== 0;
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
  readonly #doorbell = Doorbell.shared();
  /** Resolves the sleeping `receive()`, if one sleeps. */
  #wake: ((message: WireMessage | undefined) => void) | undefined;
  /**
   * When the sleeping `receive()` gives up (`performance.now()` time), or
   * `Infinity` when none sleeps or it waits for good.
   */
  #sleepUntil = Infinity;
  /** The timer that wakes a sleeping `receive()` at its deadline, and when it fires. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  readonly #started: Float64Array;

  /** `waits`: shared by the channels of one worker, see {@linkcode ChannelWaits}. */
  constructor(buffers: ChannelBuffers, waits: ChannelWaits = new ChannelWaits()) {
    super(buffers, WORKER_SLEEPING, waits);
    this.#started = new Float64Array(buffers.started);
  }

  /** Whether a message sent to the worker waits for its answer (counted in the doorbell). */
  #waiting = false;

  /** Sends a message to the worker (an answer to its host call, or a request it takes with `receive`). */
  post(op: number, values: readonly WireValue[]): void {
    if (this.send(TO_WORKER, op, values)) Atomics.notify(this.counters, TO_WORKER);
    this.#countWaiting();
  }

  /**
   * Counts the message sent as waiting for its answer (once); the worker
   * counts in the doorbell while any of its channels waits: the count
   * stands for threads that need a core, and a worker has one, whatever
   * it was posted ahead.
   */
  #countWaiting(): void {
    if (!this.#waiting) {
      this.#waiting = true;
      if (this.waits.waiting++ === 0) this.#doorbell.count(1);
    }
  }

  /** Counts the message that waited for its answer as answered (or taken back). */
  #countAnswered(): void {
    if (this.#waiting) {
      this.#waiting = false;
      if (--this.waits.waiting === 0) this.#doorbell.count(-1);
    }
  }

  /** Takes the worker's message, which answers the last one sent. */
  #takeAnswer(): WireMessage {
    this.#countAnswered();
    const message = this.take(TO_HOST);
    // A spare the answer did not use is not kept past it (it may be large).
    if (this.data.spare !== undefined) this.data.spare = undefined;
    return message;
  }

  /**
   * Holds the bulk buffer, which is free whenever the host writes: it does
   * so only in a conversation (or with none in flight), after taking every
   * answer before.
   */
  protected holdBulk(): void {
    if (Atomics.compareExchange(this.bulkHolder, 0, BULK_FREE, BULK_HOST) !== BULK_FREE) {
      throw new Error("A plugin worker's bulk buffer was not free for the host's message");
    }
  }

  /** Copies the worker's message out of the bulk buffer and frees it; wakes a worker waiting for it. */
  protected takeFromBulk(): WireMessage {
    const bulk = this.bulk;
    bulk.spare = this.data.spare;
    this.data.spare = undefined;
    const message = readMessage(bulk);
    bulk.spare = undefined;
    Atomics.store(this.bulkHolder, 0, BULK_FREE);
    Atomics.notify(this.bulkHolder, 0);
    return message;
  }

  /**
   * Whether to wait for the worker without spinning: the requests in flight
   * make a crowd (see {@linkcode CROWD_AT}), or the worker is not woken yet
   * (the crowd may have thinned since the request was posted).
   */
  #crowded(): boolean {
    return this.#doorbell.crowded || this.#wakePending;
  }

  /** Whether the worker sleeps on a request posted in a crowd, to be woken with the host's batch. */
  #wakePending = false;

  /** Wakes the worker sleeping on the request posted last (see `Doorbell.wakeLater`). */
  wakeWorker(): void {
    this.#wakePending = false;
    Atomics.notify(this.counters, TO_WORKER);
  }

  /**
   * With this worker's request the only one in flight, an answer that came
   * within a long spin may still pay for spinning: if the worker was busy
   * with the call (10-40 µs of guest code), a sleep would have cost two
   * wake-ups (the host's, then the worker's for the next request, 30-35 µs
   * here). The caller judges it from the call's fuel. With other workers'
   * requests in flight, the spin would keep their answers waiting.
   */
  protected override lateAnswerPays(): boolean {
    return this.#doorbell.inFlight <= 1;
  }

  /**
   * Sends a request (a call, the start function, a memory access…), which
   * the worker takes with `WorkerChannel.receiveRequest`. One posted `ahead`
   * can be taken back until the worker claims it ({@linkcode retract}). A
   * stop asked for the request before is cleared. `outputLength` > 0: the answer is expected to
   * carry bytes of that length, and their buffer is made now, while the
   * worker works (the wire copies them into it if the length matches).
   * `ahead`: the worker may be running another request; {@linkcode startedAt}
   * then tells when it began this one.
   */
  postRequest(op: number, values: readonly WireValue[], outputLength = 0, ahead = false): void {
    // Written only when set (rarely): a fenced write here would stall the call.
    if ((this.counters[SIGNALS]! & STOP) !== 0) Atomics.and(this.counters, SIGNALS, ~STOP);
    // Only then: a write per call to a line of its own measured 15 % slower quiet calls.
    if (ahead) this.#started[0] = NaN;
    if (this.send(TO_WORKER, op, values, ahead ? POSTED : FIRM)) {
      if (this.#doorbell.crowded) {
        // Once per batch: a channel posted to again before the wake is woken once.
        if (!this.#wakePending) this.#doorbell.wakeLater(this);
        this.#wakePending = true;
      } else {
        Atomics.notify(this.counters, TO_WORKER);
      }
    }
    this.#countWaiting();
    if (outputLength > 0) this.data.spare = new Uint8Array(outputLength);
  }

  /**
   * Takes back the request posted last (`ahead`), unless the worker claimed
   * it: returns whether it did (no answer comes then).
   */
  retract(): boolean {
    if (Atomics.compareExchange(this.flags, CLAIM, POSTED, RETRACTED) !== POSTED) return false;
    this.#countAnswered();
    this.data.spare = undefined;
    return true;
  }

  /**
   * When the worker began the request posted last, on the worker's clock
   * (`performance.now()` there), if it was posted `ahead` and waiting when
   * the worker came to it; `NaN` otherwise (then it began after the host
   * posted it), or while the worker has not begun it.
   */
  startedAt(): number {
    return Atomics.load(this.flags, CLAIM) === CLAIMED ? this.#started[0]! : NaN;
  }

  /**
   * No later than when the worker sent the host call just received (see
   * `WorkerChannel.postHostCall`), on the worker's clock; `NaN` when not
   * known. (The message itself was read after it: the write is visible.)
   */
  hostCallSentAt(): number {
    return this.#started[1]!;
  }

  /** Asks the worker to stop the running call (see `WorkerChannel.stopRequested`). */
  requestStop(): void {
    Atomics.or(this.counters, SIGNALS, STOP);
  }

  /**
   * The worker's next message if it arrives while this side spins (see
   * {@linkcode ChannelEnd}), else `undefined` at once: never sleeps.
   */
  poll(): WireMessage | undefined {
    return this.arrived(TO_HOST, this.#crowded()) ? this.#takeAnswer() : undefined;
  }

  /**
   * Waits for the worker's next message, or until `timeoutMs` passes
   * (`undefined` then), or the channel is closed (`undefined` too).
   */
  receive(timeoutMs: number = Infinity): Promise<WireMessage | undefined> {
    if (this.arrived(TO_HOST, this.#crowded())) return Promise.resolve(this.#takeAnswer());
    if (this.#closed || !(timeoutMs > 0)) return Promise.resolve(undefined);
    // No executor: a promise that could reject only when the caller's stack ran out would
    // end the process if that caller, at the same edge, ran out again before awaiting it.
    // Here the stack running out throws, and leaves nothing waiting.
    const { promise, resolve } = Promise.withResolvers<WireMessage | undefined>();
    this.#wake = resolve;
    try {
      Atomics.store(this.flags, HOST_SLEEPING, 1);
      // The worker may have answered before it could see the flag.
      if (this.wakeIfAnswered()) return promise;
      this.#doorbell.add(this);
      // No timeout is passed to waitAsync: each would queue a timer task in the
      // engine that outlives the wait (for the whole timeout). One timer per
      // channel serves every wait instead (see #wakeAt).
      if (timeoutMs !== Infinity) this.#wakeAt(performance.now() + timeoutMs);
    } catch (err) {
      this.#wake = undefined;
      throw err;
    }
    return promise;
  }

  /**
   * Wakes the sleeping `receive()` with the worker's message if it is there
   * (the doorbell asks after a ring). Returns whether it woke.
   */
  wakeIfAnswered(): boolean {
    if (Atomics.load(this.counters, TO_HOST) === this.seen) return false;
    this.#wakeWith(this.#takeAnswer());
    return true;
  }

  /** Ends the sleep of `receive()`, if one sleeps, with `message`. */
  #wakeWith(message: WireMessage | undefined): void {
    const wake = this.#wake;
    if (wake === undefined) return;
    this.#wake = undefined;
    this.#sleepUntil = Infinity;
    Atomics.store(this.flags, HOST_SLEEPING, 0);
    this.#doorbell.delete(this);
    wake(message);
  }

  /**
   * Has the sleeping `receive()`, if one sleeps, give up by `until`
   * (`performance.now()` time) at the latest: a call stopped while it waits
   * has only its grace left, not its deadline.
   */
  wakeBy(until: number): void {
    if (this.#wake !== undefined && until < this.#sleepUntil) this.#wakeAt(until);
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
      if (performance.now() < until) return this.#startTimer(until);
      if (!this.wakeIfAnswered()) this.#wakeWith(undefined);
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
    this.#countAnswered();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeWith(undefined);
    Atomics.or(this.counters, SIGNALS, CLOSED);
    Atomics.add(this.counters, TO_WORKER, 1);
    Atomics.notify(this.counters, TO_WORKER);
    // A worker may wait for the bulk buffer instead.
    Atomics.store(this.bulkHolder, 0, BULK_CLOSED);
    Atomics.notify(this.bulkHolder, 0);
  }
}

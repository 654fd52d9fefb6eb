/**
 * One caller at a time, the others in line: the turn a plugin's calls take
 * (see `WasmPlugin`), and the one a worker's channel gives each exchange
 * (see `_worker_backend.ts`).
 *
 * A binary semaphore with a FIFO line, shaped for a hot path: a free queue
 * hands its turn over synchronously, and the turn is one object per queue,
 * reused, so taking and releasing it allocates nothing. A promise is made
 * only for a caller that has to wait.
 *
 * @module
 */

/** How many released slots the line keeps at its front, at least, before it is compacted. */
const COMPACT_AFTER = 1024;

/** The tag of a caller who left the line (its slot stays until the head passes it). */
const LEFT: unique symbol = Symbol("left the line");

/** The turn {@linkcode CallQueue.wakeAll} gives: it holds nothing, and releasing it does nothing. */
const NO_TURN: Disposable = Object.freeze({ [Symbol.dispose](): void {} });

/**
 * Whether `turn` is the one {@linkcode CallQueue.wakeAll} gives, which holds
 * nothing: its holder must not act as if it had the queue's turn.
 *
 * @example
 * ```ts ignore
 * const turn = await queue.take();
 * if (isEmptyTurn(turn)) throw new Error("woken without the turn");
 * ```
 */
export function isEmptyTurn(turn: Disposable): boolean {
  return turn === NO_TURN;
}

/** How a caller may leave the line before its turn (see {@linkcode CallQueue.take}). */
export interface LeaveOptions {
  /** Aborting it takes the caller out of the line: its promise rejects with the reason. */
  readonly signal: AbortSignal;
  /**
   * Asked when the signal aborts: `false` keeps the caller in line (it
   * began already, elsewhere); by default it leaves.
   */
  readonly mayLeave?: () => boolean;
}

/** A caller waiting with a signal that may take it out of the line. */
interface Leaver {
  /** Its position in the line since the line began. */
  readonly position: number;
  /** What hands it the turn. */
  wake: (turn: Disposable) => void;
  readonly mayLeave: (() => boolean) | undefined;
  readonly reject: (reason: unknown) => void;
}

/** What {@linkcode CallQueue} is made with. */
export interface CallQueueOptions {
  /**
   * Called when a turn is released and nobody waits for it: the queue is
   * free (a worker's backend arms its idle timer then).
   */
  readonly onFree?: () => void;
}

/**
 * A FIFO line for one turn. {@linkcode take} gives the turn at once when it
 * is free, else a promise of it, given in the order the callers asked;
 * releasing the turn (`using`, or `turn[Symbol.dispose]()`) hands it to the
 * next caller in line directly, so no one arriving meanwhile can take it
 * first. Release a turn once.
 *
 * @example Run one job at a time
 * ```ts ignore
 * const queue = new CallQueue();
 * async function job(name: string): Promise<void> {
 *   const taken = queue.take();
 *   using _turn = taken instanceof Promise ? await taken : taken;
 *   await work(name); // no other job runs meanwhile
 * } // the next job's turn
 * ```
 */
export class CallQueue {
  /** Whether a caller holds the turn (it stays taken as it passes down the line). */
  #held = false;
  /**
   * How the callers waiting are woken, first first: the line is
   * `#waiting[#head…]`. A release moves the head instead of shifting the
   * array, which past some 16 000 waiters copied it whole each time
   * (100 000 queued reads drained in 5 s); released slots are compacted
   * away once they are half the array.
   */
  #waiting: (((turn: Disposable) => void) | undefined)[] = [];
  /** The position `#waiting[0]` has in the line since it began, for callers that leave. */
  #base = 0;
  /** How many slots of the line callers who left emptied. */
  #left = 0;
  /**
   * The caller a release handed the turn to and had not woken yet: set
   * until it is, so that when the releasing caller's stack runs out midway
   * (a call made at its edge), the release it tries again wakes the same
   * caller instead of losing it.
   */
  #unwoken: ((turn: Disposable) => void) | undefined;
  /** The callers waiting with each signal (see {@linkcode take}'s `leave`). */
  readonly #leavers = new Map<AbortSignal, { leavers: Set<Leaver>; onAbort: () => void }>();
  /** What the callers waiting said of themselves (see {@linkcode take}), in the same order. */
  #tags: unknown[] = [];
  #head = 0;
  readonly #turn: Disposable;
  readonly #onFree: (() => void) | undefined;

  constructor(options: CallQueueOptions = {}) {
    this.#onFree = options.onFree;
    this.#turn = Object.freeze({ [Symbol.dispose]: () => this.#release() });
  }

  /** Whether a caller holds the turn: a {@linkcode take} now would wait. */
  get busy(): boolean {
    return this.#held;
  }

  /** How many callers wait for the turn. */
  get waiting(): number {
    return this.#waiting.length - this.#head - this.#left;
  }

  /** The turn if it is free, else `undefined` (and nothing waits). */
  tryTake(): Disposable | undefined {
    if (this.#held) return undefined;
    this.#held = true;
    return this.#turn;
  }

  /**
   * The turn itself if it is free, else a promise of it, kept after the
   * callers already waiting. `tag`: what the caller says of itself while it
   * waits (see {@linkcode waitingTags}); `leave`: a signal that takes the
   * caller out of the line, its promise rejected with the reason.
   */
  take(tag?: unknown, leave?: LeaveOptions): Disposable | Promise<Disposable> {
    if (!this.#held) {
      this.#held = true;
      return this.#turn;
    }
    if (leave === undefined) {
      this.#tags.push(tag);
      return new Promise((resolve) => this.#waiting.push(resolve));
    }
    const { signal, mayLeave } = leave;
    if (signal.aborted && mayLeave?.() !== false) return Promise.reject(signal.reason);
    this.#tags.push(tag);
    const position = this.#base + this.#waiting.length;
    return new Promise((resolve, reject) => {
      const leaver: Leaver = { position, wake: undefined!, mayLeave, reject };
      const wake = (turn: Disposable): void => {
        this.#unwatch(signal, leaver);
        resolve(turn);
      };
      leaver.wake = wake;
      this.#waiting.push(wake);
      this.#watch(signal, leaver);
    });
  }

  /**
   * Watches `signal` for `leaver`: one listener per signal, however many
   * callers share it (an `EventTarget` pays for each listener it holds on
   * every add: 32 000 callers of one signal took 8 s to join the line).
   */
  #watch(signal: AbortSignal, leaver: Leaver): void {
    let watched = this.#leavers.get(signal);
    if (watched === undefined) {
      const onAbort = (): void => this.#leave(signal);
      watched = { leavers: new Set(), onAbort };
      this.#leavers.set(signal, watched);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    watched.leavers.add(leaver);
  }

  /** Stops watching `signal` for `leaver` (its turn came); the last one takes the listener off. */
  #unwatch(signal: AbortSignal, leaver: Leaver): void {
    const watched = this.#leavers.get(signal);
    if (watched === undefined) return;
    watched.leavers.delete(leaver);
    if (watched.leavers.size > 0) return;
    this.#leavers.delete(signal);
    signal.removeEventListener("abort", watched.onAbort);
  }

  /** Takes the callers waiting with `signal` out of the line (those that may leave). */
  #leave(signal: AbortSignal): void {
    const watched = this.#leavers.get(signal);
    if (watched === undefined) return;
    this.#leavers.delete(signal);
    for (const { position, wake, mayLeave, reject } of watched.leavers) {
      const at = position - this.#base;
      // Woken already, or asked to stay.
      if (at < this.#head || this.#waiting[at] !== wake || mayLeave?.() === false) continue;
      this.#waiting[at] = undefined;
      this.#tags[at] = LEFT;
      this.#left++;
      reject(signal.reason);
    }
    this.#dropLeftAtHead();
  }

  /**
   * The tags of the callers waiting, first first (`undefined` for those
   * that gave none; callers who left are not in it): a plugin looks along
   * its line for calls it can start early. `count`: only the first so many (what is returned is a copy).
   */
  waitingTags(count = Infinity): readonly unknown[] {
    const head = this.#head;
    if (this.#left === 0) {
      return this.#tags.slice(head, count === Infinity ? undefined : head + count);
    }
    // Without the callers who left: those behind them are next in line.
    const tags: unknown[] = [];
    for (let i = head; i < this.#tags.length && tags.length < count; i++) {
      if (this.#tags[i] !== LEFT) tags.push(this.#tags[i]);
    }
    return tags;
  }

  /**
   * Ends every wait at once, each with a turn that holds nothing: for
   * shutting down, when the callers in line are to find out that they may
   * not run. The turn itself stays with its holder.
   */
  wakeAll(): void {
    const waiting = this.#waiting.slice(this.#head);
    this.#reset();
    for (const wake of waiting) wake?.(NO_TURN);
    // Handed the turn already: it holds it.
    const unwoken = this.#unwoken;
    this.#unwoken = undefined;
    unwoken?.(this.#turn);
  }

  #release(): void {
    if (!this.#held) return;
    const unwoken = this.#unwoken;
    if (unwoken !== undefined) {
      unwoken(this.#turn); // waking twice is harmless: a promise settles once
      this.#unwoken = undefined;
      return;
    }
    this.#dropLeftAtHead();
    const head = this.#head;
    if (head < this.#waiting.length) {
      const next = this.#waiting[head]!;
      this.#unwoken = next;
      this.#waiting[head] = undefined;
      this.#tags[head] = undefined;
      this.#head = head + 1;
      if (this.#head === this.#waiting.length) {
        this.#reset();
      } else {
        this.#dropLeftAtHead();
        if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#waiting.length) {
          // Both copies first: the fields change together, with no call between them.
          const waiting = this.#waiting.slice(this.#head);
          const tags = this.#tags.slice(this.#head);
          this.#waiting = waiting;
          this.#tags = tags;
          this.#base += this.#head;
          this.#head = 0;
        }
      }
      next(this.#turn);
      this.#unwoken = undefined;
      return;
    }
    // Freed last: a release cut off before it is tried again as a whole.
    this.#onFree?.();
    this.#held = false;
  }

  /** Moves the head past the slots of callers who left; empties the line when only they were left. */
  #dropLeftAtHead(): void {
    const waiting = this.#waiting;
    let head = this.#head;
    while (head < waiting.length && waiting[head] === undefined) {
      head++;
      this.#left--;
    }
    this.#head = head;
    if (head === waiting.length && head > 0) this.#reset();
  }

  /** Empties the line. */
  #reset(): void {
    this.#base += this.#waiting.length;
    this.#waiting = [];
    this.#tags = [];
    this.#head = 0;
    this.#left = 0;
  }
}

/**
 * Counts the host's live timers by wrapping the global timer functions, so a
 * soak can tell that nothing it ran left a timer behind.
 *
 * @module
 */

/** The global timer functions, as Deno has them (ids are numbers). */
interface TimerFunctions {
  setTimeout(handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): number;
  setInterval(handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): number;
  clearTimeout(id?: number): void;
  clearInterval(id?: number): void;
}

/** Live timers since {@linkcode TimerProbe.install}, and the most at once. */
export interface TimerCounts {
  /** Timers created. */
  readonly created: number;
  /** Timers set and not yet fired or cleared. */
  readonly live: number;
  /** The most live timers at any moment. */
  readonly peak: number;
}

/**
 * Wraps `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval` while
 * installed; a timeout is live until it fires or is cleared, an interval
 * until it is cleared. Use it with `using`.
 */
export class TimerProbe implements Disposable {
  readonly #live = new Set<number>();
  #created = 0;
  #peak = 0;
  #restore: (() => void) | undefined;

  /** Starts counting. */
  static install(): TimerProbe {
    const probe = new TimerProbe();
    probe.#install();
    return probe;
  }

  /** The counts so far. */
  counts(): TimerCounts {
    return { created: this.#created, live: this.#live.size, peak: this.#peak };
  }

  #add(id: number): number {
    this.#created++;
    this.#live.add(id);
    this.#peak = Math.max(this.#peak, this.#live.size);
    return id;
  }

  #install(): void {
    const timers = globalThis as unknown as TimerFunctions;
    const { setTimeout, setInterval, clearTimeout, clearInterval } = timers;
    const live = this.#live;
    timers.setTimeout = (handler, ms, ...args) => {
      const id = setTimeout(() => {
        live.delete(id);
        handler(...args);
      }, ms);
      return this.#add(id);
    };
    timers.setInterval = (handler, ms, ...args) => this.#add(setInterval(handler, ms, ...args));
    timers.clearTimeout = (id) => {
      if (id !== undefined) live.delete(id);
      clearTimeout(id);
    };
    timers.clearInterval = (id) => {
      if (id !== undefined) live.delete(id);
      clearInterval(id);
    };
    this.#restore = () => {
      Object.assign(timers, { setTimeout, setInterval, clearTimeout, clearInterval });
    };
  }

  /** Stops counting and puts the real timer functions back. */
  [Symbol.dispose](): void {
    this.#restore?.();
    this.#restore = undefined;
  }
}

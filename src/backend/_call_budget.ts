/**
 * A call's budget: how long it may run, how much fuel it may burn, and the
 * signal that aborts it. {@linkcode resolveCallBudget} resolves it from a
 * plugin's limits and the call's options; {@linkcode CallWatch} enforces its
 * deadline and signal while the call waits, wherever it runs (the inline
 * instance's async calls, the worker backend's exchanges).
 *
 * @module
 */

import type { CallOptions } from "../call_options.ts";
import { assertKnownKeys, describeValue, MAX_TIMER_MS, optionField } from "../common/mod.ts";
import { TimeoutError } from "../errors.ts";

/** Per-call budgets, already resolved from the plugin's limits and the call options. */
export interface CallBudget {
  readonly timeoutMs: number;
  readonly fuel: number | null;
  readonly signal: AbortSignal | undefined;
}

/** What a plugin allows its calls: {@linkcode resolveCallBudget} narrows it per call. */
export interface PluginBudget {
  /**
   * The budget of a call without options: the plugin's `maxExecutionTimeMs`
   * and `maxFuel`, and the signal of its `stop({ abort: true })`. Also the
   * most a call may ask for.
   */
  readonly budget: CallBudget;
  /** Whether the module counts fuel: if not, a call may not ask for a fuel budget. */
  readonly fuelMetered: boolean;
}

/** The keys of `CallOptions`. */
const CALL_OPTION_KEYS = ["signal", "timeoutMs", "fuel"];

/**
 * The budget of one call: the plugin's own (the same object) without
 * options, else narrowed by them, with the call's signal joined to the
 * plugin's. A call may narrow the plugin's budgets, never widen them, and
 * never silently.
 *
 * @throws {TypeError} If the options are not an object, have an unknown key, or `signal` is not an `AbortSignal`.
 * @throws {RangeError} If `timeoutMs` or `fuel` is not positive or above the plugin's, or fuel is not metered.
 */
export function resolveCallBudget(
  options: CallOptions | undefined,
  plugin: PluginBudget,
): CallBudget {
  if (options === undefined) return plugin.budget;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot call with options ${
        describeValue(options)
      }: expected an object { signal?, timeoutMs?, fuel? }`,
    );
  }
  assertKnownKeys("the call options", options, CALL_OPTION_KEYS);
  // Read as fields of their own (or their class's): never from a polluted Object.prototype.
  const signal = optionField(options, "signal") as CallOptions["signal"];
  const timeoutMs = optionField(options, "timeoutMs") as CallOptions["timeoutMs"];
  const fuel = optionField(options, "fuel") as CallOptions["fuel"];
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot call with 'signal' = ${describeValue(signal)}: expected an AbortSignal`,
    );
  }
  for (const [name, value] of [["timeoutMs", timeoutMs], ["fuel", fuel]] as const) {
    if (value !== undefined && typeof value !== "number") {
      throw new TypeError(
        `Cannot call with '${name}': expected a number, received ${describeValue(value)}`,
      );
    }
  }
  if (timeoutMs !== undefined && !(timeoutMs > 0)) {
    throw new RangeError(
      `Cannot call with 'timeoutMs' = ${timeoutMs}: it must be a positive number`,
    );
  }
  if (fuel !== undefined && !(Number.isSafeInteger(fuel) && fuel > 0)) {
    throw new RangeError(`Cannot call with 'fuel' = ${fuel}: it must be a positive integer`);
  }
  const { timeoutMs: maxExecutionTimeMs, fuel: maxFuel, signal: pluginSignal } = plugin.budget;
  if (timeoutMs !== undefined && timeoutMs > maxExecutionTimeMs) {
    throw new RangeError(
      `Cannot call with 'timeoutMs' = ${timeoutMs}: it is above the plugin's maxExecutionTimeMs of ${maxExecutionTimeMs}`,
    );
  }
  if (fuel !== undefined && !plugin.fuelMetered) {
    throw new RangeError(
      `Cannot call with 'fuel' = ${fuel}: the runtime does not meter fuel (execution.fuelMetering is false)`,
    );
  }
  if (fuel !== undefined && maxFuel !== null && fuel > maxFuel) {
    throw new RangeError(
      `Cannot call with 'fuel' = ${fuel}: it is above the plugin's maxFuel of ${maxFuel}`,
    );
  }
  return {
    timeoutMs: timeoutMs ?? maxExecutionTimeMs,
    fuel: fuel ?? maxFuel,
    signal: signal === undefined || pluginSignal === undefined
      ? signal ?? pluginSignal
      : AbortSignal.any([signal, pluginSignal]),
  };
}

/** What a {@linkcode CallWatch} watches, and whom it tells. */
export interface CallWatchOptions {
  /** The `performance.now()` value past which the call must end (`Infinity`: never). */
  readonly deadline: number;
  /**
   * Stops the call, with the signal's reason or a `TimeoutError` (`expired`:
   * the deadline's); called once at most, synchronously from the constructor
   * when the signal is already aborted.
   */
  readonly onStop: (reason: unknown, expired: boolean) => void;
  /**
   * Whether the watch sets a timer for the deadline. A caller that waits
   * with a timeout of its own (the worker backend, on its channel) passes
   * `false` and calls {@linkcode CallWatch.expire} when that wait ends.
   *
   * @default {true}
   */
  readonly timer?: boolean;
}

/**
 * Watches a running call's deadline and abort signal, and stops the call
 * once, for whichever comes first. Disposing it (at the call's end) clears
 * its timer and removes its abort listener.
 *
 * @example Stop a call at its deadline or when aborted
 * ```ts ignore
 * const watch = new CallWatch(budget, {
 *   deadline: startMs + budget.timeoutMs,
 *   onStop: (reason) => cancel(reason),
 * });
 * try {
 *   return await call();
 * } finally {
 *   watch[Symbol.dispose]();
 * }
 * ```
 */
export class CallWatch implements Disposable {
  #deadline: number;
  readonly #timeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onStop: (reason: unknown, expired: boolean) => void;
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onAbort = (): void => this.#stop(this.#signal!.reason, false);

  /** Whether the deadline's timer is off while someone else keeps it (see {@linkcode hold}). */
  #held = false;

  constructor(budget: CallBudget, options: CallWatchOptions) {
    this.#deadline = options.deadline;
    this.#timeoutMs = budget.timeoutMs;
    this.#signal = budget.signal;
    this.#onStop = options.onStop;
    const signal = budget.signal;
    if (signal?.aborted) {
      this.#stop(signal.reason, false);
      return;
    }
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (options.timer !== false && Number.isFinite(this.#deadline)) this.#arm();
  }

  /** The `performance.now()` value past which the call must end. */
  get deadline(): number {
    return this.#deadline;
  }

  /**
   * Moves the deadline to `deadline` if that is later (never earlier), its
   * timer with it: time the call spent waiting for someone else (a busy
   * host) was not its own.
   */
  extendTo(deadline: number): void {
    if (this.#stopped || !(deadline > this.#deadline)) return;
    this.#deadline = deadline;
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#arm();
  }

  /**
   * Turns the deadline's timer off until the returned handle is disposed:
   * meanwhile another party keeps the deadline (a worker's host, while it
   * serves a host call), and the call must not end before it answers. A
   * deadline that passed meanwhile ends the call as the timer comes back.
   */
  hold(): Disposable {
    if (this.#timer === undefined || this.#held) return { [Symbol.dispose](): void {} };
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held = true;
    return {
      [Symbol.dispose]: () => {
        if (!this.#held) return;
        this.#held = false;
        if (!this.#stopped) this.#arm();
      },
    };
  }

  /** Whether the call was stopped (aborted, or past its deadline). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops the call with a `TimeoutError`, unless it is stopped already: its deadline passed. */
  expire(): void {
    this.#stop(new TimeoutError(undefined, { timeoutMs: this.#timeoutMs }), true);
  }

  /** Clears the timer and removes the abort listener: the call ended. */
  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held = false;
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }

  /** Sets the deadline's timer; a deadline beyond the longest timer is reached in steps. */
  #arm(): void {
    const left = Math.max(0, this.#deadline - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (left > MAX_TIMER_MS) this.#arm();
      else this.expire();
    }, Math.min(left, MAX_TIMER_MS));
  }

  #stop(reason: unknown, expired: boolean): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this[Symbol.dispose]();
    this.#onStop(reason, expired);
  }
}

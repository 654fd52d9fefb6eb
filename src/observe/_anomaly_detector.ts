/**
 * Online baselines of one plugin's calls and the anomalies that depart from
 * them; the manager feeds it every call (see `AnomalyOptions` for the
 * behaviour in words).
 *
 * Duration and fuel: an exponentially weighted mean and variance of
 * `log(x)`, per exported function. A call is flagged when its z-score
 * reaches the threshold, the standard deviation being clamped so that a
 * perfectly steady metric does not flag a 1 % change and a noisy one still
 * flags a 6-fold one, and when it also departs by a minimum ratio and
 * amount. An anomaly needs {@linkcode PERSISTENCE} flagged calls among the
 * last {@linkcode WINDOW}. Flagged calls do not move the baseline, unless
 * they go on for {@linkcode NEW_NORMAL_WARMUPS} warm-ups: that is then the
 * new normal, learned afresh.
 *
 * Memory growth and error rate: the exponentially weighted rate of calls that
 * grew memory (or failed), and a binomial z-score of such calls among the
 * last {@linkcode WINDOW}. They never become normal by lasting.
 *
 * While a departure lasts it is reported again after {@linkcode WINDOW}
 * calls, then twice as many each time (up to {@linkcode MAX_REPORT_GAP}), so
 * that actions counting anomalies see it go on without a flood of events.
 *
 * @module
 */

import { assertKnownKeys, optionFields } from "../common/mod.ts";
import { describeValue } from "../common/mod.ts";
import type {
  AnomalyDetail,
  AnomalyMetric,
  AnomalyOptions,
  PluginManagerOptions,
} from "./anomaly.ts";

/** Resolved {@linkcode AnomalyOptions}. */
export interface AnomalySettings {
  readonly threshold: number;
  readonly warmupCalls: number;
  readonly pauseAfter: number;
  readonly unloadAfter: number;
}

/** Default `threshold`. */
export const DEFAULT_THRESHOLD = 5;
/** Default `warmupCalls`. */
export const DEFAULT_WARMUP_CALLS = 30;
/** Calls a baseline remembers (the weight of the newest call is `1 / MEMORY`). */
const MEMORY = 100;
/** Recent calls an anomaly is judged on. */
export const WINDOW = 8;
/** Flagged calls among the last {@linkcode WINDOW} that make a duration or fuel anomaly. */
export const PERSISTENCE = 5;
/** Warm-ups of flagged duration (or fuel) calls in a row after which they are the new normal. */
export const NEW_NORMAL_WARMUPS = 4;
/** Most calls between two reports of one lasting departure. */
export const MAX_REPORT_GAP = 1024;
/** Exported functions with their own duration and fuel baselines; the rest share one. */
const MAX_FUNCTIONS = 256;

interface LogSpec {
  /** Clamp of the standard deviation of `log(x + offset)`. */
  readonly minSigma: number;
  readonly maxSigma: number;
  /** A flagged value is at least this many times the baseline… */
  readonly minRatio: number;
  /** …and at least this much above it. */
  readonly minDelta: number;
  /** Added before the logarithm, so that 0 has one: far below a usual value. */
  readonly offset: number;
}

const DURATION: LogSpec = {
  minSigma: 0.15,
  maxSigma: 0.35,
  minRatio: 4,
  minDelta: 0.25,
  offset: 1e-4,
};
const FUEL: LogSpec = { minSigma: 0.15, maxSigma: 0.35, minRatio: 2, minDelta: 100, offset: 1 };

/** A departure found by a baseline. */
interface Departure {
  readonly value: number;
  readonly baseline: number;
  readonly score: number;
}

/**
 * When to report a lasting departure again: after {@linkcode WINDOW} calls,
 * then after twice as many each time; a quiet window ends the episode.
 */
class Reporting {
  #cooldown = 0;
  #gap = WINDOW;
  #quiet = 0;

  /** Counts one call, unusual or not. */
  tick(unusual: boolean): void {
    if (this.#cooldown > 0) this.#cooldown--;
    if (unusual) {
      this.#quiet = 0;
    } else if (++this.#quiet >= WINDOW) {
      this.#gap = WINDOW;
    }
  }

  /** Whether a departure found now is reported (and, if so, when the next may be). */
  due(): boolean {
    if (this.#cooldown > 0) return false;
    this.#cooldown = this.#gap;
    this.#gap = Math.min(this.#gap * 2, MAX_REPORT_GAP);
    return true;
  }

  reset(): void {
    this.#cooldown = 0;
    this.#gap = WINDOW;
    this.#quiet = 0;
  }
}

/** Baseline of a positive, roughly log-normal metric (duration, fuel). */
export class LogBaseline {
  readonly #spec: LogSpec;
  readonly #reporting = new Reporting();
  #n = 0;
  #mean = 0;
  #variance = 0;
  /** Bit i set: the call i calls ago was flagged. */
  #window = 0;
  #flaggedRun = 0;

  /** Creates an empty baseline with the clamps and minimum departures of `spec`. */
  constructor(spec: LogSpec) {
    this.#spec = spec;
  }

  /** Learns `value`, or returns the departure it completes. */
  observe(value: number, settings: AnomalySettings): Departure | null {
    if (!(value >= 0)) return null;
    const spec = this.#spec;
    const y = Math.log(value + spec.offset);
    if (this.#n < settings.warmupCalls) {
      this.#learn(y, Infinity);
      return null;
    }
    const sigma = Math.min(spec.maxSigma, Math.max(spec.minSigma, Math.sqrt(this.#variance)));
    const score = (y - this.#mean) / sigma;
    // The exponential only for the rare call above the threshold: this runs after every call.
    const baseline = score >= settings.threshold ? Math.exp(this.#mean) - spec.offset : Infinity;
    const flagged = value >= baseline * spec.minRatio && value - baseline >= spec.minDelta;
    this.#window = ((this.#window << 1) | (flagged ? 1 : 0)) & ((1 << WINDOW) - 1);
    this.#reporting.tick(flagged);
    if (!flagged) {
      this.#flaggedRun = 0;
      this.#learn(y, settings.threshold * sigma);
      return null;
    }
    if (++this.#flaggedRun >= NEW_NORMAL_WARMUPS * settings.warmupCalls) {
      this.#reset();
      return null;
    }
    if (popCount(this.#window) < PERSISTENCE || !this.#reporting.due()) return null;
    return { value, baseline, score };
  }

  /** Exponentially weighted mean and variance; deviations beyond `clamp` count as `clamp`. */
  #learn(y: number, clamp: number): void {
    this.#n++;
    const alpha = Math.max(1 / this.#n, 1 / MEMORY);
    const deviation = Math.max(-clamp, Math.min(clamp, y - this.#mean));
    if (this.#n === 1) {
      this.#mean = y;
      return;
    }
    this.#mean += alpha * deviation;
    this.#variance = (1 - alpha) * (this.#variance + alpha * deviation * deviation);
  }

  #reset(): void {
    this.#n = 0;
    this.#mean = 0;
    this.#variance = 0;
    this.#window = 0;
    this.#flaggedRun = 0;
    this.#reporting.reset();
  }
}

/**
 * Baseline of how often something happens in a call (memory grows, the call
 * fails), and of the amount when it does.
 */
export class RateBaseline {
  readonly #reporting = new Reporting();
  #n = 0;
  /** Weighted rate of hits. */
  #rate = 0;
  /** Weighted amount per call. */
  #amount = 0;
  /** Bit i set: the call i calls ago was a hit. */
  #window = 0;
  /** Calls in the window (fewer than {@linkcode WINDOW} just after the warm-up). */
  #calls = 0;
  /** The amounts of the calls in the window, newest at `#next - 1`. */
  readonly #amounts = new Float64Array(WINDOW);
  #next = 0;

  /** Learns one call, or returns the departure it completes. */
  observe(hit: boolean, amount: number, settings: AnomalySettings): Departure | null {
    if (this.#n < settings.warmupCalls) {
      this.#learn(hit, amount);
      return null;
    }
    this.#window = ((this.#window << 1) | (hit ? 1 : 0)) & ((1 << WINDOW) - 1);
    if (this.#calls < WINDOW) this.#calls++;
    this.#amounts[this.#next] = amount;
    this.#next = (this.#next + 1) % WINDOW;
    if (!hit) {
      // The usual case, after every call: nothing to score.
      this.#reporting.tick(false);
      this.#learn(false, amount);
      return null;
    }
    const m = this.#calls;
    const p = this.#rate;
    // The 0.25 keeps a rate of exactly 0 from making one hit infinitely unusual.
    const score = (popCount(this.#window) - m * p) / Math.sqrt(m * p * (1 - p) + 0.25);
    const unusual = score >= settings.threshold / 2;
    this.#reporting.tick(unusual);
    // A hit in an unusual run does not teach the baseline that runs are usual.
    if (!unusual) this.#learn(true, amount);
    if (score < settings.threshold || !this.#reporting.due()) return null;
    let total = 0;
    for (let i = 0; i < m; i++) total += this.#amounts[i]!;
    return { value: total / m, baseline: this.#amount, score };
  }

  #learn(hit: boolean, amount: number): void {
    this.#n++;
    const alpha = Math.max(1 / this.#n, 1 / MEMORY);
    this.#rate += alpha * ((hit ? 1 : 0) - this.#rate);
    this.#amount += alpha * (amount - this.#amount);
  }
}

interface FunctionBaselines {
  readonly duration: LogBaseline;
  readonly fuel: LogBaseline;
}

/** The baselines of one plugin. */
export class AnomalyDetector {
  readonly #settings: AnomalySettings;
  readonly #functions = new Map<string, FunctionBaselines>();
  readonly #memory = new RateBaseline();
  readonly #errors = new RateBaseline();
  #lastMemoryBytes: number;
  /** Anomalies reported so far (what the actions count). */
  count = 0;

  /**
   * Creates the detector of one plugin.
   *
   * @param settings The manager's resolved options.
   * @param memoryBytes The plugin's memory size before its first call.
   */
  constructor(settings: AnomalySettings, memoryBytes: number) {
    this.#settings = settings;
    this.#lastMemoryBytes = memoryBytes;
  }

  /**
   * Learns one call (positional arguments: it runs after every call);
   * returns the anomalies it completes, or `null` (the usual case).
   *
   * @param durationMs `NaN` when the call's duration says nothing of the
   *   plugin (its worker was started for it: its code ran cold).
   * @param fuel Fuel used, 0 when not metered.
   * @param memoryBytes The linear-memory size after the call.
   */
  observe(
    fn: string,
    durationMs: number,
    ok: boolean,
    fuel: number,
    memoryBytes: number,
  ): AnomalyDetail[] | null {
    const settings = this.#settings;
    let found: AnomalyDetail[] | null = null;
    if (ok) {
      const baselines = this.#baselinesOf(fn);
      if (!Number.isNaN(durationMs)) {
        found = add(found, "duration", baselines.duration.observe(durationMs, settings), fn);
      }
      if (fuel > 0) found = add(found, "fuel", baselines.fuel.observe(fuel, settings), fn);
    }
    const grown = Math.max(0, memoryBytes - this.#lastMemoryBytes);
    this.#lastMemoryBytes = memoryBytes;
    found = add(found, "memory", this.#memory.observe(grown > 0, grown, settings));
    found = add(found, "error_rate", this.#errors.observe(!ok, ok ? 0 : 1, settings));
    if (found !== null) this.count += found.length;
    return found;
  }

  #baselinesOf(fn: string): FunctionBaselines {
    let baselines = this.#functions.get(fn);
    if (baselines === undefined) {
      const key = this.#functions.size < MAX_FUNCTIONS ? fn : "";
      baselines = this.#functions.get(key);
      if (baselines === undefined) {
        baselines = { duration: new LogBaseline(DURATION), fuel: new LogBaseline(FUEL) };
        this.#functions.set(key, baselines);
      }
    }
    return baselines;
  }
}

function add(
  found: AnomalyDetail[] | null,
  metric: AnomalyMetric,
  departure: Departure | null,
  fn?: string,
): AnomalyDetail[] | null {
  if (departure === null) return found;
  found ??= [];
  found.push(fn === undefined ? { metric, ...departure } : { metric, ...departure, function: fn });
  return found;
}

function popCount(bits: number): number {
  let count = 0;
  for (; bits !== 0; bits &= bits - 1) count++;
  return count;
}

const MANAGER_OPTION_KEYS = ["anomaly"];
const ANOMALY_OPTION_KEYS = ["threshold", "warmupCalls", "actions"];
const ACTION_KEYS = ["pauseAfter", "unloadAfter"];

/**
 * Checks a manager's options and resolves its anomaly settings, `null` when
 * detection is off.
 *
 * @throws {TypeError} For an unknown key or a value of the wrong type.
 * @throws {RangeError} For a number out of range.
 */
export function resolveAnomalySettings(
  options: PluginManagerOptions | undefined,
): AnomalySettings | null {
  if (options === undefined) return resolveAnomaly({});
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot create a manager: expected options { anomaly? }, received ${describeValue(options)}`,
    );
  }
  assertKnownKeys("the manager options", options, MANAGER_OPTION_KEYS);
  const { anomaly = true } = optionFields(options, MANAGER_OPTION_KEYS) as PluginManagerOptions;
  if (anomaly === false) return null;
  if (anomaly === true) return resolveAnomaly({});
  if (typeof anomaly !== "object" || anomaly === null) {
    throw new TypeError(
      `Cannot create a manager: 'anomaly' must be a boolean or an object, received ${
        describeValue(anomaly)
      }`,
    );
  }
  return resolveAnomaly(anomaly);
}

function resolveAnomaly(options: AnomalyOptions): AnomalySettings {
  assertKnownKeys("'anomaly'", options, ANOMALY_OPTION_KEYS);
  const { threshold = DEFAULT_THRESHOLD, warmupCalls = DEFAULT_WARMUP_CALLS, actions = {} } =
    optionFields(options, ANOMALY_OPTION_KEYS) as AnomalyOptions;
  if (typeof threshold !== "number" || !(threshold > 0) || threshold === Infinity) {
    throw new RangeError(
      `Cannot create a manager as 'anomaly.threshold' must be a positive number: current value is ${
        describeValue(threshold)
      }`,
    );
  }
  checkCount("anomaly.warmupCalls", warmupCalls);
  if (typeof actions !== "object" || actions === null) {
    throw new TypeError(
      `Cannot create a manager: 'anomaly.actions' must be an object, received ${
        describeValue(actions)
      }`,
    );
  }
  assertKnownKeys("'anomaly.actions'", actions, ACTION_KEYS);
  const { pauseAfter, unloadAfter } = optionFields(actions, ACTION_KEYS) as NonNullable<
    AnomalyOptions["actions"]
  >;
  if (pauseAfter !== undefined) checkCount("anomaly.actions.pauseAfter", pauseAfter);
  if (unloadAfter !== undefined) checkCount("anomaly.actions.unloadAfter", unloadAfter);
  return Object.freeze({
    threshold,
    warmupCalls,
    pauseAfter: pauseAfter ?? Infinity,
    unloadAfter: unloadAfter ?? Infinity,
  });
}

function checkCount(key: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create a manager as '${key}' must be a positive integer: current value is ${
        describeValue(value)
      }`,
    );
  }
}

/**
 * The load and soak harness: many plugins in one {@linkcode PluginManager},
 * several concurrent callers each, for a fixed time, with faults injected at
 * random (timeouts, traps, fuel and call-depth exhaustion, out-of-bounds
 * output, aborted calls, crashed and stuck workers, plugins restarted under
 * load). Every call is entered in a ledger and its outcome checked; at the
 * end everything is closed and the harness checks that nothing was lost or
 * left behind: calls, workers, timers, listeners, memory.
 *
 * `deno task soak` runs it from the command line (`main.ts`); `soak_test.ts`
 * runs a short one in CI.
 *
 * @module
 */

import {
  Capability,
  type CompiledModule,
  type Isolation,
  type ManagerStats,
  type PluginHandle,
  PluginManager,
  type WasmPluginConfig,
  WasmRuntime,
} from "../../mod.ts";
import { withInternalOptions } from "../../src/backend/_internal_options.ts";
import { PLUGIN_EVENT_TYPES } from "../_helpers.ts";
import { type Action, FAULT_ACTIONS, NORMAL_ACTIONS, type Target } from "./_actions.ts";
import { CallLedger, type CallRecord } from "./_ledger.ts";
import { ListenerProbe } from "./_listener_probe.ts";
import { Rng } from "./_rng.ts";
import { type Flavor, ID_KEY, soakWat, TOOL_NAME } from "./_soak_plugin.ts";
import { type Counts, Tally } from "./_tally.ts";
import { type TimerCounts, TimerProbe } from "./_timer_probe.ts";
import { type WorkerCounts, WorkerProbe } from "./_worker_probe.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /**
   * Plugins loaded; even-numbered ones have the sync flavor, odd-numbered
   * ones the async flavor (JSPI).
   *
   * @default {50}
   */
  plugins?: number;
  /**
   * Concurrent callers per plugin.
   *
   * @default {4}
   */
  callers?: number;
  /**
   * How long callers keep issuing calls, in milliseconds.
   *
   * @default {300_000}
   */
  durationMs?: number;
  /**
   * Where the plugins run. Crashed and stuck workers are injected in worker
   * isolation only.
   *
   * @default {"worker"}
   */
  isolation?: Isolation;
  /**
   * The probability that a call is a fault.
   *
   * @default {0.1}
   */
  faultRate?: number;
  /**
   * The seed of every caller's random sequence.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * How much the median RSS of the run's second half may exceed that of its
   * first half, in MB.
   *
   * @default {64}
   */
  rssGrowthBoundMb?: number;
  /**
   * The most listeners any one EventTarget may have at once. A target that
   * gains a listener per call (a plugin's abort signal, the manager) passes
   * it within seconds.
   *
   * @default {64}
   */
  listenerBound?: number;
  /**
   * How long calls still running at the end may take to settle before they
   * are counted as lost, in milliseconds.
   *
   * @default {30_000}
   */
  drainMs?: number;
  /** Called about every second with the run's progress. */
  onProgress?: (progress: SoakProgress) => void;
}

/** The progress of a running soak. */
export interface SoakProgress {
  /** Time since the callers started, in milliseconds. */
  readonly elapsedMs: number;
  /** Calls issued so far. */
  readonly issued: number;
  /** Calls settled so far. */
  readonly settled: number;
  /** Unexpected outcomes so far. */
  readonly unexpected: number;
  /** The latest RSS sample, in MB. */
  readonly rssMb: number;
  /** Plugin workers alive now. */
  readonly liveWorkers: number;
}

/** A check a soak must pass. */
export interface SoakCheck {
  /** What is checked, as a sentence. */
  readonly name: string;
  /** Whether it held. */
  readonly passed: boolean;
  /** The numbers behind it. */
  readonly detail: string;
}

/** Everything a soak measured. */
export interface SoakReport {
  /** The options the soak ran with. */
  readonly settings: {
    readonly plugins: number;
    readonly callers: number;
    readonly durationMs: number;
    readonly isolation: Isolation;
    readonly faultRate: number;
    readonly seed: number;
  };
  /** How long callers issued calls (the duration, plus the drain of the last calls). */
  readonly elapsedMs: number;
  /** Calls issued, settled, and lost (issued and never settled). */
  readonly calls: {
    readonly issued: number;
    readonly settled: number;
    readonly lost: number;
    readonly perSecond: number;
  };
  /** The first calls that never settled. */
  readonly lostCalls: readonly CallRecord[];
  /** Latency of successful normal calls, in milliseconds. */
  readonly latency: {
    readonly count: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
  };
  /** Settled plugin calls by outcome: `ok`, an error `kind`, `aborted`, `wrong_result`. */
  readonly outcomes: Counts;
  /** Faults injected, by name (`restart` included). */
  readonly faults: Counts;
  /** Calls ended by their plugin's restart (expected), by what they were. */
  readonly collateral: Counts;
  /** Outcomes no rule explains, and descriptions of the first ones. */
  readonly unexpected: { readonly count: number; readonly examples: readonly string[] };
  /** RSS in MB. */
  readonly rss: {
    readonly start: number;
    readonly end: number;
    readonly peak: number;
    readonly firstHalfMedian: number;
    readonly secondHalfMedian: number;
    readonly growth: number;
    readonly bound: number;
    readonly samples: number;
  };
  /**
   * Plugin workers over the whole run, with `live` counted after everything
   * was closed, and how many plugin starts took a worker a stopped or
   * parked plugin left (`reused`: no new thread).
   */
  readonly workers: WorkerCounts & { readonly reused: number };
  /** Host timers, with `live` counted after everything was closed. */
  readonly timers: TimerCounts;
  /** The most listeners one EventTarget had at once, and the bound. */
  readonly listeners: { readonly peak: number; readonly bound: number };
  /** The manager's own counts, and the events it dispatched. */
  readonly manager: ManagerStats & {
    readonly executedEvents: number;
    readonly events: number;
    readonly subscriptionRead: number;
    readonly subscriptionDropped: number;
  };
  /** Plugins the runtime still counted after it closed. */
  readonly pluginsAtEnd: number;
  readonly checks: readonly SoakCheck[];
  /** True when every check passed. */
  readonly passed: boolean;
}

/** Limits of every soak plugin: fuel only per call, a generous backstop for calls that never end. */
const PLUGIN_TIMEOUT_MS = 10_000;
/** How often a restart is drawn, relative to a fault of weight 1. */
const RESTART_WEIGHT = 0.5;
/** Each caller lets the event loop turn after this many calls (see {@linkcode nextTask}). */
const YIELD_EVERY = 16;
/** How long closing the manager and the runtime may take, in milliseconds. */
const CLOSE_MS = 10_000;
/** How many lost calls a report lists. */
const LOST_LISTED = 20;
const MB = 1024 * 1024;

/** One loaded plugin and what its callers need to know about it. */
interface Slot {
  readonly id: string;
  readonly flavor: Flavor;
  readonly compiled: CompiledModule;
  readonly config: WasmPluginConfig;
  readonly normals: readonly Action[];
  /** Fault actions, and `null` for a restart. */
  readonly faults: readonly (Action | null)[];
  handle: PluginHandle;
  /** Restarts so far: a call issued before one may end with the plugin. */
  kills: number;
  /** Settles when the restart in progress is over; callers wait for it. */
  restarting: Promise<void> | undefined;
  /** True when a restart failed: the plugin is gone and its callers stop. */
  dead: boolean;
}

/**
 * Runs a soak and returns its report; it never throws for what the plugins
 * do (a failed check is in the report), only for bad options.
 *
 * @throws {RangeError} If an option is out of range.
 */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const {
    plugins = 50,
    callers = 4,
    durationMs = 300_000,
    isolation = "worker",
    faultRate = 0.1,
    seed = 1,
    rssGrowthBoundMb = 64,
    listenerBound = 64,
    drainMs = 30_000,
    onProgress,
  } = options;
  for (const [name, value] of Object.entries({ plugins, callers })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot soak with '${name}' = ${value}: it must be a positive integer`);
    }
  }
  for (
    const [name, value] of Object.entries({ durationMs, rssGrowthBoundMb, listenerBound, drainMs })
  ) {
    if (!(value > 0 && Number.isFinite(value))) {
      throw new RangeError(`Cannot soak with '${name}' = ${value}: it must be a positive number`);
    }
  }
  if (!(faultRate >= 0 && faultRate <= 1)) {
    throw new RangeError(`Cannot soak with 'faultRate' = ${faultRate}: it must be in [0, 1]`);
  }
  if (!Number.isInteger(seed)) {
    throw new RangeError(`Cannot soak with 'seed' = ${seed}: it must be an integer`);
  }
  if (isolation !== "worker" && isolation !== "inline") {
    throw new RangeError(
      `Cannot soak with 'isolation' = ${isolation}: it must be worker or inline`,
    );
  }
  const soak = new Soak({
    plugins,
    callers,
    durationMs,
    isolation,
    faultRate,
    seed,
    rssGrowthBoundMb,
    listenerBound,
    drainMs,
    onProgress,
  });
  return await soak.run();
}

type Settings = Required<Omit<SoakOptions, "onProgress">> & {
  readonly onProgress: SoakOptions["onProgress"] | undefined;
};

interface RssSample {
  readonly atMs: number;
  readonly bytes: number;
}

class Soak {
  readonly #settings: Settings;
  readonly #ledger = new CallLedger();
  readonly #tally = new Tally();
  readonly #slots: Slot[] = [];
  readonly #samples: RssSample[] = [];
  #startedAt = 0;
  #endAt = 0;
  #elapsedMs = 0;
  #stats: ManagerStats | undefined;
  #dropped = 0;
  #pluginsAtEnd = 0;
  #closed = false;
  #events = 0;
  /** Plugin starts that took a kept worker. */
  #reusedWorkers = 0;
  #executedEvents = 0;
  #subscriptionRead = 0;

  constructor(settings: Settings) {
    this.#settings = settings;
  }

  async run(): Promise<SoakReport> {
    using timers = TimerProbe.install();
    using workers = WorkerProbe.install();
    using listeners = ListenerProbe.install();
    return await this.#runWith(timers, workers, listeners);
  }

  async #runWith(
    timers: TimerProbe,
    workers: WorkerProbe,
    listeners: ListenerProbe,
  ): Promise<SoakReport> {
    const settings = this.#settings;
    const runtime = new WasmRuntime(withInternalOptions({
      execution: { isolation: settings.isolation },
      resourceLimits: {
        maxInstances: settings.plugins,
        maxExecutionTimeMs: PLUGIN_TIMEOUT_MS,
        maxFuel: null,
      },
    }, {
      workerUrl: new URL("./_faulty_worker.ts", import.meta.url),
      onWorkerEvent: (event) => {
        if (event === "reused") this.#reusedWorkers++;
      },
    }));
    runtime.registerTool(TOOL_NAME, async (args) => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const { a, b } = args as { a: number; b: number };
      return { sum: a + b };
    });
    const manager = new PluginManager(runtime);
    const onEvent = (event: Event): void => {
      this.#events++;
      if (event.type === "executed") this.#executedEvents++;
    };
    for (const type of PLUGIN_EVENT_TYPES) manager.addEventListener(type, onEvent);
    const subscription = manager.subscribe({ bufferSize: 4096 });
    const reading = (async () => {
      for await (const _ of subscription) this.#subscriptionRead++;
    })();

    let drained = false;
    let sampler: ReturnType<typeof setInterval> | undefined;
    try {
      await this.#load(manager);
      this.#startedAt = performance.now();
      this.#endAt = this.#startedAt + settings.durationMs;
      this.#sample();
      sampler = this.#startSampler(workers);
      const callers = this.#slots.flatMap((slot, s) =>
        Array.from(
          { length: settings.callers },
          (_, c) =>
            this.#caller(manager, slot, new Rng(settings.seed, s * settings.callers + c), c === 0),
        )
      );
      drained = await settle(Promise.all(callers), this.#endAt + settings.drainMs);
    } finally {
      clearInterval(sampler);
      this.#sample();
      this.#elapsedMs = performance.now() - this.#startedAt;
      this.#closed = await settle(
        (async () => {
          // Calls that never settled are still running: end them instead of waiting.
          if (!drained) await manager.unloadAll({ abort: true });
          await manager.close();
          await reading;
          await runtime.close();
        })(),
        performance.now() + CLOSE_MS,
      );
      for (const type of PLUGIN_EVENT_TYPES) manager.removeEventListener(type, onEvent);
      this.#stats = manager.stats();
      this.#dropped = subscription.dropped;
      this.#pluginsAtEnd = runtime.pluginCount;
    }
    return this.#report(timers.counts(), workers.counts(), listeners.counts().peak);
  }

  /** Loads every plugin, half of each flavor, each with its own `id` config value. */
  async #load(manager: PluginManager): Promise<void> {
    const { plugins, isolation } = this.#settings;
    const compiled = {
      sync: await manager.runtime.compileWat("soak-sync", soakWat("sync")),
      async: await manager.runtime.compileWat("soak-async", soakWat("async")),
    };
    for (let i = 0; i < plugins; i++) {
      const flavor: Flavor = i % 2 === 0 ? "sync" : "async";
      const id = `soak-${i}`;
      const config: WasmPluginConfig = {
        id,
        name: id,
        capabilities: flavor === "sync"
          ? [Capability.ReadConfig]
          : [Capability.ReadConfig, Capability.Timer, Capability.CallTool],
        config: { [ID_KEY]: id },
      };
      const handle = await manager.loadCompiled(compiled[flavor], config);
      await manager.initialize(handle);
      this.#slots.push({
        id,
        flavor,
        compiled: compiled[flavor],
        config,
        normals: NORMAL_ACTIONS.filter((action) => action.available(isolation, flavor)),
        faults: [...FAULT_ACTIONS.filter((action) => action.available(isolation, flavor)), null],
        handle,
        kills: 0,
        restarting: undefined,
        dead: false,
      });
    }
  }

  /**
   * One caller: calls the plugin until the time is up, each call drawn from
   * `rng`. A `scripted` caller first injects every fault its plugin can have,
   * once each in random order, each followed by a normal call, so every run
   * covers every fault however short it is.
   */
  async #caller(manager: PluginManager, slot: Slot, rng: Rng, scripted: boolean): Promise<void> {
    const { faultRate, isolation } = this.#settings;
    const script = scripted
      ? rng.shuffle(slot.faults).flatMap((fault) => [fault, rng.weighted(slot.normals, weight)])
      : [];
    let calls = 0;
    while (performance.now() < this.#endAt && !slot.dead) {
      if (++calls % YIELD_EVERY === 0) await nextTask();
      if (slot.restarting !== undefined) {
        await slot.restarting;
        continue;
      }
      const action = script.length > 0
        ? script.shift()!
        : rng.chance(faultRate)
        ? rng.weighted(slot.faults, weight)
        : rng.weighted(slot.normals, weight);
      if (action === null) {
        await this.#restart(manager, slot);
        continue;
      }
      const target: Target = {
        manager,
        handle: slot.handle,
        id: slot.id,
        flavor: slot.flavor,
        isolation,
      };
      const { run, expect } = action.prepare(target, rng);
      const kills = slot.kills;
      const settlement = await this.#ledger.track(slot.id, action.name, run);
      this.#tally.record(slot.id, action, expect, settlement, slot.kills !== kills);
    }
  }

  /**
   * Unloads the plugin, ending its running call, and loads it again under the
   * same id; its other callers wait meanwhile.
   */
  async #restart(manager: PluginManager, slot: Slot): Promise<void> {
    slot.kills++;
    let done!: () => void;
    slot.restarting = new Promise((resolve) => (done = resolve));
    const settlement = await this.#ledger.track(slot.id, "restart", async () => {
      await manager.unload(slot.handle, { abort: true });
      slot.handle = await manager.loadCompiled(slot.compiled, slot.config);
      await manager.initialize(slot.handle);
    });
    this.#tally.recordRestart(slot.id, settlement);
    if (!settlement.ok) slot.dead = true;
    slot.restarting = undefined;
    done();
  }

  #sample(): void {
    this.#samples.push({
      atMs: performance.now() - this.#startedAt,
      bytes: Deno.memoryUsage().rss,
    });
  }

  /** Samples the RSS about 30 times a run (at most once a second) and reports progress. */
  #startSampler(workers: WorkerProbe): ReturnType<typeof setInterval> {
    const { durationMs, onProgress } = this.#settings;
    const every = Math.max(100, Math.min(1000, durationMs / 30));
    let lastProgress = 0;
    return setInterval(() => {
      this.#sample();
      const elapsedMs = performance.now() - this.#startedAt;
      if (onProgress !== undefined && elapsedMs - lastProgress >= 1000) {
        lastProgress = elapsedMs;
        const counts = this.#ledger.counts();
        onProgress({
          elapsedMs,
          issued: counts.issued,
          settled: counts.settled,
          unexpected: this.#tally.unexpected,
          rssMb: this.#samples.at(-1)!.bytes / MB,
          liveWorkers: workers.counts().live,
        });
      }
    }, every);
  }

  #report(timers: TimerCounts, workers: WorkerCounts, listenerPeak: number): SoakReport {
    const settings = this.#settings;
    const counts = this.#ledger.counts();
    const tally = this.#tally;
    const stats = this.#stats!;
    const rss = rssSummary(this.#samples, settings.durationMs, settings.rssGrowthBoundMb);
    const manager = {
      ...stats,
      executedEvents: this.#executedEvents,
      events: this.#events,
      subscriptionRead: this.#subscriptionRead,
      subscriptionDropped: this.#dropped,
    };
    const lost = counts.issued - counts.settled;
    const checks: SoakCheck[] = [
      check(
        "Every call settled exactly once",
        lost === 0 && counts.pending === 0,
        `${counts.issued} issued, ${counts.settled} settled, ${lost} lost`,
      ),
      check(
        "Every outcome was the expected one",
        tally.unexpected === 0,
        `${tally.unexpected} unexpected`,
      ),
      check(
        "The manager counted each successful call once",
        stats.totalCalls - stats.failedCalls === tally.okCalls &&
          this.#executedEvents === stats.totalCalls,
        `${
          stats.totalCalls - stats.failedCalls
        } successes counted by the manager, ${tally.okCalls} seen by callers; ${stats.totalCalls} calls, ${this.#executedEvents} executed events`,
      ),
      check(
        "The subscription lost no event without counting it",
        manager.subscriptionRead + manager.subscriptionDropped === this.#events,
        `${manager.subscriptionRead} read + ${manager.subscriptionDropped} dropped, ${this.#events} dispatched`,
      ),
      check(
        "No worker outlived its plugin",
        workers.live === 0 && workers.peak <= settings.plugins,
        `${workers.spawned} spawned, ${workers.terminated} terminated, ${workers.live} live at the end, at most ${workers.peak} at once`,
      ),
      check("No timer was left behind", timers.live === 0, `${timers.live} live at the end`),
      check(
        "No EventTarget accumulated listeners",
        listenerPeak <= settings.listenerBound,
        `at most ${listenerPeak} on one target, bound ${settings.listenerBound}`,
      ),
      check(
        "RSS did not grow unboundedly",
        rss.growth <= rss.bound,
        `median ${mb(rss.firstHalfMedian)} in the first half, ${
          mb(rss.secondHalfMedian)
        } in the second, growth ${mb(rss.growth)}, bound ${mb(rss.bound)}`,
      ),
      check(
        "Closing released every plugin",
        this.#closed && this.#pluginsAtEnd === 0,
        `${
          this.#closed ? "closed" : `not closed after ${CLOSE_MS} ms`
        }, ${this.#pluginsAtEnd} plugins left in the runtime`,
      ),
    ];
    return {
      settings: {
        plugins: settings.plugins,
        callers: settings.callers,
        durationMs: settings.durationMs,
        isolation: settings.isolation,
        faultRate: settings.faultRate,
        seed: settings.seed,
      },
      elapsedMs: this.#elapsedMs,
      calls: {
        issued: counts.issued,
        settled: counts.settled,
        lost,
        perSecond: counts.settled / (this.#elapsedMs / 1000),
      },
      lostCalls: this.#ledger.pending().slice(0, LOST_LISTED),
      latency: {
        count: tally.latency.count,
        p50: tally.latency.quantile(0.5),
        p99: tally.latency.quantile(0.99),
        max: tally.latency.max,
      },
      outcomes: tally.outcomes,
      faults: tally.faults,
      collateral: tally.collateral,
      unexpected: { count: tally.unexpected, examples: tally.examples },
      rss,
      workers: { ...workers, reused: this.#reusedWorkers },
      timers,
      listeners: { peak: listenerPeak, bound: settings.listenerBound },
      manager,
      pluginsAtEnd: this.#pluginsAtEnd,
      checks,
      passed: checks.every((c) => c.passed),
    };
  }
}

/** How often an action is drawn: its weight, or {@linkcode RESTART_WEIGHT} for a restart. */
function weight(action: Action | null): number {
  return action === null ? RESTART_WEIGHT : action.weight ?? 1;
}

/**
 * Resolves in a later task. Inline calls settle as microtasks, so callers
 * that never wait for a task would starve timers (deadlines of async calls,
 * the RSS sampler) until the end; a real host's event loop turns.
 */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function check(name: string, passed: boolean, detail: string): SoakCheck {
  return { name, passed, detail };
}

function mb(value: number): string {
  return `${value.toFixed(1)} MB`;
}

/** Resolves true when `promise` settles before `deadline` (`performance.now()`), else false. */
async function settle(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function rssSummary(
  samples: readonly RssSample[],
  durationMs: number,
  boundMb: number,
): SoakReport["rss"] {
  const half = durationMs / 2;
  const first = samples.filter((s) => s.atMs < half).map((s) => s.bytes / MB);
  const second = samples.filter((s) => s.atMs >= half).map((s) => s.bytes / MB);
  const firstHalfMedian = median(first);
  const secondHalfMedian = median(second);
  return {
    start: samples[0]!.bytes / MB,
    end: samples.at(-1)!.bytes / MB,
    peak: Math.max(...samples.map((s) => s.bytes / MB)),
    firstHalfMedian,
    secondHalfMedian,
    growth: secondHalfMedian - firstHalfMedian,
    bound: boundMb,
    samples: samples.length,
  };
}

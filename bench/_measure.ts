/**
 * Side-by-side measurement: variants run interleaved, round by round (in an
 * order rotated each round), and are
 * reported as medians over the rounds (these machines are shared and noisy,
 * and cross-thread wake-ups come in slow and fast phases).
 *
 * @module
 */

/** One measured figure, in nanoseconds per operation over the rounds. */
export interface Figure {
  name: string;
  medianNs: number;
  minNs: number;
  maxNs: number;
}

/** A variant: runs `iterations` operations and returns nothing. */
export type Variant = (iterations: number) => Promise<void> | void;

/**
 * Variants by figure name, each with the operations it runs per round, and
 * optionally operations it runs first, untimed (`warmup`): for figures meant
 * as a steady state, e.g. a worker channel's round trip, whose first calls
 * after another variant (a crowd, workers spawned) still pay for that one.
 */
export type Variants = Record<string, { run: Variant; iterations: number; warmup?: number }>;

/**
 * Variants measured in one condition: `enter` sets the condition up before
 * them, every round, and what it returns is disposed of after them (e.g.
 * busy cores started and stopped around the phase).
 */
export interface Phase {
  /** Sets the condition up; default: nothing to set up. */
  enter?: () => Promise<AsyncDisposable | void>;
  variants: Variants;
}

/** Options of {@linkcode interleave} and {@linkcode interleavePhases}. */
export interface InterleaveOptions {
  /** Rounds run first and not counted (JIT, caches, lazy buffers). @default {1} */
  warmupRounds?: number;
  /** Called after each counted round with its number (from 1), e.g. to show progress. */
  onRound?: (round: number) => void;
  /**
   * Collect the garbage and let V8's background sweeping finish before each
   * variant (needs `--v8-flags=--expose-gc`, which `deno task bench` passes):
   * for groups where one variant leaves much garbage (creating plugins) and
   * the others run for a few milliseconds. Off for the worker channel, whose
   * wake-up policy would be reset by the pause. @default {false}
   */
  settle?: boolean;
}

/** Runs every variant once per round, in turn, and summarizes ns/op. */
export function interleave(
  variants: Variants,
  rounds: number,
  options?: InterleaveOptions,
): Promise<Figure[]> {
  return interleavePhases([{ variants }], rounds, options);
}

/**
 * Runs every phase once per round, in turn, and in each phase every variant
 * once, in turn; summarizes ns/op of each variant over the counted rounds.
 */
export async function interleavePhases(
  phases: readonly Phase[],
  rounds: number,
  options: InterleaveOptions = {},
): Promise<Figure[]> {
  const { warmupRounds = 1, onRound, settle: settleFirst = false } = options;
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `Cannot measure as 'rounds' must be a positive integer: current value is ${rounds}`,
    );
  }
  const samples: Record<string, number[]> = {};
  for (let round = -warmupRounds; round < rounds; round++) {
    for (const phase of phases) {
      const condition = await phase.enter?.();
      try {
        for (const [name, { run, iterations, warmup = 0 }] of rotated(phase.variants, round)) {
          if (settleFirst) await settle();
          if (warmup > 0) await run(warmup);
          const start = performance.now();
          await run(iterations);
          const ns = ((performance.now() - start) * 1e6) / iterations;
          if (round >= 0) (samples[name] ??= []).push(ns);
        }
      } finally {
        await condition?.[Symbol.asyncDispose]();
      }
    }
    if (round >= 0) onRound?.(round + 1);
  }
  return Object.entries(samples).map(([name, values]) => summarize(name, values));
}

/**
 * V8's full collection when the bench runs with `--v8-flags=--expose-gc`
 * (`deno task bench` does): run before each variant, so that the garbage a
 * variant leaves (e.g. 200 plugins created and stopped) is collected on its
 * own time, not during the next variant's few milliseconds.
 */
const collectGarbage = (globalThis as { gc?: () => void }).gc;

/**
 * Collects the garbage (when it can), then waits a few milliseconds for V8's
 * background sweeping to finish, so that it neither runs on the other core
 * nor on the main thread during the next variant.
 */
async function settle(): Promise<void> {
  if (collectGarbage === undefined) return;
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

/** How long {@linkcode settle} waits after a collection. */
const SETTLE_MS = 15;

/**
 * The variants in the order of round `round`: rotated by one each round, so
 * no variant always runs first, or always right after the same other one
 * (e.g. after one that starts workers, whose threads still run for a while).
 */
function rotated(variants: Variants, round: number): [string, Variants[string]][] {
  const entries = Object.entries(variants);
  const shift = ((round % entries.length) + entries.length) % entries.length;
  return [...entries.slice(shift), ...entries.slice(0, shift)];
}

/** Median, min and max of samples. */
export function summarize(name: string, samples: number[]): Figure {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    name,
    medianNs: sorted[Math.floor(sorted.length / 2)]!,
    minNs: sorted[0]!,
    maxNs: sorted[sorted.length - 1]!,
  };
}

/** The median of a named figure. */
export function median(figures: readonly Figure[], name: string): number {
  const figure = figures.find((f) => f.name === name);
  if (figure === undefined) throw new RangeError(`No figure named ${name}`);
  return figure.medianNs;
}

/**
 * CPU time of the whole process (every thread), in µs: `Deno.cpuUsage()`
 * where the runtime has it, else `/proc/self/stat` (in clock ticks of 10 ms).
 */
export function processCpuUs(): number {
  const { cpuUsage } = Deno as { cpuUsage?: () => { user: number; system: number } };
  if (cpuUsage !== undefined) {
    const { user, system } = cpuUsage();
    return user + system;
  }
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** The median of raw samples (the upper one of an even count, as {@linkcode summarize}). */
export function medianOf(values: readonly number[]): number {
  return values.toSorted((a, b) => a - b)[values.length >> 1]!;
}

/**
 * Side-by-side measurement: variants run interleaved, round by round, and are
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

/** Runs every variant once per round, in turn, and summarizes ns/op. */
export async function interleave(
  variants: Record<string, { run: Variant; iterations: number }>,
  rounds: number,
): Promise<Figure[]> {
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, { run, iterations }] of Object.entries(variants)) {
      const start = performance.now();
      await run(iterations);
      (samples[name] ??= []).push(((performance.now() - start) * 1e6) / iterations);
    }
  }
  return Object.entries(samples).map(([name, values]) => summarize(name, values));
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

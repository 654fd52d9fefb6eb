/**
 * The long fuzzing run behind `deno task fuzz`: the properties the CI tests
 * check (`tests/instrument/fuzz_test.ts`, `tests/fuzz/api_*_test.ts`) over
 * many more cases, with progress and a tally of outcomes.
 *
 *     deno run --unstable-worker-options --allow-read --allow-env tests/fuzz/fuzz.ts [--cases N] [--seed S]
 *
 * `N` (default 100 000) instrumenter cases, then N / 4 API cases inline and
 * N / 20 with worker isolation; the seed defaults to the clock.
 * `WASMPLUG_FUZZ_CASES` and `WASMPLUG_FUZZ_SEED` work too. A failure names
 * the seed and the case; the same command with `--seed` replays it.
 *
 * @module
 */

import { fuzzInstrumenter } from "../instrument/_fuzz.ts";
import { fuzzApi } from "./_api_fuzz.ts";
import { fuzzSettingsFromArgs } from "./_settings.ts";

// deno-lint-ignore no-console
const log = console.log;

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

/** Prints a tally's lines indented, one per stage. */
function printTally(text: string): void {
  for (const line of text.split("\n")) log(`    ${line}`);
}

async function main(): Promise<number> {
  const { cases, seed } = fuzzSettingsFromArgs(Deno.args, {
    cases: 100_000,
    seed: Date.now() % 0x7fffffff,
  });
  const inlineCases = Math.ceil(cases / 4);
  const workerCases = Math.ceil(cases / 20);
  log(
    `Fuzzing with seed ${seed}: ${cases} instrumenter cases, ${inlineCases} API cases inline, ${workerCases} in workers`,
  );
  const started = performance.now();
  try {
    let phase = performance.now();
    const tally = fuzzInstrumenter({ cases, seed }, (done, t) => {
      if (done % Math.max(1000, Math.round(cases / 10 / 1000) * 1000) === 0) {
        log(`  instrumenter ${done}/${cases} (${seconds(phase)}): ${JSON.stringify(t)}`);
      }
    });
    log(
      `instrumenter: ${cases} cases in ${
        seconds(phase)
      }: ${tally.rewritten} rewritten, ${tally.malformed} malformed, ${tally.invalid} invalid, ${tally.compared} generated programs compared`,
    );
    for (const [isolation, count] of [["inline", inlineCases], ["worker", workerCases]] as const) {
      phase = performance.now();
      const step = Math.max(100, Math.round(count / 10 / 100) * 100);
      const outcomes = await fuzzApi({ cases: count, seed }, {
        isolation,
        onProgress: (done) => {
          if (done % step === 0) log(`  API ${isolation} ${done}/${count} (${seconds(phase)})`);
        },
      });
      log(`API ${isolation}: ${count} cases in ${seconds(phase)}, outcomes by stage:`);
      printTally(outcomes.toString());
    }
  } catch (error) {
    log(
      `FAILED after ${seconds(started)}: ${error instanceof Error ? error.message : String(error)}`,
    );
    if (error instanceof Error && error.cause !== undefined) log(error.cause);
    log(`Replay with: deno task fuzz --cases ${cases} --seed ${seed}`);
    return 1;
  }
  log(`No property violated in ${seconds(started)}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());

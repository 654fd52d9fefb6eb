/**
 * The long fuzzing run behind `deno task fuzz`: many more cases of the
 * properties `fuzz_test.ts` checks in CI, with a progress report.
 *
 * Run with `deno run --allow-read --allow-env tests/instrument/fuzz.ts
 * [--cases N] [--seed S]` (defaults: 100 000 instrumenter cases, a third as
 * many runtime cases, seed from the clock). `WASMPLUG_FUZZ_CASES` and
 * `WASMPLUG_FUZZ_SEED` work too; a failure names the seed and case to replay.
 *
 * @module
 */

import { fuzzInstrumenter, fuzzRuntime, fuzzSettings } from "./_fuzz.ts";

function option(name: string): number | undefined {
  const at = Deno.args.indexOf(name);
  if (at < 0) return undefined;
  const value = Number(Deno.args[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${name} must be a non-negative integer: current value is ${Deno.args[at + 1]}`,
    );
  }
  return value;
}

async function main(): Promise<number> {
  const fromEnv = fuzzSettings({ cases: 100_000, seed: Date.now() % 0x7fffffff });
  const cases = option("--cases") ?? fromEnv.cases;
  const seed = option("--seed") ?? fromEnv.seed;
  // deno-lint-ignore no-console
  const log = console.log;
  log(
    `Fuzzing with seed ${seed}: ${cases} instrumenter cases, ${Math.ceil(cases / 3)} runtime cases`,
  );
  let started = performance.now();
  try {
    const tally = fuzzInstrumenter({ cases, seed }, (done, t) => {
      if (done % 10_000 === 0) log(`  instrumenter ${done}/${cases}: ${JSON.stringify(t)}`);
    });
    const seconds = (performance.now() - started) / 1000;
    log(
      `instrumenter: ${cases} cases in ${seconds.toFixed(1)} s (${
        (cases / seconds).toFixed(0)
      }/s): ${tally.rewritten} rewritten, ${tally.malformed} malformed, ${tally.invalid} invalid, ${tally.compared} generated programs compared`,
    );
    started = performance.now();
    const runtimeCases = Math.ceil(cases / 3);
    const runtime = await fuzzRuntime({ cases: runtimeCases, seed }, (done) => {
      if (done % 5_000 === 0) log(`  runtime ${done}/${runtimeCases}`);
    });
    const runtimeSeconds = (performance.now() - started) / 1000;
    log(
      `runtime: ${runtimeCases} cases in ${
        runtimeSeconds.toFixed(1)
      } s: ${runtime.rejected} rejected, ${runtime.notInstantiated} not instantiated, ${runtime.returned} calls returned, failed calls by kind ${
        JSON.stringify(runtime.failed)
      }`,
    );
  } catch (error) {
    log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.cause !== undefined) log(error.cause);
    return 1;
  }
  log("No property violated");
  return 0;
}

if (import.meta.main) Deno.exit(await main());

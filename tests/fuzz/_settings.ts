/**
 * How many fuzzing cases to run and from which seed: defaults of the CI
 * tests, overridden by `WASMPLUG_FUZZ_CASES` and `WASMPLUG_FUZZ_SEED` in the
 * environment, or by `--cases N --seed S` on the command line of the long run.
 *
 * @module
 */

/** How many cases, from which seed. */
export interface FuzzSettings {
  /** Number of cases. */
  readonly cases: number;
  /** Seed of the case generator. */
  readonly seed: number;
}

/** The environment variables {@linkcode fuzzSettings} reads, for tests' `env` permission. */
export const FUZZ_ENV: string[] = ["WASMPLUG_FUZZ_CASES", "WASMPLUG_FUZZ_SEED"];

function nonNegativeInteger(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer: current value is ${text}`);
  }
  return value;
}

/**
 * Reads `WASMPLUG_FUZZ_CASES` and `WASMPLUG_FUZZ_SEED` when the environment
 * may be read, else uses the defaults.
 *
 * @throws {RangeError} If a variable is set to something other than a non-negative integer.
 */
export function fuzzSettings(defaults: FuzzSettings): FuzzSettings {
  const read = (name: string): number | undefined => {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    const text = Deno.env.get(name);
    return text === undefined || text === "" ? undefined : nonNegativeInteger(name, text);
  };
  return {
    cases: read(FUZZ_ENV[0]!) ?? defaults.cases,
    seed: read(FUZZ_ENV[1]!) ?? defaults.seed,
  };
}

/**
 * Settings from `--cases N` and `--seed S` in `args`, falling back to
 * {@linkcode fuzzSettings} of `defaults`.
 *
 * @throws {RangeError} If an option's value is not a non-negative integer, or an argument is unknown.
 */
export function fuzzSettingsFromArgs(
  args: readonly string[],
  defaults: FuzzSettings,
): FuzzSettings {
  const fromEnv = fuzzSettings(defaults);
  const given: { cases?: number; seed?: number } = {};
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!;
    if (name !== "--cases" && name !== "--seed") {
      throw new RangeError(`Unknown argument ${name}: expected --cases N or --seed S`);
    }
    given[name === "--cases" ? "cases" : "seed"] = nonNegativeInteger(name, args[i + 1] ?? "");
  }
  return { cases: given.cases ?? fromEnv.cases, seed: given.seed ?? fromEnv.seed };
}

/**
 * The public API on untrusted input, in each isolation: mutated modules,
 * hostile arguments, options and configs (see `_api_fuzz.ts` for the cases).
 * Worker isolation runs fewer cases, since each plugin created spawns a
 * worker: there every mutated binary validates, and most cases hammer a few
 * long-lived worker plugins (parked and respawned between cases) with
 * hostile calls, several at once.
 *
 * Allowed outcomes (`_property.ts`): a result; any `WasmError`; the reason
 * of an `AbortSignal` the call was given (as `CallOptions.signal` says); and
 * a `TypeError` or `RangeError` only where the case passed a JS-level
 * invalid argument (a config, options object, export name, memory offset,
 * input or handle outside its TypeScript type or range), since `errors.ts`
 * and the README say bad arguments are these. Whatever the guest or its
 * module controls, and argument lists that fit `unknown[]` but not the wasm
 * signature, must end in a `WasmError`. Also a violation: another
 * exception, a promise API throwing synchronously, an unhandled rejection,
 * a case not settled within 10 s, a long-lived plugin that stops answering
 * its normal call, or a runtime that does not close with no plugin left.
 *
 * `WASMPLUG_FUZZ_CASES` / `WASMPLUG_FUZZ_SEED` change the inline case count
 * (a third of it in workers) and the seed; `deno task fuzz` runs far more.
 */
import assert from "node:assert/strict";
import type { Isolation } from "../../mod.ts";
import { allowingWorkers, RUN_SLOW, SLOW } from "../_helpers.ts";
import { fuzzApi } from "./_api_fuzz.ts";
import { CORPUS_DIRECTORIES } from "./_corpus.ts";
import { FUZZ_ENV, fuzzSettings } from "./_settings.ts";

const DEFAULT_CASES = 3000;
const settings = fuzzSettings({ cases: DEFAULT_CASES, seed: 0x5eed });

/**
 * Outcomes each default run must reach, so that a generator that stops
 * producing them is noticed: these in both isolations…
 */
const EXPECTED: Record<string, string[]> = {
  "compile binary": ["returned"],
  "compile text": ["returned", "compilation"],
  create: ["returned", "import_not_found", "TypeError"],
  config: ["returned", "TypeError"],
  call: [
    "returned",
    "type_mismatch",
    "invalid_function",
    "trap",
    "fuel_exhausted",
    "call_depth_exceeded",
    "capability_denied",
    "plugin_state",
    "aborted",
    "TypeError",
    "RangeError",
  ],
  bytes: ["returned", "type_mismatch"],
  memory: ["returned", "memory_out_of_bounds", "TypeError"],
  manager: ["returned", "plugin_not_found"],
  stop: ["returned"],
};

/** …and these too inline, where three times as many cases run. */
const EXPECTED_INLINE: Record<string, string[]> = {
  "compile binary": ["compilation", "import_not_found"],
  config: ["RangeError"],
  call: ["memory_out_of_bounds"],
  bytes: ["invalid_function"],
  json: ["returned", "type_mismatch"],
  host: ["returned", "capability_denied", "memory_out_of_bounds"],
  runtime: ["returned", "TypeError", "RangeError"],
};

function expected(isolation: Isolation): Record<string, string[]> {
  if (isolation === "worker") return EXPECTED;
  const all = { ...EXPECTED };
  for (const [stage, labels] of Object.entries(EXPECTED_INLINE)) {
    all[stage] = [...all[stage] ?? [], ...labels];
  }
  return all;
}

const permissions: Deno.PermissionOptionsObject = {
  read: [
    ...CORPUS_DIRECTORIES,
    new URL("../../../shared/spec-testsuite/", import.meta.url).pathname,
  ],
  env: FUZZ_ENV,
};

for (const isolation of ["inline", "worker"] as const) {
  const cases = isolation === "inline" ? settings.cases : Math.round(settings.cases / 3);
  Deno.test(
    `${SLOW}The API on mutated modules and hostile arguments (${isolation}): every outcome is a result or a documented error, and the host lives on`,
    {
      permissions: isolation === "worker" ? allowingWorkers(permissions) : permissions,
      ignore: !RUN_SLOW,
    },
    async () => {
      let workers = 0;
      const tally = await fuzzApi({ cases, seed: settings.seed }, {
        isolation,
        onWorkerEvent: (event) => {
          if (event === "spawned") workers++;
        },
      });
      if (settings.cases < DEFAULT_CASES) return;
      assert.deepEqual(tally.missing(expected(isolation)), [], tally.toString());
      if (isolation === "worker") {
        assert.ok(workers > 100, `only ${workers} workers were spawned`);
      }
    },
  );
}

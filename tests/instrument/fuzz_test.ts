import assert from "node:assert/strict";
import { FUZZ_ENV, fuzzSettings } from "../fuzz/_settings.ts";
import { fuzzInstrumenter } from "./_fuzz.ts";

// Case counts and seed can be raised with WASMPLUG_FUZZ_CASES and
// WASMPLUG_FUZZ_SEED (with --allow-env); `deno task fuzz` runs far more. The
// public API is fuzzed in tests/fuzz/.
const settings = fuzzSettings({ cases: 3000, seed: 0x5eed });

Deno.test(
  "instrument() on mutated and generated modules: a valid module or a format/compile error",
  {
    // The spec testsuite's modules join the corpus when they are there.
    permissions: {
      read: [new URL("../../../shared/spec-testsuite/", import.meta.url)],
      env: FUZZ_ENV,
    },
  },
  () => {
    const tally = fuzzInstrumenter(settings);
    // The mutations must exercise every outcome.
    if (settings.cases >= 3000) {
      assert.ok(
        tally.rewritten > 100 && tally.malformed > 100 && tally.invalid > 50 &&
          tally.compared > 100,
        JSON.stringify(tally),
      );
    }
  },
);

import assert from "node:assert/strict";
import { fuzzInstrumenter, fuzzRuntime, fuzzSettings } from "./_fuzz.ts";

// Case counts and seed can be raised with WASMPLUG_FUZZ_CASES and
// WASMPLUG_FUZZ_SEED (with --allow-env); `deno task fuzz` runs far more.
const settings = fuzzSettings({ cases: 3000, seed: 0x5eed });

Deno.test("instrument() on mutated and generated modules: a valid module or a format/compile error", () => {
  const tally = fuzzInstrumenter(settings);
  // The mutations must exercise every outcome.
  if (settings.cases >= 3000) {
    assert.ok(
      tally.rewritten > 100 && tally.malformed > 100 && tally.invalid > 50 && tally.compared > 100,
      JSON.stringify(tally),
    );
  }
});

Deno.test("the runtime on mutated text and binaries: a result or a WasmError", async () => {
  const cases = Math.max(1, Math.round(settings.cases / 3));
  const tally = await fuzzRuntime({ cases, seed: settings.seed });
  if (cases >= 1000) {
    const failures = Object.values(tally.failed).reduce((a, b) => a + b, 0);
    assert.ok(
      tally.rejected > 20 && tally.returned > 20 && failures > 20,
      JSON.stringify(tally),
    );
  }
});

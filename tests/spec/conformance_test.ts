import assert from "node:assert/strict";
import type { InstrumentOptions } from "../../src/instrument/instrument.ts";
import { compareFile, specAvailable, specNames, totals } from "./conformance.ts";
import { RUN_SLOW, SLOW } from "../_helpers.ts";

/** Commands of the pinned spec testsuite that V8 runs and passes, plain and instrumented alike. */
const SPEC_COMMANDS_PASSED = 63_015;

async function mismatches(options?: InstrumentOptions): Promise<{
  mismatches: string[];
  plain: ReturnType<typeof totals>;
  instrumented: ReturnType<typeof totals>;
}> {
  const comparisons = [];
  for (const name of specNames()) comparisons.push(await compareFile(name, options));
  return {
    mismatches: comparisons.flatMap((c) =>
      c.mismatches.map(({ plain, instrumented }) =>
        `${c.name}:${plain.line} ${plain.type} plain ${plain.status}, instrumented ${instrumented.status} ${
          instrumented.detail ?? ""
        }`
      )
    ),
    plain: totals(comparisons.map((c) => c.plain)),
    instrumented: totals(comparisons.map((c) => c.instrumented)),
  };
}

Deno.test({
  name: `${SLOW}instrumented modules pass the spec testsuite exactly like the originals`,
  ignore: !RUN_SLOW || !specAvailable(),
  async fn(t): Promise<void> {
    await t.step("fuel, call depth and a clock deadline", async () => {
      const { mismatches: differ, plain, instrumented } = await mismatches();
      assert.deepEqual(differ, []);
      assert.deepEqual(instrumented, plain);
      // Every runnable command passes; what is skipped is text-format modules and
      // limits beyond V8's implementation.
      assert.equal(plain.failed, 0);
      // The pinned testsuite (../shared/spec-testsuite) has 63 015 runnable commands.
      assert.equal(plain.passed, SPEC_COMMANDS_PASSED);
    });

    // The other way the passes combine: deadline checks placed in code.
    const others: [string, InstrumentOptions][] = [
      ["call depth and a clock deadline without fuel", {
        callDepth: { max: 1000 },
        deadline: "clock",
      }],
    ];
    for (const [name, options] of others) {
      await t.step(name, async () => {
        const { mismatches: differ, plain, instrumented } = await mismatches(options);
        assert.deepEqual(differ, []);
        assert.deepEqual(instrumented, plain);
      });
    }
  },
});

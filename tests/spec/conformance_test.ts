import assert from "node:assert/strict";
import { compareFile, specAvailable, specNames, totals } from "./conformance.ts";

Deno.test({
  name: "instrumented modules pass the spec testsuite exactly like the originals",
  ignore: !specAvailable(),
  async fn(): Promise<void> {
    const comparisons = [];
    for (const name of specNames()) comparisons.push(await compareFile(name));
    const mismatches = comparisons.flatMap((c) =>
      c.mismatches.map(({ plain, instrumented }) =>
        `${c.name}:${plain.line} ${plain.type} plain ${plain.status}, instrumented ${instrumented.status} ${
          instrumented.detail ?? ""
        }`
      )
    );
    assert.deepEqual(mismatches, []);
    const plain = totals(comparisons.map((c) => c.plain));
    const instrumented = totals(comparisons.map((c) => c.instrumented));
    assert.deepEqual(instrumented, plain);
    // Every runnable command passes; what is skipped is text-format modules and
    // limits beyond V8's implementation.
    assert.equal(plain.failed, 0);
    assert.ok(plain.passed > 60_000, `only ${plain.passed} commands passed`);
  },
});

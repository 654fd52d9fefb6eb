import assert from "node:assert/strict";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { RUN_SLOW, SLOW } from "../_helpers.ts";

/** Built by `tests/fixtures/large/generate.ts` with clang from generated C. */
const FIXTURE = new URL("../fixtures/large/large.wasm", import.meta.url);

function fixture(): Uint8Array<ArrayBuffer> | null {
  try {
    return Deno.readFileSync(FIXTURE);
  } catch {
    return null;
  }
}

const bytes = fixture();

type Entry = (a: number, b: number) => number;

/**
 * Calls the entry points and every hundredth function with a few arguments;
 * returns the results and a digest of memory.
 */
function exercise(
  instance: WebAssembly.Instance,
  call: (f: () => number) => number = (f) => f(),
): number[] {
  const results: number[] = [];
  const entries = Object.keys(instance.exports)
    .filter((name) => /^entry\d+$/.test(name) || /^f\d*00$/.test(name))
    .sort();
  for (const name of entries) {
    const entry = instance.exports[name] as Entry;
    for (const [a, b] of [[1, 3], [77, 5], [0xdeadbeef, 2]] as const) {
      results.push(call(() => entry(a, b)));
    }
  }
  const memory = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
  let digest = 0;
  for (let i = 0; i < memory.length; i += 4) digest = Math.imul(digest ^ memory[i]!, 16777619);
  results.push(digest);
  return results;
}

Deno.test({
  name: `${SLOW}instrument() handles a 10 MB+ module built by clang, which then runs the same`,
  ignore: !RUN_SLOW || bytes === null,
  async fn(t): Promise<void> {
    const source = bytes!;
    assert.ok(source.length > 10_000_000, `the fixture has ${source.length} bytes`);
    assert.ok(parseModule(source).code.length > 15_000);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(source));
    const expected = exercise(plain);

    const consumed = new Map<string, bigint>();
    const variants: [string, InstrumentOptions][] = [
      ["fuel", { fuel: true }],
      ["all passes, clock deadline", { fuel: true, callDepth: true, deadline: "clock" }],
      ["depth and clock deadline", { callDepth: true, deadline: "clock" }],
    ];
    for (const [name, options] of variants) {
      await t.step(name, () => {
        const result = instrument(source, options);
        assert.ok(WebAssembly.validate(result.bytes));
        // Custom sections (the name section among them) are kept; branch hints are added.
        assert.deepEqual(
          parseModule(result.bytes).customSections.map((s) => s.name)
            .filter((name) => name !== "metadata.code.branch_hint"),
          parseModule(source).customSections.map((s) => s.name),
        );
        const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
        const limits = new InstanceLimits(instance, result);
        let used = 0n;
        const budget = 1n << 50n;
        const actual = exercise(instance, (f) => {
          limits.prepare({ fuel: budget, maxCallDepth: 1000 });
          const value = f();
          assert.equal(limits.trapReason, TrapReason.None);
          used += budget - limits.fuelRemaining;
          return value;
        });
        assert.deepEqual(actual, expected);
        if (options.fuel) consumed.set(name, used);
      });
    }

    await t.step("fuel consumption does not depend on the other passes", () => {
      const values = [...consumed.values()];
      assert.ok(values[0]! > 1_000_000n, `only ${values[0]} units`);
      assert.equal(consumed.size, 2); // "fuel" and "all passes"
      assert.ok(
        values.every((v) => v === values[0]),
        JSON.stringify([...consumed], (_, v) => typeof v === "bigint" ? v.toString() : v),
      );
    });
  },
});

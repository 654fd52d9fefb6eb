import assert from "node:assert/strict";
import {
  type DeadlineMode,
  InstanceLimits,
  instrument,
  type InstrumentResult,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { FUEL_LEFT_EXPORT, PREPARE_EXPORT } from "../../src/instrument/_prepare.ts";
import { wat } from "./_wat.ts";
import { FIB_FUNC } from "../fixtures/fib.ts";

const FIB = wat(`(module ${FIB_FUNC})`);

function load(
  result: InstrumentResult,
  options: { helpers?: boolean } = {},
): { limits: InstanceLimits; fib: (n: number) => number; instance: WebAssembly.Instance } {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  let bound = instance;
  if (options.helpers === false) {
    const exports: Record<string, unknown> = { ...instance.exports };
    delete exports[PREPARE_EXPORT];
    delete exports[FUEL_LEFT_EXPORT];
    bound = { exports } as unknown as WebAssembly.Instance;
  }
  const fib = instance.exports.fib as (n: number) => number;
  return { limits: new InstanceLimits(bound, result), fib, instance };
}

const CASES: { name: string; deadline: DeadlineMode | false }[] = [
  { name: "fuel alone", deadline: false },
  { name: "sliced fuel (clock)", deadline: "clock" },
];

Deno.test("instrument() appends the host's prepare and fuel-left functions", async (t) => {
  for (const { name, deadline } of CASES) {
    await t.step(`${name}: the helpers agree with the globals`, () => {
      const result = instrument(FIB, { fuel: true, callDepth: true, deadline });
      const fast = load(result);
      const slow = load(result, { helpers: false });
      assert.equal(typeof fast.instance.exports[PREPARE_EXPORT], "function");
      assert.equal(typeof fast.instance.exports[FUEL_LEFT_EXPORT], "function");
      for (const fuel of [1_000_000, 1_000_000n, 70_000, 2 ** 53, 2n ** 53n]) {
        fast.limits.prepare({ fuel, maxCallDepth: 100 });
        slow.limits.prepare({ fuel, maxCallDepth: 100 });
        assert.equal(fast.fib(15), slow.fib(15));
        assert.equal(fast.limits.fuelRemaining, slow.limits.fuelRemaining);
        assert.equal(fast.limits.trapReason, TrapReason.None);
      }
    });

    await t.step(`${name}: exhaustion leaves the same negative remainder`, () => {
      const result = instrument(FIB, { fuel: true, callDepth: true, deadline });
      const fast = load(result);
      const slow = load(result, { helpers: false });
      for (const { limits, fib } of [fast, slow]) {
        limits.prepare({ fuel: 1000, maxCallDepth: 100 });
        assert.throws(() => fib(20), WebAssembly.RuntimeError);
        assert.equal(limits.trapReason, TrapReason.Fuel);
      }
      assert.ok(fast.limits.fuelRemaining < 0n);
      assert.equal(fast.limits.fuelRemaining, slow.limits.fuelRemaining);
    });

    await t.step(`${name}: the depth limit and a cleared trap reason are set`, () => {
      const { limits, fib } = load(instrument(FIB, { fuel: true, callDepth: true, deadline }));
      limits.prepare({ fuel: 1_000_000, maxCallDepth: 5 });
      assert.throws(() => fib(20), WebAssembly.RuntimeError);
      assert.equal(limits.trapReason, TrapReason.CallDepth);
      limits.prepare({ fuel: 1_000_000, maxCallDepth: 50 });
      assert.equal(limits.trapReason, TrapReason.None);
      assert.equal(fib(10), 55);
    });
  }

  await t.step("budgets beyond 2^53 stay exact through the globals", () => {
    const { limits, fib } = load(instrument(FIB, { fuel: true, deadline: "clock" }));
    const budget = 2n ** 60n + 3n;
    limits.prepare({ fuel: budget });
    fib(10);
    const used = budget - limits.fuelRemaining;
    limits.prepare({ fuel: 1_000_000 });
    fib(10);
    assert.equal(used, 1_000_000n - limits.fuelRemaining);
  });

  await t.step("prepare() clears an interrupt", () => {
    const { limits, fib } = load(instrument(FIB, { callDepth: true, deadline: "clock" }));
    limits.interrupt();
    limits.prepare({ maxCallDepth: 100 });
    assert.equal(fib(10), 55);
  });
});

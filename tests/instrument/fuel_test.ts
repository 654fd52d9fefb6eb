import assert from "node:assert/strict";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { countOps, load } from "./_host.ts";
import { random, randomProgram } from "./_random_program.ts";
import { wat } from "./_wat.ts";
import { FIB_FUNC } from "../fixtures/fib.ts";
import { COUNT_UP_FUNCTION } from "../fixtures/wat.ts";

const PROGRAM = `(module
  (func $nop)
  (func (export "empty"))
  (func (export "call_nop") call $nop)
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      local.get $acc local.get $n i32.add local.set $acc
      local.get $n i32.const 1 i32.sub local.tee $n
      br_if $l)
    local.get $acc)
  (func (export "choose") (param i32) (result i32)
    local.get 0
    if (result i32) i32.const 1 i32.const 2 i32.add else i32.const 2 end)
  (func (export "early") (param i32) (result i32)
    (block $out
      local.get 0 br_if $out
      i32.const 7 return)
    i32.const 8)
  (func (export "after_if") (param i32) (result i32)
    local.get 0 if nop end
    local.get 0 i32.const 1 i32.add)
  ${FIB_FUNC}
  (func (export "spin") (loop br 0))
  ${COUNT_UP_FUNCTION})`;

const BUDGET = 1_000_000n;
const I64_SUB = 0x7d;

Deno.test("fuel pass charges one unit per executed instruction", async (t) => {
  const plugin = load(PROGRAM, { fuel: true });
  const consumed = (name: string, args: unknown[] = []): bigint => {
    plugin.call(name, args, { fuel: BUDGET });
    assert.equal(plugin.limits.trapReason, TrapReason.None);
    return BUDGET - plugin.limits.fuelRemaining;
  };

  await t.step("block, loop, else and end are free", () => {
    assert.equal(consumed("empty"), 0n);
    assert.equal(consumed("call_nop"), 1n);
  });

  await t.step("a loop pays for its body on every iteration", () => {
    // 9 per iteration, then local.get.
    assert.equal(consumed("sum", [1]), 10n);
    assert.equal(consumed("sum", [10]), 91n);
    assert.equal(consumed("sum", [1000]), 9001n);
    // A loop that tests at the top: 4 for the test, 5 for the body, and the last test.
    assert.equal(consumed("count", [0]), 5n);
    assert.equal(consumed("count", [10]), 95n);
  });

  await t.step("each arm of an if costs what it contains", () => {
    assert.equal(consumed("choose", [1]), 5n);
    assert.equal(consumed("choose", [0]), 3n);
    assert.equal(consumed("after_if", [1]), 6n);
    assert.equal(consumed("after_if", [0]), 5n);
  });

  await t.step("code after a return is not charged", () => {
    // local.get, br_if, i32.const, return
    assert.equal(consumed("early", [0]), 4n);
    // local.get, br_if, i32.const
    assert.equal(consumed("early", [1]), 3n);
  });
});

Deno.test("fuel pass takes few charges", async (t) => {
  const { bytes } = instrument(wat(PROGRAM), { fuel: true });
  // Defined functions: nop, empty, call_nop, sum, choose, early, after_if, fib, spin, count.
  const charges = (index: number): number => countOps(bytes, index, I64_SUB);

  await t.step("a function that does nothing charges nothing", () => {
    assert.equal(charges(0), 0);
    assert.equal(charges(1), 0);
  });

  await t.step("the arm an if/else's arms share is charged before the if", () => {
    // Entry (local.get, if, and the else arm's i32.const), then the then arm's excess.
    assert.equal(charges(4), 2);
    // fib: the then arm (local.get) is paid before the if.
    assert.equal(charges(7), 2);
  });

  await t.step("code after a construct nothing branches out of joins the charge before it", () => {
    assert.equal(charges(6), 2); // entry and the then arm
    assert.equal(charges(3), 2); // entry (with local.get after the loop) and the loop header
  });

  await t.step("a branch out of a construct keeps its continuation separate", () => {
    assert.equal(charges(5), 3); // entry, after br_if, after the block
  });

  await t.step("a loop's header is paid for by the way in and the br back to it", () => {
    // Entry (with the first test and local.get after the loop), then the body with the
    // next test: once an iteration. A loop entered by br_if (sum) charges at its header.
    assert.equal(charges(9), 2);
  });
});

Deno.test("fuel pass is exact on random programs, however fuel is sliced", async (t) => {
  const modes: [string, InstrumentOptions][] = [
    ["fuel", { fuel: true }],
    ["fuel, depth, clock deadline", { fuel: true, callDepth: true, deadline: "clock" }],
  ];
  const next = random(0xf0e1);
  const programs = Array.from({ length: 60 }, () => randomProgram(next, 4));
  for (const [name, options] of modes) {
    await t.step(name, () => {
      for (const [i, program] of programs.entries()) {
        const counting = new WebAssembly.Instance(new WebAssembly.Module(wat(program.counting)));
        const result = instrument(wat(program.plain), options);
        const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
        const limits = new InstanceLimits(instance, result);
        const interval = instance.exports.__wasmplug_interval as WebAssembly.Global | undefined;
        const count = counting.exports.count as WebAssembly.Global;
        for (const arg of [0, 3]) {
          count.value = 0n;
          const expected = (counting.exports.f0 as (a: number, b: number) => number)(arg, 2);
          const executed = count.value as bigint;
          // Tiny slices make the refill path run on almost every charge.
          if (interval !== undefined) interval.value = BigInt(1 + (i % 5));
          for (const budget of [executed + 100n, executed, executed - 1n]) {
            if (budget < 0n) continue;
            limits.prepare({ fuel: budget, maxCallDepth: 1000 });
            const call = (): unknown =>
              (instance.exports.f0 as (a: number, b: number) => number)(arg, 2);
            const where = `program ${i}, f0(${arg}, 2), budget ${budget} of ${executed}`;
            if (budget < executed) {
              assert.throws(call, WebAssembly.RuntimeError, where);
              assert.equal(limits.trapReason, TrapReason.Fuel, where);
              continue;
            }
            assert.equal(call(), expected, where);
            assert.equal(budget - limits.fuelRemaining, executed, where);
          }
        }
      }
    });
  }
});

Deno.test("fuel pass is deterministic across calls and instances", () => {
  const runs: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    const plugin = load(PROGRAM, { fuel: true });
    for (let j = 0; j < 3; j++) {
      assert.equal(plugin.call("fib", [15], { fuel: BUDGET }), 610);
      runs.push(BUDGET - plugin.limits.fuelRemaining);
    }
  }
  assert.ok(runs[0]! > 0n);
  assert.deepEqual(runs, Array(6).fill(runs[0]));
});

Deno.test("fuel pass stops a call that runs out, distinguishably", async (t) => {
  const plugin = load(PROGRAM, { fuel: true });

  await t.step("an infinite loop traps with the fuel reason", () => {
    assert.throws(() => plugin.call("spin", [], { fuel: 10_000n }), WebAssembly.RuntimeError);
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    assert.ok(plugin.limits.fuelRemaining < 0n);
  });

  await t.step("a budget one unit short stops the call", () => {
    assert.throws(() => plugin.call("sum", [10], { fuel: 90n }), WebAssembly.RuntimeError);
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    assert.equal(plugin.call("sum", [10], { fuel: 91n }), 55);
    assert.equal(plugin.limits.fuelRemaining, 0n);
    // The header's charge, taken with the body before it, still only pays for code that runs.
    assert.throws(() => plugin.call("count", [10], { fuel: 94n }), WebAssembly.RuntimeError);
    assert.equal(plugin.call("count", [10], { fuel: 95n }), 10);
    assert.equal(plugin.limits.fuelRemaining, 0n);
  });

  await t.step("a guest trap leaves the reason unset", () => {
    const trapping = load(`(module (func (export "boom") unreachable))`, { fuel: true });
    assert.throws(() => trapping.call("boom", [], { fuel: BUDGET }), WebAssembly.RuntimeError);
    assert.equal(trapping.limits.trapReason, TrapReason.None);
  });

  await t.step("the budget starts at the initial value", () => {
    const fresh = load(PROGRAM, { fuel: { initial: 5n } });
    assert.equal(fresh.limits.fuelRemaining, 5n);
    const sliced = load(PROGRAM, { fuel: { initial: 5n }, deadline: "clock" });
    assert.equal(sliced.limits.fuelRemaining, 5n);
    const empty = load(PROGRAM, { fuel: true });
    assert.equal(empty.limits.fuelRemaining, 0n);
  });
});

Deno.test("fuel pass with a deadline checks it once per slice of fuel", async (t) => {
  const LOOP = `(module
    (import "host" "poke" (func $poke))
    (func (export "spin") (loop br 0))
    (func (export "poke_then_spin") call $poke (loop br 0))
    (func (export "count") (param $n i32) (result i32)
      (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
      local.get $n))`;

  await t.step("the code itself carries no deadline check", () => {
    // A check in code counts the clock countdown down with an i32.sub; "count" has one of its own.
    const sub = 0x6b;
    const { bytes } = instrument(wat(LOOP), { fuel: true, deadline: "clock" });
    assert.equal(countOps(bytes, 2, sub), 1);
    const withoutFuel = instrument(wat(LOOP), { deadline: "clock" }).bytes;
    assert.equal(countOps(withoutFuel, 2, sub), 2);
  });

  await t.step("a clock deadline stops an infinite loop", () => {
    const plugin = load(LOOP, { fuel: true, deadline: "clock" }, { host: { poke() {} } });
    const started = performance.now();
    assert.throws(
      () => plugin.call("spin", [], { fuel: 1n << 60n, deadline: performance.now() + 50 }),
      WebAssembly.RuntimeError,
    );
    const elapsed = performance.now() - started;
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
    assert.ok(elapsed >= 50 && elapsed < 2000, `stopped after ${elapsed} ms`);
    assert.ok(plugin.limits.fuelRemaining > 0n);
  });

  await t.step("past the deadline, fuel running out still reports fuel", () => {
    const plugin = load(LOOP, { fuel: true, deadline: "clock" }, { host: { poke() {} } });
    // More than one slice (2^16 units): the first refill sees the deadline.
    assert.throws(
      () => plugin.call("spin", [], { fuel: 100_000n, deadline: -Infinity }),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
    // Less than one slice: the first refill finds nothing left.
    assert.throws(
      () => plugin.call("spin", [], { fuel: 1000n, deadline: -Infinity }),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    assert.ok(plugin.limits.fuelRemaining < 0n);
  });

  await t.step("interrupt() from a host function stops the call at the next charge", () => {
    let self: ReturnType<typeof load> | undefined = undefined;
    const poke = (): void => self!.limits.interrupt();
    self = load(LOOP, { fuel: true, deadline: "clock" }, { host: { poke } });
    assert.throws(() => self.call("poke_then_spin", [], { fuel: 1n << 60n }));
    assert.equal(self.limits.trapReason, TrapReason.Deadline);
  });

  await t.step("the reserve counts towards the fuel remaining", () => {
    const plugin = load(LOOP, { fuel: true, deadline: "clock" }, { host: { poke() {} } });
    // 5 units per iteration, then local.get: far more than one slice.
    assert.equal(plugin.call("count", [1_000_000], { fuel: 10_000_000n }), 0);
    assert.equal(plugin.limits.fuelRemaining, 10_000_000n - 5_000_001n);
  });
});

Deno.test("fuel pass meters a deferred start function with the host's budget", () => {
  const plugin = load(
    `(module (global $g (export "g") (mut i32) (i32.const 0))
      (func $init (loop (global.set $g (i32.add (global.get $g) (i32.const 1)))
        (br_if 0 (i32.lt_u (global.get $g) (i32.const 100)))))
      (start $init))`,
    { fuel: true },
  );
  assert.equal(plugin.result.startFunction, "__wasmplug_start");
  assert.equal((plugin.instance.exports.g as WebAssembly.Global).value, 0);
  plugin.limits.prepare({ fuel: 50n });
  assert.throws(() => plugin.limits.runStart(), WebAssembly.RuntimeError);
  assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
  plugin.limits.prepare({ fuel: BUDGET });
  (plugin.instance.exports.g as WebAssembly.Global).value = 0;
  plugin.limits.runStart();
  assert.equal((plugin.instance.exports.g as WebAssembly.Global).value, 100);
});

Deno.test("fuel pass leaves exactly what was charged when the guest traps", async (t) => {
  // Each loop caches the fuel in a local; the trap comes after 8 units per
  // iteration and 3 more, the trapping instruction last of its charge.
  const TRAPS = `(module
    (memory 1)
    (func (export "divide") (param $n i32) (result i32) (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
      (i32.div_u (i32.const 1) (i32.const 0)))
    (func (export "load") (param $n i32) (result i32) (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
      (i32.load (i32.const 65536)))
    (func $callee (param i32) (result i32) (i32.rem_s (local.get 0) (i32.const 0)))
    (func (export "in_callee") (param $n i32) (result i32) (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
      (call $callee (i32.const 1))))`;
  const modes: [string, InstrumentOptions][] = [
    ["fuel", { fuel: true }],
    ["fuel and a clock deadline", { fuel: true, callDepth: true, deadline: "clock" }],
  ];
  for (const [name, options] of modes) {
    await t.step(name, () => {
      const plugin = load(TRAPS, options);
      for (const n of [1, 1000, 1_000_000]) {
        // in_callee: local.get, call in the caller, local.get, i32.const, i32.rem_s in the callee.
        for (const [fn, extra] of [["divide", 3n], ["load", 2n], ["in_callee", 5n]] as const) {
          assert.throws(() => plugin.call(fn, [n], { fuel: 1n << 40n }), WebAssembly.RuntimeError);
          assert.equal(plugin.limits.trapReason, TrapReason.None);
          assert.equal((1n << 40n) - plugin.limits.fuelRemaining, 8n * BigInt(n) + extra, fn);
        }
      }
    });
  }
});

Deno.test("prepareCall() and fuelLeft are prepare() and fuelRemaining in numbers", async (t) => {
  const plugin = load(PROGRAM, { fuel: true });
  const sum = plugin.instance.exports.sum as (n: number) => number;

  await t.step("a budget an f64 holds exactly: the same fuel, as a number", () => {
    plugin.limits.prepareCall(1000, 1000, Infinity, performance.now());
    assert.equal(sum(10), 55);
    assert.equal(plugin.limits.fuelLeft, 1000 - 91);
    assert.equal(plugin.limits.fuelRemaining, 909n);
  });

  await t.step("a budget too large for an f64 takes the BigInt path", () => {
    plugin.limits.prepareCall(2 ** 60, 1000, Infinity, performance.now());
    assert.equal(sum(10), 55);
    assert.equal(plugin.limits.fuelRemaining, 2n ** 60n - 91n);
    assert.equal(plugin.limits.fuelLeft, Number(2n ** 60n - 91n));
  });

  await t.step("an exhausted budget reads negative or zero, never more", () => {
    plugin.limits.prepareCall(50, 1000, Infinity, performance.now());
    assert.throws(() => sum(10), WebAssembly.RuntimeError);
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    assert.ok(plugin.limits.fuelLeft <= 0);
  });
});

import assert from "node:assert/strict";
import { TrapReason } from "../../src/instrument/instrument.ts";
import { load } from "./_host.ts";

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
  (func $fib (export "fib") (param i32) (result i32)
    local.get 0 i32.const 2 i32.lt_u
    if (result i32) local.get 0
    else
      local.get 0 i32.const 1 i32.sub call $fib
      local.get 0 i32.const 2 i32.sub call $fib
      i32.add
    end)
  (func (export "spin") (loop br 0)))`;

const BUDGET = 1_000_000n;

Deno.test("fuel pass charges one unit per instruction, per segment on entry", async (t) => {
  const plugin = load(PROGRAM, { fuel: true });
  const consumed = (name: string, args: unknown[] = []): bigint => {
    plugin.call(name, args, { fuel: BUDGET });
    assert.equal(plugin.limits.trapReason, TrapReason.None);
    return BUDGET - plugin.limits.fuelRemaining;
  };

  await t.step("an empty function costs its end", () => {
    assert.equal(consumed("empty"), 1n);
  });

  await t.step("a call costs the caller's and the callee's instructions", () => {
    assert.equal(consumed("call_nop"), 3n);
  });

  await t.step("a loop pays for its body on every iteration", () => {
    // loop (1) + 9 per iteration + end, local.get, end (3)
    assert.equal(consumed("sum", [1]), 13n);
    assert.equal(consumed("sum", [10]), 94n);
    assert.equal(consumed("sum", [1000]), 9004n);
  });

  await t.step("each arm of an if costs what it contains", () => {
    assert.equal(consumed("choose", [1]), 7n);
    assert.equal(consumed("choose", [0]), 5n);
  });

  await t.step("code after a return is not charged", () => {
    // block, local.get, br_if (3) + i32.const, return (2)
    assert.equal(consumed("early", [0]), 5n);
    // block, local.get, br_if (3) + i32.const, end (2): a block's end belongs
    // to its fall-through path, a branch lands after it.
    assert.equal(consumed("early", [1]), 5n);
  });
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
    assert.throws(() => plugin.call("sum", [10], { fuel: 93n }), WebAssembly.RuntimeError);
    assert.equal(plugin.limits.trapReason, TrapReason.Fuel);
    assert.equal(plugin.call("sum", [10], { fuel: 94n }), 55);
    assert.equal(plugin.limits.fuelRemaining, 0n);
  });

  await t.step("a guest trap leaves the reason unset", () => {
    const trapping = load(`(module (func (export "boom") unreachable))`, { fuel: true });
    assert.throws(() => trapping.call("boom", [], { fuel: BUDGET }), WebAssembly.RuntimeError);
    assert.equal(trapping.limits.trapReason, TrapReason.None);
  });

  await t.step("the fuel global starts at the initial value", () => {
    const fresh = load(PROGRAM, { fuel: { initial: 5n } });
    assert.equal(fresh.limits.fuelRemaining, 5n);
    const empty = load(PROGRAM, { fuel: true });
    assert.equal(empty.limits.fuelRemaining, 0n);
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

import assert from "node:assert/strict";
import { instrument, TrapReason } from "../../src/instrument/instrument.ts";
import { countOps, load, LOOP_HELPER } from "./_host.ts";
import { wat } from "./_wat.ts";

const PROGRAM = `(module
  (import "host" "reenter" (func $reenter (param i32) (result i32)))
  (tag $oops)
  (func $fac (export "fac") (param i64) (result i64)
    local.get 0 i64.eqz
    if (result i64) i64.const 1
    else local.get 0 local.get 0 i64.const 1 i64.sub call $fac i64.mul end)
  (func $count (export "count") (param i32) (result i32)
    local.get 0 i32.eqz
    if (result i32) i32.const 0
    else local.get 0 i32.const 1 i32.sub return_call $count end)
  (func $down (export "down") (param i32) (result i32)
    local.get 0 i32.eqz if (return (i32.const 0)) end
    local.get 0 i32.const 1 i32.sub call $down i32.const 1 i32.add)
  (func $throw_at (param i32)
    local.get 0 i32.eqz if throw $oops end
    local.get 0 i32.const 1 i32.sub call $throw_at)
  (func (export "catch_many") (param $times i32) (param $deep i32) (result i32)
    (loop $again
      (block $caught
        (try_table (catch $oops $caught)
          local.get $deep call $throw_at))
      local.get $times i32.const 1 i32.sub local.tee $times
      br_if $again)
    local.get $deep call $down)
  (func (export "via_host") (param i32) (result i32)
    local.get 0 call $reenter))`;

function plugin(max: number): ReturnType<typeof load> {
  let self: ReturnType<typeof load> | undefined = undefined;
  const reenter = (n: number): number => (self!.instance.exports.down as (n: number) => number)(n);
  self = load(PROGRAM, { callDepth: { max } }, { host: { reenter } });
  return self;
}

Deno.test("call-depth pass bounds recursion", async (t) => {
  const p = plugin(100);

  await t.step("factorial(200) exceeds a depth of 100", () => {
    assert.throws(() => p.call("fac", [200n], { maxCallDepth: 100 }), WebAssembly.RuntimeError);
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });

  await t.step("factorial(10) fits, also right after a trap", () => {
    assert.equal(p.call("fac", [10n], { maxCallDepth: 100 }), 3628800n);
    assert.equal(p.limits.trapReason, TrapReason.None);
  });

  await t.step("the limit counts frames exactly", () => {
    // down(n) uses n + 1 frames.
    assert.equal(p.call("down", [99], { maxCallDepth: 100 }), 99);
    assert.throws(() => p.call("down", [100], { maxCallDepth: 100 }), WebAssembly.RuntimeError);
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });

  await t.step("the limit can change per call", () => {
    assert.equal(p.call("down", [500], { maxCallDepth: 501 }), 500);
    assert.throws(() => p.call("down", [10], { maxCallDepth: 10 }), WebAssembly.RuntimeError);
  });
});

Deno.test("call-depth pass keeps every exit path balanced", async (t) => {
  const p = plugin(100);

  await t.step("tail calls do not grow the depth", () => {
    assert.equal(p.call("count", [100_000], { maxCallDepth: 3 }), 0);
  });

  await t.step("exceptions caught many frames up do not leak depth", () => {
    // 1000 throws from 50 frames deep, then a 60-frame recursion, under a limit of 62.
    assert.equal(p.call("catch_many", [1000, 50], { maxCallDepth: 62 }), 50);
    assert.equal(p.call("catch_many", [1, 50], { maxCallDepth: 62 }), 50);
  });

  await t.step("host functions calling back in see the caller's depth", () => {
    // via_host (1) -> host -> down(n) (n + 1)
    assert.equal(p.call("via_host", [98], { maxCallDepth: 100 }), 98);
    assert.throws(() => p.call("via_host", [99], { maxCallDepth: 100 }), WebAssembly.RuntimeError);
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });
});

const SHAPES = `(module
  (type $t (func (param i64) (result i64)))
  (table 1 funcref) (elem (i32.const 0) $fac_indirect)
  ${LOOP_HELPER}
  (func $down (param i32) (result i32)
    local.get 0 i32.eqz if (return (i32.const 0)) end
    local.get 0 i32.const 1 i32.sub call $down i32.const 1 i32.add)
  (func (export "down_many") (param $times i32) (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $down (local.get $n))))
      (br_if $l (local.tee $times (i32.sub (local.get $times) (i32.const 1)))))
    local.get $acc)
  (func $fac_indirect (export "fac_indirect") (param i64) (result i64)
    local.get 0 i64.eqz
    if (result i64) i64.const 1
    else
      local.get 0
      (call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i32.const 0))
      i64.mul
    end)
  (func $even (param i32) (result i32)
    local.get 0 i32.eqz if (result i32) i32.const 1 else local.get 0 i32.const 1 i32.sub call $odd end)
  (func $odd (param i32) (result i32)
    local.get 0 i32.eqz if (result i32) i32.const 0 else local.get 0 i32.const 1 i32.sub call $even end)
  (func (export "even") (param i32) (result i32) local.get 0 call $even))`;

Deno.test("call-depth pass counts only functions that can recurse", async (t) => {
  const p = load(SHAPES, { callDepth: true });

  await t.step("non-recursive calls take no depth", () => {
    assert.equal(p.call("loop_helper", [1000], { maxCallDepth: 0 }), 1000);
    const { bytes } = instrument(wat(SHAPES), { callDepth: true });
    assert.equal(countOps(bytes, 0, 0x23), 0); // helper: no global.get
    assert.equal(countOps(bytes, 1, 0x24), 0); // loop_helper: no global.set
  });

  await t.step("an uncounted caller gives every recursive call the same depth", () => {
    // down(n) takes n + 1 frames, however often it is called in a row.
    assert.equal(p.call("down_many", [1000, 49], { maxCallDepth: 50 }), 49_000);
    assert.throws(() => p.call("down_many", [2, 50], { maxCallDepth: 50 }));
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });

  await t.step("recursion through a table is counted", () => {
    assert.equal(p.call("fac_indirect", [10n], { maxCallDepth: 100 }), 3628800n);
    assert.throws(() => p.call("fac_indirect", [200n], { maxCallDepth: 100 }));
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });

  await t.step("mutual recursion of unexported functions is counted", () => {
    assert.equal(p.call("even", [98], { maxCallDepth: 100 }), 1);
    assert.throws(() => p.call("even", [100], { maxCallDepth: 100 }));
    assert.equal(p.limits.trapReason, TrapReason.CallDepth);
  });
});

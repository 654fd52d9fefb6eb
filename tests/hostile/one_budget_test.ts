/**
 * One public call, one budget: the steps of a bytes-ABI call (`alloc`, the
 * function, `dealloc`) and of a WASI command (its start function, `_start`)
 * draw on one fuel budget and one deadline, and `metrics().fuelConsumed`
 * adds exactly what every call used, trapped calls included, the same in
 * both isolations.
 */
import assert from "node:assert/strict";
import {
  Capability,
  FuelExhaustedError,
  TimeoutError,
  TrapError,
  type WasmPlugin,
} from "../../mod.ts";
import {
  allowingWorkers,
  assertRejectsWith,
  bytesOf,
  isolationKit,
  ISOLATIONS,
  testEachIsolation,
} from "../_helpers.ts";
import { within } from "./_within.ts";

/** Each step burns `$work` loop iterations, so every step costs the same. */
const STEPS_WAT = `(module
  (memory (export "memory") 1)
  (global $work (mut i32) (i32.const 0))
  (func $burn (param $k i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "set_work") (param i32) (global.set $work (local.get 0)))
  (func (export "alloc") (param i32) (result i32) (call $burn (global.get $work)) (i32.const 1024))
  (func (export "dealloc") (param i32 i32) (call $burn (global.get $work)))
  (func (export "work") (param i32 i32) (result i32) (call $burn (global.get $work)) (local.get 1))
  (func (export "work_bytes") (param i32 i32) (result i64)
    (call $burn (global.get $work))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.extend_i32_u (local.get 1))))
  (func (export "burn") (param i32) (call $burn (local.get 0)) nop)
  (func (export "burn_then_trap") (param i32) (call $burn (local.get 0)) unreachable)
  ;; Traps inside the loop function itself, where the fuel may live in a local.
  (func (export "loop_then_trap") (param $k i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    unreachable)
  (func (export "loop") (param $k i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    nop)
  ;; Loads out of bounds at iteration $k.
  (func (export "loop_then_load") (param $k i32) (result i32) (local $i i32) (local $acc i32)
    (loop $next
      (local.set $acc (i32.add (local.get $acc)
        (i32.load (select (i32.const 70000) (i32.const 0) (i32.eq (local.get $i) (local.get $k))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))
    (local.get $acc))
  (func (export "burn_then_divide") (param i32 i32) (result i32)
    (call $burn (local.get 0))
    (i32.div_u (i32.const 1) (local.get 1))))`;

/** Runs `call` and returns the fuel it added to the plugin's metrics. */
async function fuelOf(plugin: WasmPlugin, call: () => Promise<unknown>): Promise<number> {
  const before = (await plugin.metrics()).fuelConsumed;
  try {
    await call();
  } catch {
    // The fuel of a failed call counts too.
  }
  return (await plugin.metrics()).fuelConsumed - before;
}

const WORK = 20_000;

testEachIsolation("Hostile: a bytes call's steps share one fuel budget", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(STEPS_WAT, { resourceLimits: { maxFuel: 10_000_000 } });
  const { plugin } = loaded;
  await plugin.callVoid("set_work", [WORK]);
  const alloc = await fuelOf(plugin, () => plugin.callI32("alloc", [4]));
  const work = await fuelOf(plugin, () => plugin.callI32("work", [1024, 4]));
  const dealloc = await fuelOf(plugin, () => plugin.callVoid("dealloc", [1024, 4]));
  assert.ok(alloc > WORK && work > WORK && dealloc > WORK, `${alloc} ${work} ${dealloc}`);

  await t.step("fuelConsumed counts every step of callWithBytes and callBytes", async () => {
    const input = bytesOf("abcd");
    assert.equal(
      await fuelOf(plugin, () => plugin.callWithBytes("work", input)),
      alloc + work + dealloc,
    );
    const bytesWork = await fuelOf(plugin, () => plugin.callI64("work_bytes", [1024, 4]));
    // The output is the input buffer, freed once.
    assert.equal(
      await fuelOf(plugin, () => plugin.callBytes("work_bytes", input)),
      alloc + bytesWork + dealloc,
    );
  });

  await t.step("a budget enough for one step but not three fails the call", async () => {
    const budget = Math.floor(work * 1.5);
    for (
      const call of [
        () => plugin.callWithBytes("work", bytesOf("abcd"), { fuel: budget }),
        () => plugin.callBytes("work_bytes", bytesOf("abcd"), { fuel: budget }),
        () => plugin.callJson("work_bytes", { a: 1 }, { fuel: budget }),
      ]
    ) {
      const used = await fuelOf(plugin, () =>
        assertRejectsWith(call, FuelExhaustedError, {
          kind: "fuel_exhausted",
          fuelLimit: budget,
        }));
      assert.ok(used <= budget, `used ${used} of a budget of ${budget}`);
    }
    assert.equal(await plugin.callWithBytes("work", bytesOf("ab"), { fuel: budget * 3 }), 2);
  });

  await t.step("the plugin's own limit is one budget for the whole call", async () => {
    await using small = await loadPlugin(STEPS_WAT, {
      resourceLimits: { maxFuel: Math.floor(work * 2.5) },
    });
    await small.plugin.callVoid("set_work", [WORK]);
    await assertRejectsWith(
      () => small.plugin.callWithBytes("work", bytesOf("abcd")),
      FuelExhaustedError,
      { fuelLimit: Math.floor(work * 2.5) },
    );
    await small.plugin.callVoid("set_work", [10]);
    assert.equal(await small.plugin.callWithBytes("work", bytesOf("abc")), 3);
  });

  await t.step("the steps share one deadline", async () => {
    await using slow = await loadPlugin(STEPS_WAT, {
      resourceLimits: { maxFuel: null, maxExecutionTimeMs: 10_000 },
    });
    await slow.plugin.callVoid("set_work", [1]);
    /** The fastest of three `burn(units)` calls, in ms: the work is at least this long later. */
    const fastest = async (units: number): Promise<number> => {
      let best = Infinity;
      for (let run = 0; run < 3; run++) {
        const start = performance.now();
        await slow.plugin.callVoid("burn", [units]);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    // Find work that takes at least 60 ms per step, judged by the fastest run once warm (one
    // slow calibration on a busy machine once gave steps that all fit in the deadline).
    let units = 1_000_000;
    while ((await fastest(units)) < 30) units *= 4;
    units = Math.ceil(units * 60 / await fastest(units));
    await slow.plugin.callVoid("set_work", [units]);
    // Each step fits in 75 ms on a quiet machine; the three together (at least 180 ms) do not.
    await within(() =>
      assertRejectsWith(
        () => slow.plugin.callWithBytes("work", bytesOf("abcd"), { timeoutMs: 75 }),
        TimeoutError,
        { timeoutMs: 75 },
      )
    );
  });
});

testEachIsolation("Hostile: a trapped call reports the fuel it used", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  await using loaded = await loadPlugin(STEPS_WAT, { resourceLimits: { maxFuel: 1e9 } });
  const { plugin } = loaded;
  for (const n of [0, 1_000, 2_000_000]) {
    const clean = await fuelOf(plugin, () => plugin.callVoid("burn", [n]));
    const trapped = await fuelOf(
      plugin,
      () => assertRejectsWith(() => plugin.callVoid("burn_then_trap", [n]), TrapError),
    );
    const divided = await fuelOf(
      plugin,
      () => assertRejectsWith(() => plugin.callI32("burn_then_divide", [n, 0]), TrapError),
    );
    assert.ok(clean > n, `burn(${n}) used ${clean}`);
    // Same instructions up to the trap, whichever way the call ends.
    assert.equal(trapped, clean, `burn_then_trap(${n})`);
    assert.equal(divided, clean + 2, `burn_then_divide(${n})`);
    const looped = await fuelOf(plugin, () => plugin.callVoid("loop", [n]));
    assert.equal(
      await fuelOf(
        plugin,
        () => assertRejectsWith(() => plugin.callVoid("loop_then_trap", [n]), TrapError),
      ),
      looped,
      `loop_then_trap(${n})`,
    );
    // 15 instructions an iteration, charged ahead; the last one stops at its load.
    const loaded = await fuelOf(
      plugin,
      () => assertRejectsWith(() => plugin.callI32("loop_then_load", [n]), TrapError),
    );
    assert.ok(loaded >= 15 * n && loaded <= 15 * n + 20, `loop_then_load(${n}) used ${loaded}`);
  }
});

Deno.test("Hostile: a trapped call's fuel is the same in both isolations", {
  permissions: allowingWorkers("none"),
}, async () => {
  const figures: number[][] = [];
  for (const isolation of ISOLATIONS) {
    await using loaded = await isolationKit(isolation).loadPlugin(STEPS_WAT, {
      resourceLimits: { maxFuel: 1e9 },
    });
    const { plugin } = loaded;
    await plugin.callVoid("set_work", [1_000]);
    figures.push([
      await fuelOf(plugin, () => plugin.callVoid("burn_then_trap", [3_000_000])),
      await fuelOf(plugin, () => plugin.callI32("burn_then_divide", [12_345, 0])),
      await fuelOf(plugin, () => plugin.callVoid("loop_then_trap", [2_000_000])),
      await fuelOf(plugin, () => plugin.callI32("loop_then_load", [54_321])),
      await fuelOf(plugin, () => plugin.callWithBytes("work", bytesOf("xyz"))),
    ]);
  }
  assert.deepEqual(figures[0], figures[1]);
});

/** A bytes function that sleeps in an async host function (JSPI) before it answers. */
const SLEEPING_BYTES_WAT = `(module
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (memory (export "memory") 1)
  (global $freed (mut i32) (i32.const 0))
  (func (export "alloc") (param i32) (result i32) (call $sleep (i32.const 1)) (i32.const 1024))
  (func (export "dealloc") (param i32 i32)
    (global.set $freed (i32.add (global.get $freed) (i32.const 1))))
  (func (export "freed") (result i32) (global.get $freed))
  (func (export "echo") (param i32 i32) (result i64)
    (call $sleep (i32.const 1))
    (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
      (i64.extend_i32_u (local.get 1)))))`;

testEachIsolation("Hostile: a bytes call whose steps suspend is still one call", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  await using loaded = await loadPlugin(SLEEPING_BYTES_WAT, {
    capabilities: [Capability.Timer],
    resourceLimits: { maxFuel: 1_000_000 },
  });
  const { plugin } = loaded;
  assert.deepEqual(await plugin.callBytes("echo", bytesOf("hey")), bytesOf("hey"));
  assert.equal(await plugin.callI32("freed"), 1);
  const echo = await fuelOf(plugin, () => plugin.callI64("echo", [1024, 3]));
  const alloc = await fuelOf(plugin, () => plugin.callI32("alloc", [3]));
  const dealloc = await fuelOf(plugin, () => plugin.callVoid("dealloc", [1024, 3]));
  assert.equal(
    await fuelOf(plugin, () => plugin.callBytes("echo", bytesOf("hey"))),
    alloc + echo + dealloc,
  );
  await assertRejectsWith(
    () => plugin.callBytes("echo", bytesOf("hey"), { fuel: echo }),
    FuelExhaustedError,
    { fuelLimit: echo },
  );
});

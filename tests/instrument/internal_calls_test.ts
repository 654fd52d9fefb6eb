/**
 * The internal calling convention (`src/instrument/_internal_calls.ts`): with
 * fuel on, a function is split into a wrapper at its index and a variant that
 * takes the fuel and the depth as parameters, so that direct calls keep them
 * in registers. What a guest or its host can observe must not change: results,
 * fuel (exactly the instructions executed), the depth at which recursion
 * stops and what ran before it stopped, the deadline.
 */
import assert from "node:assert/strict";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { decodeBody } from "../../src/instrument/_code.ts";
import type { FuncType } from "../../src/instrument/_module.ts";
import { load, variantOf } from "./_host.ts";
import { random, randomProgram } from "./_random_program.ts";
import { wat } from "./_wat.ts";
import { FIB_FUNC } from "../fixtures/fib.ts";

const ALL: InstrumentOptions = { fuel: true, callDepth: true, deadline: "clock" };
const MODES: [string, InstrumentOptions][] = [
  ["fuel", { fuel: true }],
  ["fuel and depth", { fuel: true, callDepth: true }],
  ["fuel, depth and clock deadline", ALL],
];
const BUDGET = 1n << 40n;
const GLOBAL_GET = 0x23;

/** The type of defined function `index` of a module without imported functions. */
function typeOf(bytes: Uint8Array, index: number): FuncType {
  const info = parseModule(bytes);
  return info.types[info.functions[index]!] as FuncType;
}

const FIB = `(module ${FIB_FUNC})`;

Deno.test("a function splits into a wrapper and a variant taking the fuel and the depth", async (t) => {
  await t.step("the variant adds the fuel (and the depth) to the signature", () => {
    for (
      const [options, params] of [[{ fuel: true }, ["i32", "i64"]], [ALL, [
        "i32",
        "i64",
        "i32",
      ]]] as const
    ) {
      const { bytes } = instrument(wat(FIB), options);
      const variant = variantOf(bytes, 0);
      assert.notEqual(variant, null);
      assert.deepEqual(typeOf(bytes, 0), { kind: "func", params: ["i32"], results: ["i32"] });
      assert.deepEqual(typeOf(bytes, variant!), {
        kind: "func",
        params: [...params],
        results: ["i32", "i64"],
      });
    }
  });

  await t.step("the variant reads no global: the fuel and the depth come in parameters", () => {
    const { bytes } = instrument(wat(FIB), ALL);
    const variant = variantOf(bytes, 0)!;
    const code = parseModule(bytes).code[variant]!;
    const instructions = decodeBody(bytes, code.bodyStart, code.end).instructions;
    assert.equal(instructions.filter((i) => i.op === GLOBAL_GET).length, 0);
    // It calls itself twice, not its wrapper.
    const calls = instructions.filter((i) => i.op === 0x10).map((i) => bytes[i.start + 1]);
    assert.equal(calls.filter((callee) => callee === variant).length, 2);
    assert.equal(calls.filter((callee) => callee === 0).length, 0);
  });

  await t.step("without fuel, functions are not split", () => {
    for (const options of [{ callDepth: true }, { deadline: "clock" as const }]) {
      assert.equal(variantOf(instrument(wat(FIB), options).bytes, 0), null);
    }
  });

  await t.step("it computes the same, with exactly the same fuel", () => {
    for (const [name, options] of MODES) {
      const p = load(FIB, options);
      assert.equal(p.call("fib", [20], { fuel: BUDGET, maxCallDepth: 100 }), 6765, name);
      // fib(n) runs 5 instructions (n < 2) or 13 (the rest): fib(20) makes
      // 10 946 leaf calls and 10 945 others.
      assert.equal(BUDGET - p.limits.fuelRemaining, 10_946n * 5n + 10_945n * 13n, name);
    }
  });
});

Deno.test("a call's charge pays for the entry of the function it calls", async (t) => {
  // $callee's entry runs 2 instructions; each export runs 6 of its own.
  const source = `(module
    (func $callee (param i32) (result i32) local.get 0 i32.eqz)
    (func (export "ok") (param i32) (result i32)
      i32.const 1 local.get 0 i32.div_u call $callee i32.const 1 i32.add)
    (func (export "trap_before") (param i32) (result i32)
      i32.const 1 local.get 0 i32.div_u call $callee i32.const 1 i32.add))`;

  await t.step("a call that returns consumes what it executed", () => {
    const p = load(source, { fuel: true });
    assert.equal(p.call("ok", [1], { fuel: BUDGET }), 1);
    assert.equal(BUDGET - p.limits.fuelRemaining, 6n + 2n);
  });

  await t.step("a trap before the call has paid for the callee's entry too", () => {
    const p = load(source, { fuel: true });
    assert.throws(() => p.call("trap_before", [0], { fuel: BUDGET }), /divide by zero/);
    assert.equal(p.limits.trapReason, TrapReason.None);
    // The export's one record and the entry record of $callee, charged together up front.
    assert.equal(BUDGET - p.limits.fuelRemaining, 6n + 2n);
  });

  await t.step("a budget one short stops the call before anything runs", () => {
    const p = load(source, { fuel: true });
    assert.throws(() => p.call("ok", [1], { fuel: 7n }), WebAssembly.RuntimeError);
    assert.equal(p.limits.trapReason, TrapReason.Fuel);
    assert.equal(p.call("ok", [1], { fuel: 8n }), 1);
  });
});

Deno.test("the depth limit holds exactly with fuel on", async (t) => {
  // down(n) uses n + 1 frames; store_down(n) too, and stores n at address 0
  // right before it calls itself (in the same straight run of code).
  const source = `(module
    (memory (export "memory") 1)
    (func $down (export "down") (param i32) (result i32)
      local.get 0 i32.eqz if (return (i32.const 0)) end
      local.get 0 i32.const 1 i32.sub call $down i32.const 1 i32.add)
    (func $store_down (export "store_down") (param i32)
      (br_if 0 (i32.eqz (local.get 0)))
      (i32.store (i32.const 0) (local.get 0))
      (call $store_down (i32.sub (local.get 0) (i32.const 1))))
    (func $count (export "count") (param i32) (result i32)
      local.get 0 i32.eqz
      if (result i32) i32.const 0
      else local.get 0 i32.const 1 i32.sub return_call $count end)
    (func (export "enter_count") (param i32) (result i32) local.get 0 return_call $count)
    (func (export "enter_down") (param i32) (result i32) local.get 0 return_call $down)
    (func $even (export "even") (param i32) (result i32)
      local.get 0 i32.eqz if (return (i32.const 1)) end
      local.get 0 i32.const 1 i32.sub return_call $odd)
    (func $odd (param i32) (result i32)
      local.get 0 i32.eqz if (return (i32.const 0)) end
      local.get 0 i32.const 1 i32.sub return_call $even))`;
  const memory = (p: ReturnType<typeof load>): number =>
    new Int32Array((p.instance.exports.memory as WebAssembly.Memory).buffer)[0]!;

  for (
    const [name, options] of [...MODES.slice(1), ["depth alone", { callDepth: true }]] as const
  ) {
    await t.step(`${name}: frames are counted exactly`, () => {
      const p = load(source, options);
      const budget = { fuel: BUDGET, maxCallDepth: 100 };
      assert.equal(p.call("down", [99], budget), 99);
      assert.throws(() => p.call("down", [100], budget), WebAssembly.RuntimeError);
      assert.equal(p.limits.trapReason, TrapReason.CallDepth);
      assert.equal(p.call("down", [0], { ...budget, maxCallDepth: 1 }), 0);
      assert.throws(() => p.call("down", [0], { ...budget, maxCallDepth: 0 }));
      assert.equal(p.limits.trapReason, TrapReason.CallDepth);
    });

    await t.step(`${name}: what runs before the call that exceeds the depth still runs`, () => {
      const p = load(source, options);
      // Frames store 150, 149, ... 51: the hundredth stores 51, then cannot call.
      assert.throws(() => p.call("store_down", [150], { fuel: BUDGET, maxCallDepth: 100 }));
      assert.equal(p.limits.trapReason, TrapReason.CallDepth);
      assert.equal(memory(p), 51);
      p.call("store_down", [99], { fuel: BUDGET, maxCallDepth: 100 });
      assert.equal(memory(p), 1);
    });

    await t.step(`${name}: tail calls take no depth, entering one takes a frame`, () => {
      const p = load(source, options);
      const budget = { fuel: BUDGET, maxCallDepth: 1 };
      assert.equal(p.call("count", [100_000], budget), 0);
      assert.equal(p.call("enter_count", [100_000], budget), 0);
      assert.equal(p.call("even", [100_001], budget), 0);
      assert.equal(p.call("enter_down", [0], budget), 0);
      assert.throws(() => p.call("enter_down", [1], budget));
      assert.equal(p.limits.trapReason, TrapReason.CallDepth);
    });
  }
});

Deno.test("random programs stop at the same depth with fuel on as without", () => {
  const next = random(0xde97);
  for (let i = 0; i < 40; i++) {
    const program = randomProgram(next, 4);
    const source = wat(program.plain);
    const runners = [{ callDepth: true }, ...MODES.slice(1).map(([, options]) => options)].map(
      (options) => {
        const result = instrument(source, options);
        const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
        const limits = new InstanceLimits(instance, result);
        const f0 = instance.exports.f0 as (a: number, b: number) => number;
        return (depth: number, arg: number): string => {
          limits.prepare({ fuel: BUDGET, maxCallDepth: depth });
          try {
            return `= ${f0(arg, 3)}`;
          } catch {
            return `trap ${limits.trapReason}`;
          }
        };
      },
    );
    const [classic, ...variants] = runners;
    for (const arg of [0, 3]) {
      // The smallest limit under which the call returns, without fuel.
      let needed = 0;
      while (classic!(needed, arg).startsWith("trap")) needed++;
      for (const depth of [needed - 1, needed, needed + 1]) {
        if (depth < 0) continue;
        const expected = classic!(depth, arg);
        for (const [j, run] of variants.entries()) {
          assert.equal(run(depth, arg), expected, `${MODES[j + 1]![0]}, program ${i}, f0(${arg})`);
        }
      }
    }
  }
});

Deno.test("functions that cannot take the convention keep the classic one", async (t) => {
  const source = `(module
    (type $v (func (result i32)))
    (table 1 funcref)
    (elem (i32.const 0) $leaf)
    (tag $oops)
    (func $leaf (result i32) i32.const 7)
    (func $catching (export "catching") (result i32)
      (block $caught
        (try_table (catch $oops $caught) call $leaf drop throw $oops))
      call $leaf)
    (func $indirect_tail (export "indirect_tail") (result i32)
      i32.const 0 return_call_indirect (type $v))
    (func $tail_of_classic (export "tail_of_classic") (result i32) return_call $catching)
    (func (export "mixed") (result i32)
      call $catching call $indirect_tail i32.add call $tail_of_classic i32.add call $leaf i32.add))`;

  await t.step("exception handlers, indirect tail calls and tail calls of those", () => {
    const { bytes } = instrument(wat(source), ALL);
    assert.notEqual(variantOf(bytes, 0), null, "$leaf");
    assert.equal(variantOf(bytes, 1), null, "$catching");
    assert.equal(variantOf(bytes, 2), null, "$indirect_tail");
    assert.equal(variantOf(bytes, 3), null, "$tail_of_classic");
    assert.notEqual(variantOf(bytes, 4), null, "mixed");
  });

  await t.step("calls between both kinds meter exactly", () => {
    for (const [name, options] of MODES) {
      const p = load(source, options);
      assert.equal(p.call("mixed", [], { fuel: BUDGET, maxCallDepth: 10 }), 28, name);
      // mixed: 7; $catching: 4, twice; $indirect_tail: 2; $tail_of_classic: 1; $leaf: 1, 6 times.
      assert.equal(BUDGET - p.limits.fuelRemaining, 7n + 2n * 4n + 2n + 1n + 6n, name);
    }
  });
});

Deno.test("variants handle every shape of body", async (t) => {
  await t.step("unreachable returns and tail calls, multiple results, references", () => {
    const source = `(module
      (func $pair (param i32) (result i32 i64 f64)
        (local $a i64) (local $r externref) (local $b i32)
        local.get 0 i64.extend_i32_u local.set $a
        local.get 0 i32.const 2 i32.mul local.set $b
        local.get 0 i32.eqz if
          local.get $b local.get $a f64.const 0.5 return
          unreachable return
        end
        local.get $b local.get $a f64.const 1.5
        br 0
        local.get 0 return_call $pair)
      (func $ref (param externref) (result externref) (local $x externref) (local $y i32)
        local.get 0 local.set $x
        local.get $x return
        ref.null extern)
      (func (export "pair") (param i32) (result i32 i64 f64) local.get 0 call $pair)
      (func (export "ref") (param externref) (result externref) local.get 0 call $ref))`;
    for (const [name, options] of MODES) {
      const p = load(source, options);
      assert.deepEqual(p.call("pair", [3], { fuel: BUDGET }), [6, 3n, 1.5], name);
      assert.deepEqual(p.call("pair", [0], { fuel: BUDGET }), [0, 0n, 0.5], name);
      const token = { token: 1 };
      assert.equal(p.call("ref", [token], { fuel: BUDGET }), token, name);
      assert.notEqual(variantOf(p.result.bytes, 0), null);
    }
  });

  await t.step("the first locals, which the new parameters displace, keep their values", () => {
    const source = `(module
      (func $mix (param $p i32) (result f64) (local $a v128) (local $b funcref) (local $c i64)
        (local $d f32) (local $e i32)
        (local.set $a (i32x4.splat (local.get $p)))
        (local.set $c (i64.const 40))
        (local.set $d (f32.const 0.25))
        (local.set $e (i32x4.extract_lane 3 (local.get $a)))
        (f64.add (f64.convert_i64_s (i64.add (local.get $c) (i64.extend_i32_s (local.get $e))))
          (f64.promote_f32 (local.get $d))))
      (func (export "mix") (param i32) (result f64) local.get 0 call $mix))`;
    for (const [name, options] of MODES) {
      assert.equal(load(source, options).call("mix", [2], { fuel: BUDGET }), 42.25, name);
    }
  });
});

Deno.test("the host sees the fuel of a running call and can stop it", async (t) => {
  const source = `(module
    (import "host" "peek" (func $peek (result i32)))
    (func $work (param i32) (result i32)
      local.get 0 call $peek i32.add)
    (func (export "run") (param i32) (result i32)
      (loop $l
        (local.set 0 (call $work (local.get 0)))
        (br_if $l (i32.lt_u (local.get 0) (i32.const 1000))))
      local.get 0))`;

  await t.step("the fuel global is exact at every host call", () => {
    const seen: bigint[] = [];
    // deno-lint-ignore prefer-const -- the host function below needs the instance made after it
    let self: ReturnType<typeof load> | undefined;
    const peek = (): number => {
      seen.push(BUDGET - self!.limits.fuelRemaining);
      return 100;
    };
    self = load(source, ALL, { host: { peek } });
    assert.equal(self.call("run", [0], { fuel: BUDGET, deadline: Infinity }), 1000);
    // The entry (the final local.get, sure to run) is charged first; each of
    // the 10 iterations then charges 7 instructions of the loop and the 3 of
    // $work together, before the host call.
    assert.deepEqual(seen.slice(0, 3), [11n, 21n, 31n]);
    assert.equal(BUDGET - self.limits.fuelRemaining, 1n + 10n * 10n);
  });

  await t.step("an interrupt during a host call stops the guest at its next charge", () => {
    // deno-lint-ignore prefer-const -- the host function below needs the instance made after it
    let self: ReturnType<typeof load> | undefined;
    let calls = 0;
    const peek = (): number => {
      if (++calls === 3) self!.limits.interrupt();
      return 1;
    };
    self = load(source, ALL, { host: { peek } });
    assert.throws(() => self!.call("run", [0], { fuel: BUDGET, deadline: Infinity }));
    assert.equal(self.limits.trapReason, TrapReason.Deadline);
    assert.equal(calls, 3);
  });
});

Deno.test("variants take their function's name in stack traces", () => {
  const bytes = wat(
    `(module
      (func $inner (param i32) (result i32) local.get 0 if unreachable end i32.const 1)
      (func $outer (export "outer") (param i32) (result i32) local.get 0 call $inner))`,
    { debugNames: true },
  );
  const result = instrument(bytes, ALL);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  const limits = new InstanceLimits(instance, result);
  limits.prepare({ fuel: BUDGET });
  let stack = "";
  try {
    (instance.exports.outer as (n: number) => number)(1);
  } catch (caught) {
    stack = String((caught as Error).stack);
  }
  const frames = stack.split("\n").filter((line) => line.includes("wasm://"));
  // inner's variant, outer's variant, outer's wrapper.
  assert.equal(frames.length, 3, stack);
  assert.match(frames[0]!, /at inner /);
  assert.ok(frames.slice(1).every((line) => /at outer /.test(line)), stack);
});

Deno.test("bodies that cannot trap skip the fuel global, and a stop still finds it exact", async (t) => {
  // With a deadline (fuel in slices), bodies without an instruction that may
  // trap keep the fuel in registers alone; without one, every body writes
  // each charge through. Both must leave the same fuel at every stop.
  const source = `(module
    (import "host" "fail" (func $fail (param i32) (result i32)))
    ${FIB_FUNC}
    (func $spin (param i32) (result i32) (local i32)
      (loop $l
        (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
      local.get 1)
    (global $last (mut i32) (i32.const 0))
    (func $down (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.const 0))
        (else
          (global.set $last (local.get 0))
          (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
    (func $divide (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
    (func $spin_then_divide (param i32) (result i32)
      (drop (call $spin (local.get 0)))
      (call $divide (i32.const 0)))
    (func (export "down") (param i32) (result i32) (call $down (local.get 0)))
    (func (export "divide_after_spin") (param i32) (result i32)
      (i32.div_u (call $spin (local.get 0)) (i32.const 0)))
    (func (export "callee_divides") (param i32) (result i32)
      (call $spin_then_divide (local.get 0)))
    (func (export "import_throws") (param i32) (result i32)
      (call $fail (call $spin (local.get 0))))
    (func (export "tail_divides") (param i32) (result i32)
      (drop (call $spin (local.get 0)))
      (return_call $divide (i32.const 0))))`;
  const imports = {
    host: {
      fail: (): never => {
        throw new Error("host says no");
      },
    },
  };
  const cases: [string, string, number, { fuel: bigint; maxCallDepth: number }][] = [
    ["a depth that runs out in recursion", "fib", 25, { fuel: BUDGET, maxCallDepth: 12 }],
    ["a depth that runs out after an effect", "down", 100, { fuel: BUDGET, maxCallDepth: 12 }],
    ["fuel that runs out in recursion", "fib", 25, { fuel: 5_000n, maxCallDepth: 100 }],
    ["fuel that runs out over slices", "fib", 30, { fuel: 3_000_000n, maxCallDepth: 100 }],
    ["fuel that runs out in a loop", "callee_divides", 5000, { fuel: 3_000n, maxCallDepth: 100 }],
    ["a trap just after a callee returns", "divide_after_spin", 5000, {
      fuel: BUDGET,
      maxCallDepth: 100,
    }],
    ["a trap at a callee's entry", "callee_divides", 5000, { fuel: BUDGET, maxCallDepth: 100 }],
    ["a host function that throws", "import_throws", 5000, { fuel: BUDGET, maxCallDepth: 100 }],
    ["a trap after a tail call", "tail_divides", 5000, { fuel: BUDGET, maxCallDepth: 100 }],
  ];
  const writing = load(source, { fuel: true, callDepth: true }, imports);
  const sliced = load(source, ALL, imports);
  for (const [what, fn, arg, budget] of cases) {
    await t.step(what, () => {
      const stops = [writing, sliced].map((p) => {
        assert.throws(() => p.call(fn, [arg], budget));
        return { reason: p.limits.trapReason, used: budget.fuel - p.limits.fuelRemaining };
      });
      assert.deepEqual(stops[1], stops[0]);
      assert.ok(stops[0]!.used > 100n, `${stops[0]!.used}`);
    });
  }

  await t.step("a call that returns leaves the same fuel", () => {
    const used = [writing, sliced].map((p) => {
      assert.equal(p.call("fib", [20], { fuel: BUDGET, maxCallDepth: 100 }), 6765);
      return BUDGET - p.limits.fuelRemaining;
    });
    // fib's own instructions (see above).
    assert.deepEqual(used, Array(2).fill(10_946n * 5n + 10_945n * 13n));
  });
});

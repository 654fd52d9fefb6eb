import assert from "node:assert/strict";
import {
  InstanceLimits,
  instrument,
  type InstrumentOptions,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import { UnboundedThrowError } from "../../src/instrument/_deadline.ts";
import { countOps, load, LOOP_HELPER } from "./_host.ts";
import { wat } from "./_wat.ts";
import { FIB_FUNC } from "../fixtures/fib.ts";

const PROGRAM = `(module
  (memory (export "memory") 1)
  (func (export "spin") (loop br 0))
  (func (export "spin_caught")
    (block (try_table (catch_all 0) (loop br 0))))
  ${FIB_FUNC}
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store))`;

Deno.test("deadline pass in clock mode stops a call on the host thread", async (t) => {
  const plugin = load(PROGRAM, { deadline: "clock" });

  await t.step("an infinite loop stops after the deadline", () => {
    const started = performance.now();
    assert.throws(
      () => plugin.call("spin", [], { deadline: performance.now() + 50 }),
      WebAssembly.RuntimeError,
    );
    const elapsed = performance.now() - started;
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
    assert.ok(elapsed >= 50 && elapsed < 2000, `stopped after ${elapsed} ms`);
  });

  await t.step("the guest cannot catch the deadline", () => {
    assert.throws(
      () => plugin.call("spin_caught", [], { deadline: performance.now() + 50 }),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
  });

  await t.step("recursion without loops is checked before its recursive calls", () => {
    assert.throws(
      () => plugin.call("fib", [45], { deadline: performance.now() + 50 }),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
  });

  await t.step("a call within its deadline returns normally", () => {
    assert.equal(plugin.call("fib", [20], { deadline: performance.now() + 10_000 }), 6765);
    assert.equal(plugin.limits.trapReason, TrapReason.None);
  });
});

Deno.test("the clock hook asks its host whether to stop the call", async (t) => {
  const result = instrument(wat(PROGRAM), { deadline: "clock" });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
  let stop = false;
  const limits = new InstanceLimits(instance, result, { stopRequested: () => stop });
  const spin = instance.exports.spin as () => void;

  await t.step("a stop asked for ends the call at the next check", () => {
    limits.prepare({ deadline: Infinity });
    stop = true;
    assert.throws(spin, WebAssembly.RuntimeError);
    assert.equal(limits.trapReason, TrapReason.Deadline);
  });

  await t.step("without one, the call runs on", () => {
    stop = false;
    limits.prepare({ deadline: Infinity });
    assert.equal((instance.exports.fib as (n: number) => number)(20), 6765);
    assert.equal(limits.trapReason, TrapReason.None);
  });

  await t.step("a deadline left unread is asked for once, at the first check", () => {
    const asked: number[] = [];
    const other = new WebAssembly.Instance(new WebAssembly.Module(result.bytes));
    const lazy = new InstanceLimits(other, result, {
      deadlineAt: (now) => {
        asked.push(now);
        return now + 20;
      },
    });
    // A worker arms its calls without reading the clock: a NaN deadline and time.
    lazy.prepareCall(0, 1000, NaN, NaN);
    const started = performance.now();
    assert.throws(other.exports.spin as () => void, WebAssembly.RuntimeError);
    assert.equal(lazy.trapReason, TrapReason.Deadline);
    assert.equal(asked.length, 1);
    assert.ok(asked[0]! >= started);
    assert.ok(performance.now() - asked[0]! >= 20);
  });
});

Deno.test("deadline pass stops a guest running in a worker when its host asks", async (t) => {
  const variants: [string, InstrumentOptions][] = [
    ["checks in code", { deadline: "clock" }],
    ["checks riding on fuel", { fuel: true, callDepth: true, deadline: "clock" }],
  ];
  for (const [name, options] of variants) {
    await t.step(name, async () => {
      const result = instrument(wat(PROGRAM), options);
      const worker = new Worker(new URL("./_spin_worker.ts", import.meta.url), { type: "module" });
      try {
        const done = new Promise<{ error: string | null; reason: number }>((resolve, reject) => {
          worker.onerror = (event) => reject(event.error ?? new Error(event.message));
          worker.onmessage = (event) => {
            const message = event.data;
            if (message.type === "ready") {
              const flag = new Int32Array(message.buffer as SharedArrayBuffer);
              setTimeout(() => Atomics.store(flag, 0, 1), 50);
            } else {
              resolve(message);
            }
          };
        });
        worker.postMessage(result);
        const outcome = await done;
        assert.deepEqual(outcome, {
          type: "done",
          error: "RuntimeError",
          reason: TrapReason.Deadline,
        });
      } finally {
        worker.terminate();
      }
    });
  }
});

/** f0 calls f1 twice, f1 calls f2 twice, …: 2^40 calls, none recursive, no loop. */
function exponentialChain(levels: number): string {
  const funcs = [`(func $f${levels} (param i32) (result i32) local.get 0 i32.const 1 i32.add)`];
  for (let i = levels - 1; i >= 0; i--) {
    funcs.push(`(func $f${i} (export "f${i}") (param i32) (result i32)
      local.get 0 call $f${i + 1} call $f${i + 1})`);
  }
  return `(module ${funcs.join("\n")})`;
}

const SHAPES = `(module
  ${LOOP_HELPER}
  (func $forever (export "forever") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add return_call $forever))`;

Deno.test("deadline pass without fuel checks loops and calls that can run long", async (t) => {
  await t.step("calls of small non-recursive functions go unchecked", () => {
    const { bytes } = instrument(wat(SHAPES), { deadline: "clock" });
    // Each check counts the clock countdown down with an i32.sub.
    const sub = 0x6b;
    assert.equal(countOps(bytes, 0, sub), 0);
    assert.equal(countOps(bytes, 1, sub), 2); // its own, and the loop header's check
    assert.equal(countOps(bytes, 2, sub), 1); // the recursive tail call
  });

  await t.step("endless tail recursion stops", () => {
    const plugin = load(SHAPES, { deadline: "clock" });
    assert.throws(
      () => plugin.call("forever", [0], { deadline: performance.now() + 50 }),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
  });

  await t.step("an exponential tree of non-recursive calls stops", () => {
    for (const stop of ["deadline", "interrupt"] as const) {
      const plugin = load(exponentialChain(40), { deadline: "clock" });
      const started = performance.now();
      if (stop === "interrupt") {
        plugin.limits.prepare({});
        plugin.limits.interrupt();
        assert.throws(() => (plugin.instance.exports.f0 as (n: number) => number)(0));
      } else {
        assert.throws(() => plugin.call("f0", [0], { deadline: performance.now() + 50 }));
      }
      assert.equal(plugin.limits.trapReason, TrapReason.Deadline, stop);
      assert.ok(performance.now() - started < 2000);
    }
  });
});

Deno.test("with a deadline, the handlers a throw passes in one frame are bounded", async (t) => {
  // The engine's search for a handler is not metered: 60 000 catch clauses in scope made one
  // throw through 990 frames take 1.4 s, with no check possible inside it.
  const nested = (depth: number, clauses: number) => {
    const catches = Array.from({ length: clauses }, () => "(catch $other 0)").join(" ");
    let body = "(throw $e)";
    for (let i = 0; i < depth; i++) body = `(block (try_table ${catches} ${body}))`;
    return wat(`(module (tag $e) (tag $other) (func (export "f") ${body}))`);
  };
  const legacy = (catches: number) => {
    const arms = Array.from({ length: catches }, () => "(catch $other)").join(" ");
    return wat(`(module (tag $e) (tag $other)
      (func (export "f") (try (do (throw $e)) ${arms})))`);
  };
  const refused = (bytes: Uint8Array, weight: number) =>
    assert.throws(
      () => instrument(bytes, { deadline: "clock" }),
      (err: Error) =>
        err instanceof UnboundedThrowError && err.message.includes(`weight ${weight} `),
    );
  await t.step("each try_table counts 7, each catch clause 1: 512 at most", () => {
    instrument(nested(64, 1), { deadline: "clock" });
    refused(nested(65, 1), 520);
    instrument(nested(1, 505), { deadline: "clock" });
    refused(nested(1, 506), 513);
  });
  await t.step("a legacy try's catches count too", () => {
    instrument(legacy(505), { deadline: "clock" });
    refused(legacy(506), 513);
  });
  await t.step("a legacy catch's body is outside its own try", () => {
    // 65 tries, each in the catch_all of the one before: 8 in scope anywhere, not 520.
    let body = "(nop)";
    for (let i = 0; i < 65; i++) body = `(try (do (throw $e)) (catch_all ${body}))`;
    instrument(wat(`(module (tag $e) (func (export "f") ${body}))`), { deadline: "clock" });
    // Nested in the bodies instead, they are all in scope.
    body = "(throw $e)";
    for (let i = 0; i < 65; i++) body = `(try (do ${body}) (catch_all))`;
    refused(wat(`(module (tag $e) (func (export "f") ${body}))`), 520);
  });
  await t.step("try_tables one after another do not add up", () => {
    const catches = Array.from({ length: 400 }, () => "(catch $other 0)").join(" ");
    const one = `(block (try_table ${catches} (throw $e)))`;
    instrument(wat(`(module (tag $e) (tag $other) (func ${one} ${one} ${one}))`), {
      deadline: "clock",
    });
  });
  await t.step("without a deadline nothing needs bounding", () => {
    instrument(nested(1, 2000), { fuel: true });
  });
});

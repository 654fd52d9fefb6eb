import assert from "node:assert/strict";
import { instrument, TrapReason } from "../../src/instrument/instrument.ts";
import { load } from "./_host.ts";
import { wat } from "./_wat.ts";

const PROGRAM = `(module
  (memory (export "memory") 1)
  (func (export "spin") (loop br 0))
  (func (export "spin_caught")
    (block (try_table (catch_all 0) (loop br 0))))
  (func $fib (export "fib") (param i32) (result i32)
    local.get 0 i32.const 2 i32.lt_u
    if (result i32) local.get 0
    else
      local.get 0 i32.const 1 i32.sub call $fib
      local.get 0 i32.const 2 i32.sub call $fib
      i32.add
    end)
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

  await t.step("recursion without loops is checked at function entry", () => {
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

Deno.test("deadline pass in shared-flag mode reads the interrupt flag", async (t) => {
  const plugin = load(PROGRAM, { deadline: "shared-flag" });

  await t.step("the flag lives in an appended shared memory", () => {
    assert.ok(plugin.limits.interruptBuffer instanceof SharedArrayBuffer);
    assert.equal(plugin.result.deadline?.mode, "shared-flag");
    // The module's own memory is still memory 0.
    plugin.call("store", [0, 42]);
    const own = plugin.instance.exports.memory as WebAssembly.Memory;
    assert.equal(new Int32Array(own.buffer)[0], 42);
    assert.equal(new Int32Array(plugin.limits.interruptBuffer!)[0], 0);
  });

  await t.step("a raised flag stops the next check", () => {
    plugin.limits.prepare({});
    plugin.limits.interrupt();
    assert.throws(
      () => (plugin.instance.exports.spin as () => void)(),
      WebAssembly.RuntimeError,
    );
    assert.equal(plugin.limits.trapReason, TrapReason.Deadline);
  });

  await t.step("prepare() lowers the flag again", () => {
    assert.equal(plugin.call("fib", [10]), 55);
  });
});

Deno.test("deadline pass in shared-flag mode stops a guest running in a worker", async () => {
  const result = instrument(wat(PROGRAM), { deadline: "shared-flag" });
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
    assert.deepEqual(outcome, { type: "done", error: "RuntimeError", reason: TrapReason.Deadline });
  } finally {
    worker.terminate();
  }
});

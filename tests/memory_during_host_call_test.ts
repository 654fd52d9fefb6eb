/**
 * `readMemory` and `writeMemory` while a plugin's guest waits on a host
 * function: they act at once in both isolations (a worker waiting for the
 * host's answer serves them), so a host function can take pointers into
 * its caller's memory, and two plugins whose tools read each other's
 * memory both answer.
 */
import assert from "node:assert/strict";
import { Capability, MemoryOutOfBoundsError, TimeoutError, type WasmPlugin } from "../mod.ts";
import { assertRejectsWith, bytesOf, delay, testEachIsolation, textOf } from "./_helpers.ts";
import { within } from "./hostile/_within.ts";

const PAGE = 65_536;
/** Iterations of `spin_then_ask`'s loop: tens of milliseconds, time to make an access meanwhile. */
const SPIN = 40_000_000;

/** A guest whose `ask` calls the tool named `tool` with `{}`, and `hook` its linker function. */
function callerWat(tool: string): string {
  return `(module
    (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
    (import "env" "hook" (func $hook))
    (memory (export "memory") 17)
    (data (i32.const 0) "${tool}")
    (data (i32.const 16) "{}")
    (func (export "ask") (result i32)
      (call $tool (i32.const 0) (i32.const ${tool.length}) (i32.const 16) (i32.const 2)
        (i32.const 256) (i32.const 64)))
    (func (export "hook_then_load") (param i32) (result i32)
      (call $hook)
      (i32.load8_u (local.get 0)))
    (func (export "spin_then_ask") (param $n i32) (result i32)
      (loop $spin (br_if $spin (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
      (call $tool (i32.const 0) (i32.const ${tool.length}) (i32.const 16) (i32.const 2)
        (i32.const 256) (i32.const 64))))`;
}

const CAPABILITIES = [Capability.CallTool, Capability.CallHostFunction];

testEachIsolation(
  "Memory access while the guest waits on a host function",
  { permissions: "none" },
  async (t, kit) => {
    // No fuel budget: `spin_then_ask` spins for tens of milliseconds before it asks its tool.
    await using runtime = kit.createRuntime({
      resourceLimits: { maxExecutionTimeMs: 5_000, maxFuel: null },
    });
    let hook: (self: WasmPlugin) => unknown = () => {};
    const plugins: { a?: WasmPlugin; b?: WasmPlugin } = {};
    const linker = (self: () => WasmPlugin) =>
      runtime.createLinker().funcWrap("env", "hook", () => void hook(self()));
    const load = async (tool: string, key: "a" | "b"): Promise<WasmPlugin> => {
      const compiled = await runtime.compileWat(`caller_${key}`, callerWat(tool));
      return plugins[key] = await runtime.createPluginWithLinker(
        compiled,
        { name: `caller_${key}`, capabilities: CAPABILITIES },
        linker(() => plugins[key]!),
      );
    };
    await using a = await load("peek_a", "a");
    await using b = await load("peek_b", "b");
    let peekA: () => unknown = () => 0;
    let peekB: () => unknown = () => 0;
    runtime.registerTool("peek_a", () => peekA());
    runtime.registerTool("peek_b", () => peekB());

    await t.step("a tool reads its caller's memory by pointer and writes an answer", async () => {
      await a.writeMemory(1000, bytesOf("hello"));
      peekA = async () => {
        const text = textOf(await a.readMemory(1000, 5));
        await a.writeMemory(2000, bytesOf(text.toUpperCase()));
        return text.length;
      };
      assert.equal(textOf(await a.readMemory(256, await within(() => a.callI32("ask")))), "5");
      assert.equal(textOf(await a.readMemory(2000, 5)), "HELLO");
    });

    await t.step("accesses made together keep their order", async () => {
      peekA = async () => {
        const steps = await Promise.all([
          a.writeMemory(3000, new Uint8Array([1])),
          a.readMemory(3000, 1),
          a.writeMemory(3000, new Uint8Array([2])),
          a.readMemory(3000, 1),
        ]);
        return [steps[1]![0], steps[3]![0]];
      };
      const length = await within(() => a.callI32("ask"));
      assert.equal(textOf(await a.readMemory(256, length)), "[1,2]");
    });

    await t.step("a megabyte each way, up to memory's last byte", async () => {
      const bytes = new Uint8Array(16 * PAGE + 1);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
      let back: Uint8Array | undefined;
      peekA = async () => {
        await a.writeMemory(PAGE - 1, bytes);
        back = await a.readMemory(PAGE - 1, bytes.length);
        return 0;
      };
      await within(() => a.callI32("ask"));
      assert.deepEqual(back, bytes);
    });

    await t.step("a long write outside memory fails at once, not after it is carried", async () => {
      let tookMs = Infinity;
      peekA = async () => {
        const start = performance.now();
        await assertRejectsWith(
          () => a.writeMemory(PAGE, new Uint8Array(256 << 20)),
          MemoryOutOfBoundsError,
          { offset: PAGE, size: 256 << 20 },
        );
        tookMs = performance.now() - start;
        return 0;
      };
      await within(() => a.callI32("ask"));
      assert.ok(tookMs < 100, `the refused write took ${tookMs} ms`);
    });

    await t.step("an access outside memory fails alone: the call goes on", async () => {
      peekA = async () => {
        await assertRejectsWith(() => a.readMemory(17 * PAGE - 1, 2), MemoryOutOfBoundsError, {
          offset: 17 * PAGE - 1,
          size: 2,
        });
        return (await a.readMemory(16, 2)).length;
      };
      const length = await within(() => a.callI32("ask"));
      assert.equal(textOf(await a.readMemory(256, length)), "2");
    });

    await t.step("a linker function's writes land before its guest goes on", async () => {
      // Not awaited, one after the other: all of them, in order, before the answer.
      const written: Promise<void>[] = [];
      hook = (self) => {
        for (const [i, byte] of [77, 78, 79].entries()) {
          written.push(self.writeMemory(4000 + i, new Uint8Array([byte])));
        }
      };
      assert.equal(await within(() => a.callI32("hook_then_load", [4002])), 79);
      await Promise.all(written);
      assert.deepEqual(await a.readMemory(4000, 3), new Uint8Array([77, 78, 79]));
      hook = () => {};
    });

    await t.step("an access waiting for the call does not hold up its tool's", async () => {
      peekA = async () => (await a.readMemory(16, 2)).length;
      const call = a.callI32("spin_then_ask", [SPIN]);
      await delay(1);
      // Made while the guest runs: it waits for the call; the tool's read does not wait for it.
      const outside = a.readMemory(0, 4);
      assert.equal(textOf(await a.readMemory(256, await within(() => call))), "2");
      assert.equal(textOf(await outside), "peek");
    });

    await t.step(
      "an access waiting for the call is served when its tool waits for it",
      async () => {
        // Made while the guest runs, it waited for the call; the guest's tool then waited for it.
        const outside: { write?: Promise<void> } = {};
        peekA = async () => {
          while (outside.write === undefined) await delay(1);
          await outside.write;
          // The write made before the tool's read is in memory by then.
          return (await a.readMemory(7000, 1))[0];
        };
        const call = a.callI32("spin_then_ask", [SPIN]);
        await delay(1);
        outside.write = a.writeMemory(7000, new Uint8Array([9]));
        assert.equal(textOf(await a.readMemory(256, await within(() => call))), "9");
      },
    );

    await t.step("a tool's access after its call ended lands: no call waits for it", async () => {
      let late: Promise<void> | undefined;
      peekA = () => {
        late = delay(20).then(() => a.writeMemory(6000, new Uint8Array([5])));
        return 0;
      };
      await within(() => a.callI32("ask"));
      await late;
      assert.deepEqual(await a.readMemory(6000, 1), new Uint8Array([5]));
    });

    await t.step("accesses a tool made before its call was aborted all land", async () => {
      const controller = new AbortController();
      let settled: PromiseSettledResult<void>[] = [];
      peekA = async () => {
        const writes = Array.from(
          { length: 20 },
          (_, i) => a.writeMemory(10_000 + i * PAGE / 4, new Uint8Array(PAGE / 4).fill(i)),
        );
        controller.abort(new Error("enough"));
        settled = await Promise.allSettled(writes);
        return 0;
      };
      await within(() =>
        assert.rejects(a.callI32("ask", [], { signal: controller.signal }), /enough/)
      );
      await delay(10);
      assert.deepEqual(settled.map((each) => each.status), Array(20).fill("fulfilled"));
      assert.deepEqual(await a.readMemory(10_000 + 19 * PAGE / 4, 2), new Uint8Array([19, 19]));
    });

    await t.step("two plugins whose tools read each other's memory both answer", async () => {
      // Each tool reads the other plugin's memory once both guests wait on their tools.
      await a.writeMemory(5000, bytesOf("A"));
      await b.writeMemory(5000, bytesOf("B"));
      const bothIn = Promise.withResolvers<void>();
      let entered = 0;
      const enter = (): Promise<void> => {
        if (++entered === 2) bothIn.resolve();
        return bothIn.promise;
      };
      peekA = async () => (await enter(), textOf(await b.readMemory(5000, 1)));
      peekB = async () => (await enter(), textOf(await a.readMemory(5000, 1)));
      const [lengthA, lengthB] = await within(() =>
        Promise.all([a.callI32("ask"), b.callI32("ask")])
      );
      assert.equal(textOf(await a.readMemory(256, lengthA)), '"B"');
      assert.equal(textOf(await b.readMemory(256, lengthB)), '"A"');
    });

    await t.step(
      "a call that times out while its tool reads memory still ends on time",
      async () => {
        let ended = false;
        peekA = async () => {
          // (A timer's turn between reads: inline, reads alone would starve the deadline's timer.)
          while (!ended) await a.readMemory(0, PAGE).catch(() => ended = true).then(() => delay(1));
          return 0;
        };
        await within(() =>
          assertRejectsWith(() => a.callI32("ask", [], { timeoutMs: 100 }), TimeoutError, {
            timeoutMs: 100,
          }).finally(() => ended = true)
        );
        peekA = () => 0;
        assert.equal(await a.callI32("ask"), 1);
      },
    );
  },
);

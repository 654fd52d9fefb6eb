/**
 * Calls waiting in line behind a running call, in both isolations: each is
 * what its caller made it (arguments and input read once, as the call is
 * made), and one whose signal aborts leaves the line at once and runs
 * nothing, whether or not a worker had it posted ahead.
 */

import assert from "node:assert/strict";
import { Capability, type WasmPlugin, type WasmRuntime } from "../mod.ts";
import { testEachIsolation } from "./_helpers.ts";
import { READ_WORKERS } from "./worker/_worker_helpers.ts";
import { BUMP_ECHO_FUNCS } from "./fixtures/wat.ts";

/**
 * `hold()` calls the tool `holdx`, which the test answers when it likes, so
 * the calls made meanwhile wait in line; `add(x)` adds `x` to a counter and
 * returns it; `echo` returns its input (bytes ABI).
 */
const LINE_WAT = `(module
  (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $total (mut i32) (i32.const 0))
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 0) "holdx{}")
  (func (export "hold") (result i32)
    (call $tool (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64)
      (i32.const 64)))
  (func (export "add") (param $x i32) (result i32)
    (global.set $total (i32.add (global.get $total) (local.get $x)))
    (global.get $total))
  ${BUMP_ECHO_FUNCS})`;

/** A plugin of `LINE_WAT` and the way to let its running `hold()` return. */
interface Line {
  readonly plugin: WasmPlugin;
  /** Starts `hold()`, which returns once `release()` is called. */
  hold(): Promise<number>;
  release(): void;
}

/** A plugin of `LINE_WAT` in `runtime` (which it registers the tool `holdx` on). */
async function withLine(runtime: WasmRuntime): Promise<Line> {
  let gate = Promise.withResolvers<void>();
  runtime.registerTool("holdx", async () => {
    await gate.promise;
    return 1;
  });
  const plugin = await runtime.createPluginFromWat(LINE_WAT, {
    capabilities: [Capability.CallTool],
  });
  return {
    plugin,
    hold: () => {
      gate = Promise.withResolvers();
      return plugin.callI32("hold");
    },
    release: () => gate.resolve(),
  };
}

const PERMISSIONS = { permissions: { read: READ_WORKERS } };

testEachIsolation(
  "A call whose signal aborts in line leaves it at once",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 20_000 } });
    const line = await withLine(runtime);

    await t.step("it rejects with the reason while the call ahead still runs", async () => {
      const held = line.hold();
      const controller = new AbortController();
      const settled: string[] = [];
      // Four calls that would add 1 each, a worker posting the first ones ahead already.
      const aborted = [1, 1, 1, 1].map((x) =>
        line.plugin.callI32("add", [x], { signal: controller.signal }).then(
          () => settled.push("ran"),
          (err) => settled.push(String(err.message)),
        )
      );
      const after = line.plugin.callI32("add", [100]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      controller.abort(new Error("not wanted"));
      await Promise.all(aborted);
      assert.deepEqual(settled, Array(4).fill("not wanted"));
      line.release();
      assert.equal(await held, 1);
      // None of them ran: the counter holds only the call after them.
      assert.equal(await after, 100);
    });

    await t.step("a signal aborted already never runs the call either", async () => {
      const held = line.hold();
      const refused = line.plugin.callI32("add", [1], { signal: AbortSignal.abort("too late") });
      await assert.rejects(refused, (err) => err === "too late");
      line.release();
      await held;
      assert.equal(await line.plugin.callI32("add", [0]), 100);
    });

    await t.step("metrics count it as a failed call", async () => {
      const metrics = await line.plugin.metrics();
      assert.equal(metrics.failureCount, 5);
      assert.equal(metrics.callCount, 6 + 3);
    });
  },
);

testEachIsolation(
  "A call waiting in line runs what its caller passed, not what came later",
  PERMISSIONS,
  async (t, kit) => {
    await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 20_000 } });
    const line = await withLine(runtime);

    await t.step("arguments are read as the call is made", async () => {
      const held = line.hold();
      const args = [0];
      const results: Promise<number>[] = [];
      // Eight calls sharing one array, each made with the value it held then.
      for (let i = 1; i <= 8; i++) {
        args[0] = i;
        results.push(line.plugin.callI32("add", args));
      }
      args[0] = 1000;
      line.release();
      await held;
      assert.deepEqual(await Promise.all(results), [1, 3, 6, 10, 15, 21, 28, 36]);
    });

    await t.step("a bytes call's input is copied as the call is made", async () => {
      const held = line.hold();
      const input = new Uint8Array([1, 2, 3]);
      const echoed = line.plugin.callBytes("echo", input);
      input.fill(9);
      line.release();
      await held;
      assert.deepEqual(await echoed, new Uint8Array([1, 2, 3]));
    });

    await t.step(
      "an argument is read once: a getter cannot pass the check and change",
      async () => {
        let reads = 0;
        const args = [0];
        Object.defineProperty(args, 0, { get: () => reads++ === 0 ? 5 : "five" });
        assert.equal(await line.plugin.callI32("add", args), 36 + 5);
        assert.equal(reads, 1);
      },
    );
  },
);

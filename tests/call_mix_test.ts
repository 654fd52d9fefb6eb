/**
 * Many callers at once, each with a seeded mix of calls that succeed, trap,
 * run out of fuel or time, are aborted, call host functions that throw,
 * wait or call back into their own plugin, pass bytes small and large
 * (posted ahead or not), and read memory: every call settles, each with
 * its own result or a typed error, and the plugin serves calls afterwards.
 * In a worker, the calls waiting in line are posted ahead while others run
 * (see `worker/pipeline_test.ts`); inline, they run one by one.
 */

import assert from "node:assert/strict";
import { Capability, type Isolation, WasmError, type WasmPlugin } from "../mod.ts";
import { isolatedRuntime, ISOLATIONS } from "./_helpers.ts";
import { READ_WORKERS } from "./worker/_worker_helpers.ts";
import { COUNT_FUNCTION } from "./fixtures/wat.ts";

/**
 * `count(n)` loops n times; `noted(x)` returns twice what `env.note(x)`
 * returns; `forever` never returns; `trap` traps; `echo` returns its input
 * (bytes ABI, one buffer at 1024).
 */
const MIX_WAT = `(module
  (import "env" "note" (func $note (param i32) (result i32)))
  (memory (export "memory") 2)
  ${COUNT_FUNCTION}
  (func (export "noted") (param $x i32) (result i32)
    (i32.mul (call $note (local.get $x)) (i32.const 2)))
  (func (export "forever") (loop $again (br $again)))
  (func (export "trap") (unreachable))
  (func (export "alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "dealloc") (param i32 i32))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))`;

const CALLERS = 6;
const CALLS_PER_CALLER = 120;
/** Far more than the whole mix takes; reaching it means a call never settled. */
const SETTLE_WITHIN_MS = 60_000;

/** A deterministic pseudo-random sequence in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
}

/**
 * A plugin of `MIX_WAT` whose `env.note(x)` throws for multiples of 7. In a
 * worker, which waits for a host function's promise, it also calls back
 * into the plugin for multiples of 11 (refused: the call would wait for
 * itself) and waits for a timer for multiples of 5.
 */
async function mixPlugin(isolation: Isolation): Promise<{ plugin: WasmPlugin } & AsyncDisposable> {
  const runtime = isolatedRuntime(isolation, {
    resourceLimits: { maxFuel: 10_000_000_000, maxExecutionTimeMs: 10_000 },
  });
  const mix = { plugin: undefined as WasmPlugin | undefined };
  const note = (x: number) => {
    if (x % 7 === 0) throw new Error(`no ${x}`);
    return x;
  };
  const waitingNote = async (x: number) => {
    note(x);
    if (x % 11 === 0) await mix.plugin!.callI32("count", [1]);
    if (x % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    return x;
  };
  const linker = runtime.createLinker()
    .funcWrap("env", "note", isolation === "worker" ? waitingNote : note);
  const plugin = mix.plugin = await runtime.createPluginWithLinker(
    await runtime.compileWat("mix", MIX_WAT),
    { name: "mix", capabilities: [Capability.CallHostFunction] },
    linker,
  );
  return { plugin, [Symbol.asyncDispose]: () => runtime.close() };
}

/**
 * One call of the mix: resolves to what it came to ("ok", "aborted" or an
 * error's kind), or throws when a result is wrong.
 */
async function mixedCall(
  plugin: WasmPlugin,
  isolation: Isolation,
  random: () => number,
  id: number,
): Promise<string> {
  const controller = new AbortController();
  const aborts = random() < 0.1;
  if (aborts) setTimeout(() => controller.abort(new Error("aborted")), Math.floor(random() * 3));
  const signal = controller.signal;
  const pick = random();
  try {
    if (pick < 0.3) {
      const n = Math.floor(random() * 1000);
      assert.equal(await plugin.callI32("count", [n], { signal }), Math.max(n, 1));
    } else if (pick < 0.45) {
      const x = 1 + Math.floor(random() * 100);
      const fails = x % 7 === 0
        ? "host_function"
        : isolation === "worker" && x % 11 === 0
        ? "plugin_state"
        : undefined;
      try {
        assert.equal(await plugin.callI32("noted", [x], { signal }), 2 * x);
      } catch (err) {
        if (fails !== undefined && err instanceof WasmError) assert.equal(err.kind, fails);
        throw err;
      }
      assert.equal(fails, undefined, `noted(${x}) should have failed`);
    } else if (pick < 0.6) {
      // Above 16 KiB a call is not posted ahead (see `MAX_AHEAD_BYTES`).
      const length = random() < 0.2
        ? 16_384 + Math.floor(random() * 30_000)
        : Math.floor(random() * 64);
      const input = Uint8Array.from({ length }, (_, i) => (i * 31 + id) & 0xff);
      assert.deepEqual(await plugin.callBytes("echo", input, { signal }), input);
    } else if (pick < 0.65) {
      await plugin.callVoid("forever", [], { signal, timeoutMs: 1 + Math.floor(random() * 5) });
      assert.fail("forever returned");
    } else if (pick < 0.7) {
      await plugin.callVoid("trap", [], { signal });
      assert.fail("trap returned");
    } else if (pick < 0.75) {
      const fuel = 1000 + Math.floor(random() * 100_000);
      await plugin.callI32("count", [50_000_000], { signal, fuel });
      assert.fail("the fuel was not enforced");
    } else if (pick < 0.8) {
      assert.equal((await plugin.readMemory(1024, 8)).length, 8);
    } else if (pick < 0.9) {
      // Ends or times out, depending on the machine.
      const n = 200_000 + Math.floor(random() * 2_000_000);
      const timeoutMs = 1 + Math.floor(random() * 3);
      assert.equal(await plugin.callI32("count", [n], { signal, timeoutMs }), n);
    } else {
      const n = Math.floor(random() * 10);
      assert.equal(await plugin.callI32("count", [n], { signal }), Math.max(n, 1));
    }
    return "ok";
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    if (aborts && signal.aborted && err === signal.reason) return "aborted";
    assert.ok(err instanceof WasmError, `call ${id} failed with an untyped error: ${err}`);
    return err.kind;
  }
}

for (const isolation of ISOLATIONS) {
  Deno.test(`${isolation}: a seeded mix of callers at once all settle, each with its own outcome`, {
    permissions: { read: READ_WORKERS },
  }, async () => {
    await using mix = await mixPlugin(isolation);
    const state = mix.plugin.state;
    const outcomes = new Map<string, number>();
    let guard: ReturnType<typeof setTimeout> | undefined;
    const settled = Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        const random = seeded(caller + 1);
        for (let i = 0; i < CALLS_PER_CALLER; i++) {
          const outcome = await mixedCall(
            mix.plugin,
            isolation,
            random,
            caller * CALLS_PER_CALLER + i,
          );
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }),
    );
    try {
      await Promise.race([
        settled,
        new Promise((_, reject) => {
          guard = setTimeout(() => reject(new Error("a call never settled")), SETTLE_WITHIN_MS);
        }),
      ]);
    } finally {
      clearTimeout(guard);
    }
    // Every kind of outcome the mix is made of came up.
    for (const kind of ["ok", "timeout", "trap", "fuel_exhausted", "host_function"]) {
      assert.ok((outcomes.get(kind) ?? 0) > 0, `no "${kind}" in ${JSON.stringify([...outcomes])}`);
    }
    const unexpected = [...outcomes.keys()].filter((kind) =>
      !["ok", "aborted", "timeout", "trap", "fuel_exhausted", "host_function", "plugin_state"]
        .includes(kind)
    );
    assert.deepEqual(unexpected, []);
    assert.equal(await mix.plugin.callI32("count", [3]), 3);
    assert.equal(mix.plugin.state, state);
  });
}

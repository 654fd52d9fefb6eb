/**
 * Calls posted ahead: while a worker plugin's call runs, the calls waiting
 * behind it are posted to its worker already, which goes from one to the
 * next without a round trip to the host. Each still takes its turn on the
 * host: results, host functions, deadlines, stops and fuel come as if the
 * calls had run one by one.
 */

import assert from "node:assert/strict";
import { Capability, PluginStateError, TimeoutError, type WasmPlugin } from "../../mod.ts";
import { assertRejectsWith, workerRuntime } from "../_helpers.ts";
import { READ_WORKERS } from "./_worker_helpers.ts";
import { BUMP_ECHO_FUNCS, COUNT_FUNCTION } from "../fixtures/wat.ts";

/**
 * `count(n)` loops n times; `noted(x)` tells the host `x` and returns 2x;
 * `forever` never returns; `echo` returns its input (bytes ABI).
 */
const LINE_WAT = `(module
  (import "env" "note" (func $note (param i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  ${COUNT_FUNCTION}
  (func (export "noted") (param $x i32) (result i32)
    (call $note (local.get $x))
    (i32.mul (local.get $x) (i32.const 2)))
  (func (export "forever") (loop $again (br $again)))
  ${BUMP_ECHO_FUNCS})`;

/** Long enough that the calls made after it wait behind it. */
const SLOW = 20_000_000;

/** A worker plugin of `LINE_WAT` whose `env.note` pushes to `notes`. */
async function linePlugin(
  notes: number[] = [],
  limits: { maxExecutionTimeMs?: number } = {},
): Promise<{ plugin: WasmPlugin } & AsyncDisposable> {
  const runtime = workerRuntime({
    resourceLimits: { maxFuel: 10_000_000_000, maxExecutionTimeMs: 30_000, ...limits },
  });
  const plugin = await runtime.createPluginWithLinker(
    await runtime.compileWat("line", LINE_WAT),
    { name: "line", capabilities: [Capability.CallHostFunction] },
    runtime.createLinker().funcWrap("env", "note", (x: number) => void notes.push(x)),
  );
  return { plugin, [Symbol.asyncDispose]: () => runtime.close() };
}

Deno.test("Calls waiting behind a running call run in order, each with its own result", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using line = await linePlugin();
  const counts = [SLOW, 1, 2, 3, 5, 8, 13, 21];
  const results = await Promise.all(counts.map((n) => line.plugin.callI32("count", [n])));
  assert.deepEqual(results, counts);
  assert.equal((await line.plugin.metrics()).callCount, counts.length);
});

Deno.test("Calls posted ahead use the fuel they use one by one", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const counts = [SLOW, 10, 100, 1000, 7, 0];
  await using together = await linePlugin();
  await Promise.all(counts.map((n) => together.plugin.callI32("count", [n])));
  await using alone = await linePlugin();
  for (const n of counts) await alone.plugin.callI32("count", [n]);
  assert.equal(
    (await together.plugin.metrics()).fuelConsumed,
    (await alone.plugin.metrics()).fuelConsumed,
  );
  assert.ok((await alone.plugin.metrics()).fuelConsumed > 0);
});

Deno.test("Host functions of calls posted ahead run in call order", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const notes: number[] = [];
  await using line = await linePlugin(notes);
  const slow = line.plugin.callI32("count", [SLOW]);
  const noted = [1, 2, 3, 4, 5, 6].map((x) => line.plugin.callI32("noted", [x]));
  assert.equal(await slow, SLOW);
  assert.deepEqual(await Promise.all(noted), [2, 4, 6, 8, 10, 12]);
  assert.deepEqual(notes, [1, 2, 3, 4, 5, 6]);
});

Deno.test("Bytes calls posted ahead each get their own output", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using line = await linePlugin();
  const slow = line.plugin.callI32("count", [SLOW]);
  const inputs = [1, 2, 3, 4, 5].map((x) => new Uint8Array(x * 3).fill(x));
  const outputs = await Promise.all(inputs.map((input) => line.plugin.callBytes("echo", input)));
  assert.equal(await slow, SLOW);
  assert.deepEqual(outputs, inputs);
});

Deno.test("Large and small bytes calls waiting together come back whole and in order", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using line = await linePlugin();
  const slow = line.plugin.callI32("count", [SLOW]);
  // Large calls are not posted ahead (they would grow every channel): they wait their turn.
  const inputs = [64, 20_000, 16, 30_000, 8].map((n, i) => new Uint8Array(n).fill(i + 1));
  const outputs = await Promise.all(inputs.map((input) => line.plugin.callBytes("echo", input)));
  assert.equal(await slow, SLOW);
  assert.deepEqual(outputs, inputs);
});

/**
 * Keeps the host thread busy for `ms`, as a host busy elsewhere does: the
 * worker runs the calls posted to it meanwhile, and none of their answers
 * is taken.
 */
function keepHostBusy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) Atomics.load(HOST_BUSY, 0);
}
const HOST_BUSY = new Int32Array(1);

/**
 * What the two modules below share: `count(n)` loops n times; `spread`'s
 * output is `input[1] * 4096` bytes, each `input[0]` (bytes ABI).
 */
const SPREAD_FUNCTIONS = `
  (memory (export "memory") 32)
  (func (export "alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "dealloc") (param i32 i32))
  ${COUNT_FUNCTION}
  (func (export "spread") (param $ptr i32) (param $len i32) (result i64) (local $out i32)
    (local.set $out (i32.mul (i32.load8_u offset=1 (local.get $ptr)) (i32.const 4096)))
    (memory.fill (i32.const 4096) (i32.load8_u (local.get $ptr)) (local.get $out))
    (i64.or (i64.const 0x100000000000) (i64.extend_i32_u (local.get $out))))`;

/** `count` and `spread` (see {@linkcode SPREAD_FUNCTIONS}). */
const SPREAD_WAT = `(module ${SPREAD_FUNCTIONS})`;

Deno.test(
  "Calls posted ahead whose outputs are too long for a channel come back whole and in order",
  {
    permissions: { read: READ_WORKERS },
  },
  async () => {
    await using runtime = workerRuntime({ resourceLimits: { maxFuel: 10_000_000_000 } });
    const plugin = await runtime.createPluginFromWat(SPREAD_WAT);
    const spread = (fill: number, pages: number) =>
      plugin.callBytes("spread", new Uint8Array([fill, pages]));
    assert.deepEqual(await spread(9, 0), new Uint8Array(0));
    // Posted ahead behind the slow call: the worker answers the 16-page call while the host,
    // busy, has not taken the 25-page answer before it, so it waits for the bulk buffer.
    const slow = plugin.callI32("count", [SLOW]);
    const sizes = [25, 0, 16, 1, 30];
    const pending = sizes.map((pages, i) => spread(i + 1, pages));
    keepHostBusy(200);
    const outputs = await Promise.all(pending);
    assert.equal(await slow, SLOW);
    assert.deepEqual(outputs, sizes.map((pages, i) => new Uint8Array(pages * 4096).fill(i + 1)));
  },
);

/**
 * `count` and `spread` (see {@linkcode SPREAD_FUNCTIONS}); `shout(length)`
 * sends `length` bytes, each `length & 255`, to "a" with `host_send_message`
 * and returns its status.
 */
const SHOUT_WAT = `(module
  (import "env" "host_send_message" (func $send (param i32 i32 i32 i32) (result i32)))
  ${SPREAD_FUNCTIONS}
  (data (i32.const 0) "a")
  (func (export "shout") (param $length i32) (result i32)
    (memory.fill (i32.const 65536) (local.get $length) (local.get $length))
    (call $send (i32.const 0) (i32.const 1) (i32.const 65536) (local.get $length))))`;

Deno.test("A host call too long for a channel, posted ahead behind a long answer, waits for it", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using runtime = workerRuntime({ resourceLimits: { maxFuel: 10_000_000_000 } });
  const messages: Uint8Array[] = [];
  const plugin = await runtime.createPlugin(await runtime.compileWat("shout", SHOUT_WAT), {
    capabilities: [Capability.SendMessage],
    onMessage: ({ data }) => void messages.push(data),
  });
  assert.equal(await plugin.callI32("shout", [0]), 0);
  // The longest message a plugin may send (with its recipient, 64 KiB) is too long for a
  // channel once its call's other values are added: it goes through the bulk buffer.
  const longest = 65_535;
  const slow = plugin.callI32("count", [SLOW]);
  const results = [
    plugin.callBytes("spread", new Uint8Array([1, 25])),
    plugin.callI32("shout", [longest]),
    plugin.callBytes("spread", new Uint8Array([3, 16])),
    plugin.callI32("shout", [300]),
  ];
  keepHostBusy(200);
  assert.equal(await slow, SLOW);
  const [first, shouted, third, small] = await Promise.all(results);
  assert.deepEqual(first, new Uint8Array(25 * 4096).fill(1));
  assert.deepEqual(third, new Uint8Array(16 * 4096).fill(3));
  assert.deepEqual([shouted, small], [0, 0]);
  assert.deepEqual(messages.slice(1), [
    new Uint8Array(longest).fill(longest & 255),
    new Uint8Array(300).fill(300 & 255),
  ]);
});

Deno.test("A call posted ahead times out on its own deadline, and the calls behind it run", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using line = await linePlugin();
  const slow = line.plugin.callI32("count", [SLOW]);
  const stuck = line.plugin.callVoid("forever", [], { timeoutMs: 100 });
  const after = [line.plugin.callI32("count", [4]), line.plugin.callI32("noted", [5])];
  assert.equal(await slow, SLOW);
  await assertRejectsWith(() => stuck, TimeoutError);
  assert.deepEqual(await Promise.all(after), [4, 10]);
});

Deno.test(
  "A running call that times out takes back the calls posted behind it, which run after it",
  {
    permissions: { read: READ_WORKERS },
  },
  async () => {
    const notes: number[] = [];
    await using line = await linePlugin(notes, { maxExecutionTimeMs: 100 });
    const stuck = line.plugin.callVoid("forever", []);
    const after = [1, 2, 3].map((x) => line.plugin.callI32("noted", [x]));
    await assertRejectsWith(() => stuck, TimeoutError);
    assert.deepEqual(await Promise.all(after), [2, 4, 6]);
    assert.deepEqual(notes, [1, 2, 3]);
  },
);

Deno.test("stop() lets the running call end and refuses the calls posted behind it", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const notes: number[] = [];
  await using line = await linePlugin(notes);
  const slow = line.plugin.callI32("count", [SLOW]);
  const refused = [1, 2, 3].map((x) =>
    assertRejectsWith(() => line.plugin.callI32("noted", [x]), PluginStateError)
  );
  const stopped = line.plugin.stop();
  assert.equal(await slow, SLOW);
  await Promise.all(refused);
  await stopped;
  assert.deepEqual(notes, []);
  assert.equal(line.plugin.state, "stopped");
});

Deno.test("stop({ abort: true }) ends the running call and refuses the calls posted behind it", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const notes: number[] = [];
  await using line = await linePlugin(notes);
  const stuck = line.plugin.callVoid("forever", []);
  const refused = [1, 2].map((x) =>
    assertRejectsWith(() => line.plugin.callI32("noted", [x]), PluginStateError)
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  const stopped = line.plugin.stop({ abort: true });
  await assertRejectsWith(() => stuck, PluginStateError);
  await Promise.all(refused);
  await stopped;
  assert.deepEqual(notes, []);
});

Deno.test("A call posted ahead whose signal aborts while it waits ends with the reason", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const notes: number[] = [];
  await using line = await linePlugin(notes);
  const controller = new AbortController();
  const slow = line.plugin.callI32("count", [SLOW]);
  const aborted = assert.rejects(
    line.plugin.callI32("noted", [9], { signal: controller.signal }),
    { message: "not wanted any more" },
  );
  const after = line.plugin.callI32("noted", [10]);
  controller.abort(new Error("not wanted any more"));
  assert.equal(await slow, SLOW);
  await aborted;
  assert.equal(await after, 20);
  assert.deepEqual(notes, [10]);
});

Deno.test("Memory access is not overtaken by calls made after it", {
  permissions: { read: READ_WORKERS },
}, async () => {
  await using line = await linePlugin();
  const slow = line.plugin.callI32("count", [SLOW]);
  // The echo's input goes where the read looks (its first allocation is at 1024).
  const read = line.plugin.readMemory(1024, 1);
  const echoed = line.plugin.callBytes("echo", new Uint8Array([2]));
  assert.equal(await slow, SLOW);
  assert.deepEqual(await read, new Uint8Array([0]));
  assert.deepEqual(await echoed, new Uint8Array([2]));
  assert.deepEqual(await line.plugin.readMemory(1024, 1), new Uint8Array([2]));
});

Deno.test("stop() from a listener between two calls refuses the calls posted behind", {
  permissions: { read: READ_WORKERS },
}, async () => {
  const notes: number[] = [];
  await using line = await linePlugin(notes);
  let stopped: Promise<void> | undefined;
  // The first call's end: the plugin is idle for a moment, the calls behind it are posted.
  line.plugin.addEventListener("executed", () => stopped ??= line.plugin.stop(), { once: true });
  const slow = line.plugin.callI32("count", [SLOW]);
  const refused = [1, 2, 3].map((x) =>
    assertRejectsWith(() => line.plugin.callI32("noted", [x]), PluginStateError)
  );
  const started = performance.now();
  assert.equal(await slow, SLOW);
  await Promise.all(refused);
  await stopped;
  assert.equal(line.plugin.state, "stopped");
  // Refused at once, not after a deadline or a grace period.
  assert.ok(performance.now() - started < 5_000);
});

Deno.test(
  "A crowd of plugins, more busy workers than four a core, answers every call in each caller's order",
  {
    permissions: { read: READ_WORKERS },
  },
  async () => {
    // Far above the crowd's mark (four busy workers a core), where the host wakes the workers
    // it posted to once its batch of posts is done, and sleeps on the doorbell that they ring:
    // a wake-up lost on either side leaves a caller waiting until its call times out. Such a
    // race shows only now and then, hence several rounds of many calls.
    const plugins = Math.min(48, 12 * navigator.hardwareConcurrency);
    const callers = 4;
    const calls = 80;
    const rounds = 5;
    const runtime = workerRuntime({ resourceLimits: { maxInstances: plugins + 1 } });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("a caller of the crowd stalled")), 60_000);
    });
    try {
      const compiled = await runtime.compileWat("count", `(module ${COUNT_FUNCTION})`);
      const crowd = await Promise.all(
        Array.from({ length: plugins }, () => runtime.createPlugin(compiled)),
      );
      const caller = async (plugin: WasmPlugin, offset: number): Promise<number[]> => {
        const results: number[] = [];
        for (let i = 0; i < calls; i++) {
          results.push(await plugin.callI32("count", [offset + i + 1]));
        }
        return results;
      };
      const expected = Array.from(
        { length: callers },
        (_, c) => Array.from({ length: calls }, (_, i) => 1000 * c + i + 1),
      );
      for (let round = 0; round < rounds; round++) {
        const answered = await Promise.race([
          Promise.all(
            crowd.flatMap((plugin) =>
              Array.from({ length: callers }, (_, c) => caller(plugin, 1000 * c))
            ),
          ),
          stalled,
        ]);
        assert.deepEqual(answered, crowd.flatMap(() => expected));
      }
      for (const plugin of crowd) {
        assert.equal((await plugin.metrics()).callCount, rounds * callers * calls);
      }
    } finally {
      clearTimeout(timer);
      await runtime.close();
    }
  },
);

/**
 * A runtime keeps the idle worker of a plugin that stopped or parked, and
 * the next plugin with the same Deno permissions starts in it instead of a
 * new thread (`new Worker()` holds the host's thread while it starts). Only
 * a clean worker is kept: none of its guest's host promises is pending;
 * one with other permissions is never shared; kept workers end after a
 * short idle time, and with the runtime.
 */
import assert from "node:assert/strict";
import { Capability, type RuntimeConfig, TimeoutError, WasmRuntime } from "../../mod.ts";
import { type InternalOptions, withInternalOptions } from "../../src/backend/_internal_options.ts";
import { type KeptWorker, WorkerPool } from "../../src/worker/_worker_pool.ts";
import { assertRejectsWith, putString, workerRuntime } from "../_helpers.ts";
import { BYTES_WAT, hostFunctionsWat, pathOpenWat } from "../fixtures/wat.ts";
import { runToExit } from "../hostile/_threads.ts";
import { FIXTURES, READ_WORKERS, runFixture } from "./_worker_helpers.ts";

/** The worker entry whose `fetch` misbehaves on request (see the fixture). */
const FAULTY_WORKER = new URL("./fixtures/faulty_worker.ts", import.meta.url);

/** `bump()` adds one to a global and returns it; `seen()` reads memory at 0. */
const COUNTER_WAT = `(module
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (func (export "bump") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
  (func (export "seen") (result i32) (i32.load (i32.const 0)))
  (func (export "mark") (i32.store (i32.const 0) (i32.const 99))))`;

/** A plugin that naps through the host's timer: its guest can suspend. */
const NAPPER_WAT = `(module
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (func (export "nap") (param $ms i32) (result i32) (call $sleep (local.get $ms)) (i32.const 7)))`;

/** `open()` opens `faulty_worker.ts` of the preopen (fd 3) for reading, leaves it open, and returns the errno. */
const OPENER_WAT = pathOpenWat({
  exportName: "open",
  path: "faulty_worker.ts",
  oflags: 0,
  rights: 2,
});

/**
 * How many of this process's file descriptors are open on `path`, as `ls`
 * lists `/proc/<pid>/fd` (Deno asks for every permission to read it itself).
 */
async function openDescriptorsOf(path: string): Promise<number> {
  const { stdout } = await new Deno.Command("ls", { args: ["-l", `/proc/${Deno.pid}/fd`] })
    .output();
  const lines = new TextDecoder().decode(stdout).split("\n");
  return lines.filter((line) => line.endsWith(` -> ${path}`)).length;
}

/** A worker runtime that counts its workers: new threads and kept ones taken again. */
function countingRuntime(config: RuntimeConfig = {}, internal: InternalOptions = {}): {
  runtime: WasmRuntime;
  counts: { spawned: number; reused: number };
} {
  const counts = { spawned: 0, reused: 0 };
  const runtime = workerRuntime(withInternalOptions(config, {
    ...internal,
    onWorkerEvent: (event) => {
      if (event === "spawned") counts.spawned++;
      if (event === "reused") counts.reused++;
    },
  }));
  return { runtime, counts };
}

Deno.test("A stopped plugin's worker serves the next plugin with the same permissions", {
  permissions: { read: READ_WORKERS, run: ["ls"], net: ["127.0.0.1"] },
}, async (t) => {
  await t.step("the next plugin starts in it, with nothing of the one before", async () => {
    const { runtime, counts } = countingRuntime();
    await using _runtime = runtime;
    const first = await runtime.createPluginFromWat(COUNTER_WAT);
    assert.equal(await first.callI32("bump"), 1);
    await first.callVoid("mark");
    await first.stop();
    const second = await runtime.createPluginFromWat(COUNTER_WAT);
    assert.equal(counts.reused, 1, "the second plugin did not start in the first one's worker");
    assert.equal(await second.callI32("bump"), 1, "the global carried over");
    assert.equal(await second.callI32("seen"), 0, "the memory carried over");
    await second.stop();
  });

  await t.step("a plugin with other permissions gets a worker of its own", async () => {
    const { runtime, counts } = countingRuntime();
    await using _runtime = runtime;
    const reader = { capabilities: [Capability.FileSystem], allowedPaths: { read: [FIXTURES] } };
    await (await runtime.createPluginFromWat(COUNTER_WAT, reader)).stop();
    const plain = await runtime.createPluginFromWat(COUNTER_WAT);
    assert.equal(counts.reused, 0, "a worker with read permission served a plugin without");
    assert.equal(await plain.callI32("bump"), 1);
    const again = await runtime.createPluginFromWat(COUNTER_WAT, reader);
    assert.equal(counts.reused, 1, "the reader's kept worker did not serve the next reader");
    assert.equal(await again.callI32("bump"), 1);
  });

  await t.step("a guest whose host promises all settled leaves its worker clean", async () => {
    const { runtime, counts } = countingRuntime();
    await using _runtime = runtime;
    const napper = await runtime.createPluginFromWat(NAPPER_WAT, {
      capabilities: [Capability.Timer],
    });
    assert.equal(await napper.callI32("nap", [1]), 7);
    await napper.stop();
    await (await runtime.createPluginFromWat(COUNTER_WAT)).stop();
    assert.equal(counts.reused, 1, "the worker of a guest whose nap ended was not kept");
  });

  await t.step("a host promise still pending after its call ends the worker", async () => {
    const { runtime, counts } = countingRuntime({}, { workerUrl: FAULTY_WORKER });
    await using _runtime = runtime;
    const fetcher = () =>
      runtime.createPluginFromWat(hostFunctionsWat("host_http_fetch"), {
        capabilities: [Capability.NetworkAccess],
        allowedHosts: ["127.0.0.1:1"],
      });
    const plugin = await fetcher();
    const [ptr, len] = await putString(
      plugin,
      0,
      JSON.stringify({ url: "http://127.0.0.1:1/hang" }),
    );
    // The call ends at its timeout; the fetch it waited on never does.
    await assertRejectsWith(
      () => plugin.callI32("host_http_fetch", [ptr, len, 1024, 1024], { timeoutMs: 50 }),
      TimeoutError,
    );
    await plugin.stop();
    await (await fetcher()).stop();
    assert.equal(counts.reused, 0, "a worker with a fetch still pending was kept");
  });

  await t.step(
    "a kept worker that dies as it is handed a plugin is replaced by a new one",
    async () => {
      const { runtime, counts } = countingRuntime({}, { workerUrl: FAULTY_WORKER });
      await using _runtime = runtime;
      const network = { capabilities: [Capability.NetworkAccess], allowedHosts: ["127.0.0.1:1"] };
      const plugin = await runtime.createPluginFromWat(
        hostFunctionsWat("host_http_fetch"),
        network,
      );
      const [ptr, len] = await putString(
        plugin,
        0,
        JSON.stringify({ url: "http://127.0.0.1:1/crash-next" }),
      );
      await plugin.callI32("host_http_fetch", [ptr, len, 1024, 1024]);
      await plugin.stop();
      // The kept worker takes the next setup and dies of it: the plugin starts all the same.
      const next = await runtime.createPluginFromWat(COUNTER_WAT, network);
      assert.deepEqual(counts, { spawned: 2, reused: 0 });
      assert.equal(await next.callI32("bump"), 1);
      await next.stop();
    },
  );

  await t.step("a worker whose call had to be stopped serves the next plugin", async () => {
    const { runtime, counts } = countingRuntime();
    await using _runtime = runtime;
    const looper = await runtime.createPluginFromWat(
      `(module (func (export "spin") (loop $l (br $l))))`,
    );
    const spin = looper.callVoid("spin");
    const stopped = assert.rejects(spin);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await looper.stop({ abort: true });
    await stopped;
    const next = await runtime.createPluginFromWat(COUNTER_WAT);
    assert.equal(counts.reused, 1, "the worker the loop was stopped in was not kept");
    assert.equal(await next.callI32("bump"), 1);
  });

  await t.step("files its guest opened through WASI are closed when a worker is kept", async () => {
    const { runtime, counts } = countingRuntime();
    await using _runtime = runtime;
    const opener = {
      capabilities: [Capability.Wasi, Capability.FileSystem],
      wasi: { preopens: { "/fixtures": FIXTURES } },
    };
    const file = `${FIXTURES}faulty_worker.ts`;
    const plugin = await runtime.createPluginFromWat(OPENER_WAT, opener);
    for (let i = 0; i < 3; i++) assert.equal(await plugin.callI32("open"), 0);
    assert.equal(await openDescriptorsOf(file), 3);
    await plugin.stop();
    assert.equal(await openDescriptorsOf(file), 0, "the kept worker holds the guest's files open");
    await (await runtime.createPluginFromWat(OPENER_WAT, opener)).stop();
    assert.equal(counts.reused, 1);
  });

  await t.step("with maxIdle 0, every plugin starts a worker", async () => {
    const { runtime, counts } = countingRuntime({ workerPool: { maxIdle: 0 } });
    await using _runtime = runtime;
    await (await runtime.createPluginFromWat(COUNTER_WAT)).stop();
    await (await runtime.createPluginFromWat(COUNTER_WAT)).stop();
    assert.deepEqual(counts, { spawned: 2, reused: 0 });
  });

  await t.step("a worker whose plugins' memories add up past maxServedBytes is ended", async () => {
    const page = 65_536;
    const { runtime, counts } = countingRuntime({ workerPool: { maxServedBytes: 3 * page } });
    await using _runtime = runtime;
    const grower = `(module (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`;
    await (await runtime.createPluginFromWat(grower)).stop(); // 1 page served
    const second = await runtime.createPluginFromWat(grower);
    assert.equal(counts.reused, 1);
    assert.equal(await second.callI32("grow", [2]), 1);
    await second.stop(); // 1 + 3 pages served: over the bound
    await (await runtime.createPluginFromWat(grower)).stop();
    assert.deepEqual(counts, { spawned: 3, reused: 1 }, "the worker was kept past its bound");
  });

  await t.step("the buffer a large message grew counts toward maxServedBytes", async () => {
    // 2 MiB of memory; the channel's buffer starts small and grows with the largest message.
    const wide = BYTES_WAT.replace('(memory (export "memory") 1)', '(memory (export "memory") 32)');
    const keptAfter = async (input: Uint8Array): Promise<boolean> => {
      const { runtime, counts } = countingRuntime({ workerPool: { maxServedBytes: 3 * 2 ** 20 } });
      await using _runtime = runtime;
      const plugin = await runtime.createPluginFromWat(wide);
      assert.deepEqual(await plugin.callBytes("echo", input), input);
      await plugin.stop();
      await (await runtime.createPluginFromWat(wide)).stop();
      return counts.reused === 1;
    };
    assert.equal(await keptAfter(new Uint8Array(16)), true, "a 2 MiB plugin was not kept");
    assert.equal(
      await keptAfter(new Uint8Array(2 ** 20).fill(7)),
      false,
      "the 1 MiB message's buffer was not counted",
    );
  });
});

Deno.test("Kept workers end with their runtime, and by themselves after their idle time", {
  permissions: { run: [Deno.execPath()], read: true },
}, async (t) => {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const script = (idleMs: number, close: boolean) => `
    import { WasmRuntime } from ${JSON.stringify(mod)};
    const runtime = new WasmRuntime({
      execution: { isolation: "worker" },
      idleTimeoutMs: Infinity,
      workerPool: { idleMs: ${idleMs} },
    });
    const plugin = await runtime.createPluginFromWat('(module (func (export "f") (result i32) i32.const 7))');
    const value = await plugin.callI32("f");
    await plugin.stop();
    ${close ? "await runtime.close();" : ""}
    console.log(value);`;

  await t.step("close() ends them at once", async () => {
    // Kept for a minute otherwise: the process would outlive runToExit's 15 s.
    assert.equal(await runToExit(script(60_000, true)), "7");
  });

  await t.step("left alone, they end after their idle time", async () => {
    const start = performance.now();
    assert.equal(await runToExit(script(300, false)), "7");
    assert.ok(performance.now() - start < 10_000);
  });
});

/** A worker as the pool keeps it. */
function kept(worker: Worker, name = "", servedBytes = 0): KeptWorker {
  return { worker, name, servedBytes };
}

Deno.test("A worker that fails reports the plugin it served, and Deno prints nothing of it", async () => {
  // In a process of its own, whose stderr is the test's to read.
  const soakSources = new URL("../soak/", import.meta.url).pathname;
  const { code, stdout, stderr } = await runFixture("crash_report.ts", [], 30_000, [soakSources]);
  const printed = new TextDecoder().decode(stderr);
  assert.equal(code, 0, printed);
  const failure = JSON.parse(new TextDecoder().decode(stdout));
  assert.equal(failure.kind, "worker_crashed");
  // The worker was started for alpha, and Deno would have named it so.
  assert.match(failure.message, /crashed on purpose \(while it served plugin "beta"\)/);
  assert.match(failure.cause, /_faulty_worker\.ts/, "the worker's stack is not the cause");
  assert.doesNotMatch(printed, /Uncaught/);
});

Deno.test("WorkerPool keeps at most maxIdle workers, by key, most recent first", async () => {
  const source = "self.onmessage = (e) => self.postMessage(e.data);";
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const started: Worker[] = [];
  const start = () => {
    const worker = new Worker(url, { type: "module" });
    started.push(worker);
    return worker;
  };
  const pool = new WorkerPool({ maxIdle: 2, idleMs: 60_000 });
  try {
    const [a, b, c] = [start(), start(), start()];
    pool.give("x", kept(a));
    pool.give("y", kept(b));
    pool.give("x", kept(c)); // full: the oldest (a) is ended
    assert.equal(pool.size, 2);
    assert.equal(pool.take("z"), undefined);
    assert.equal(pool.take("x")?.worker, c);
    assert.equal(pool.take("x"), undefined, "a was kept past maxIdle");
    assert.equal(pool.take("y")?.worker, b);
    // A kept worker still answers.
    const echoed = new Promise((resolve) => (c.onmessage = (event) => resolve(event.data)));
    c.postMessage("hi");
    assert.equal(await echoed, "hi");
    pool.close();
    pool.give("x", kept(c));
    assert.equal(pool.size, 0, "a closed pool kept a worker");
  } finally {
    pool.close();
    for (const worker of started) worker.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("WorkerPool gives a plugin a worker started with its name when it has one", () => {
  const source = "self.onmessage = () => {};";
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const [a, b] = ["a", "b"].map((name) => new Worker(url, { type: "module", name }));
  const pool = new WorkerPool({ maxIdle: 4, idleMs: 60_000 });
  try {
    pool.give("x", kept(a!, "a", 10));
    pool.give("x", kept(b!, "b", 20));
    // The most recent would be b: a restarted plugin "a" gets a's worker, named for it.
    assert.deepEqual(pool.take("x", "a"), kept(a!, "a", 10));
    // Without a match, the most recent of the key.
    assert.deepEqual(pool.take("x", "c"), kept(b!, "b", 20));
  } finally {
    pool.close();
    a!.terminate();
    b!.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("workerPool is checked like the rest of the runtime config", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [
      "four",
      TypeError,
      /'workerPool': expected an object \{ maxIdle\?, idleMs\?, maxServedBytes\? \}, received string/,
    ],
    [{ maxIdle: -1 }, RangeError, /'workerPool\.maxIdle' = -1: it must be an integer ≥ 0/],
    [{ maxIdle: 1.5 }, RangeError, /'workerPool\.maxIdle' = 1\.5/],
    [{ maxIdle: "4" }, TypeError, /'workerPool\.maxIdle': expected a number, received string "4"/],
    [
      { idleMs: NaN },
      RangeError,
      /'workerPool\.idleMs' = NaN: it must be a number of milliseconds/,
    ],
    [{ idleMs: Infinity }, RangeError, /'workerPool\.idleMs' = Infinity/],
    [
      { maxServedBytes: -1 },
      RangeError,
      /'workerPool\.maxServedBytes' = -1: it must be an integer/,
    ],
    [{ maxServedBytes: null }, TypeError, /'workerPool\.maxServedBytes': expected a number/],
    [{ maxIdel: 4 }, TypeError, /maxIdel/],
  ];
  for (const [workerPool, type, message] of cases) {
    assert.throws(
      () => new WasmRuntime({ workerPool } as RuntimeConfig),
      (err: unknown) => err instanceof type && message.test((err as Error).message),
      `workerPool ${JSON.stringify(workerPool)}`,
    );
  }
  // Within range: accepted.
  new WasmRuntime({ workerPool: { maxIdle: 0, idleMs: 0 } });
});

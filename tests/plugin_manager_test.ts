import assert from "node:assert/strict";
import {
  Capability,
  CompilationError,
  ImportNotFoundError,
  PluginEvent,
  type PluginHandle,
  PluginManager,
  PluginNotFoundError,
  PluginStateError,
  TrapError,
  WasmPluginManager,
  type WasmRuntime,
} from "../mod.ts";
import {
  assertRejectsWith,
  assertThrowsWith,
  bytesOf,
  delay,
  holdingTool,
  inlineRuntime,
  PLUGIN_EVENT_TYPES,
  putString,
  testEachIsolation,
} from "./_helpers.ts";
import { answerBinary } from "./fixtures/binary.ts";
import { MAX_MODULE_FILE_BYTES, readModuleFile } from "../src/_module_file.ts";
import { BYTES_WAT, CALLS_WAT, hostFunctionsWat, toolCallWat } from "./fixtures/wat.ts";

const INIT_TRAPS_WAT = '(module (func (export "init") unreachable))';

/** Records every event the manager dispatches, as `type pluginId`. */
function recordEvents(manager: PluginManager): PluginEvent[] {
  const events: PluginEvent[] = [];
  for (const type of PLUGIN_EVENT_TYPES) {
    manager.addEventListener(type, (event) => void events.push(event));
  }
  return events;
}

function summary(events: readonly PluginEvent[]): string[] {
  return events.map((event) => `${event.type} ${event.pluginId}`);
}

Deno.test("new PluginManager() wraps a runtime", { permissions: "none" }, async (t) => {
  await t.step("the runtime is kept", async () => {
    await using runtime = inlineRuntime();
    await using manager = new PluginManager(runtime);
    assert.equal(manager.runtime, runtime);
    assert.ok(manager instanceof EventTarget);
  });
  await t.step("WasmPluginManager is the same class", () => {
    assert.equal(WasmPluginManager, PluginManager);
  });
  await t.step("something other than a runtime is a TypeError", () => {
    assertThrowsWith(() => new PluginManager({} as WasmRuntime), TypeError, {
      message: "Cannot create a manager: expected a WasmRuntime, received an object",
    });
  });
});

Deno.test("PluginManager.close() called twice answers once every plugin is unloaded", {
  permissions: "none",
}, async () => {
  await using runtime = inlineRuntime();
  const manager = new PluginManager(runtime);
  const { release } = holdingTool(runtime, "holdx");
  const handle = await manager.loadWat(toolCallWat("holdx"), {
    capabilities: [Capability.CallTool],
  });
  const running = manager.callI32(handle, "call");
  const first = manager.close();
  const second = manager.close();
  let secondDone = false;
  second.then(() => secondDone = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  // The plugin's call still runs: neither close is done.
  assert.equal(secondDone, false);
  release();
  await running;
  await second;
  assert.deepEqual(manager.listPlugins(), []);
  assert.equal(runtime.pluginCount, 0);
  await first;
});

testEachIsolation("PluginManager.close() waits for the unloads begun before it", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  await using runtime = createRuntime();
  const { release } = holdingTool(runtime, "holdx");
  const manager = new PluginManager(runtime);
  const seen: string[] = [];
  const subscription = manager.subscribe();
  const reading = (async () => {
    for await (const event of subscription) seen.push(event.type);
    seen.push("end");
  })();
  const handle = await manager.loadWat(toolCallWat("holdx"), {
    capabilities: [Capability.CallTool],
  });
  const running = manager.callI32(handle, "call");
  const unloading = manager.unload(handle);
  let closed = false;
  const closing = manager.close().then(() => closed = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  // The plugin's call still runs: its unload, and so the close, are not done.
  assert.equal(closed, false);
  release();
  await Promise.all([running, unloading, closing, reading]);
  assert.equal(seen.at(-2), "unloaded");
  assert.equal(seen.at(-1), "end");
});

testEachIsolation("PluginManager emits no event of a plugin after its unloaded event", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  // An initialize() that failed as the plugin stopped behind the manager's back emitted its
  // error after "unloaded" (inline): with the id reloaded, it looked like the new plugin's.
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime, { anomaly: false });
  const log: string[] = [];
  for (const type of ["loaded", "unloaded", "error", "initialized"] as const) {
    manager.addEventListener(type, (event) => void log.push(event.type));
  }
  const compiled = await runtime.compileWat("m", '(module (func (export "init")))');
  const handle = await manager.loadCompiled(compiled, { id: "a" });
  const stopping = manager.get(handle).stop();
  const refused = assert.rejects(manager.initialize(handle), PluginStateError);
  await stopping;
  await manager.loadCompiled(compiled, { id: "a" });
  await refused;
  const unloaded = log.indexOf("unloaded");
  assert.deepEqual(log.slice(unloaded), ["unloaded", "loaded"], log.join());
});

testEachIsolation("PluginManager.initialize() of a ready plugin during a call emits nothing", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  // While the call ran the state said "running", and a second "initialized" came out.
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);
  const initialized: string[] = [];
  manager.addEventListener("initialized", (event) => void initialized.push(event.pluginId));
  const handle = await manager.loadWat(
    `(module (import "env" "host_sleep_ms" (func $sleep (param i32)))
      (func (export "init")) (func (export "nap") (call $sleep (i32.const 20))))`,
    { id: "p", capabilities: [Capability.Timer] },
  );
  await manager.initialize(handle);
  const running = manager.callVoid(handle, "nap");
  await manager.initialize(handle);
  await running;
  assert.deepEqual(initialized, ["p"]);
});

testEachIsolation("PluginManager emits a start function's messages after loaded, or not at all", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  // They came before "loaded"; a load refused for its id sent them under the other plugin's;
  // a load that close() stopped sent them for a plugin never loaded.
  await using runtime = createRuntime();
  const manager = new PluginManager(runtime);
  const log: string[] = [];
  for (const type of ["loaded", "unloaded", "message"] as const) {
    manager.addEventListener(type, (event) => void log.push(`${type}:${event.pluginId}`));
  }
  const wat =
    `(module (import "env" "host_send_message" (func $m (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1) (data (i32.const 0) "tohi")
    (func $s (drop (call $m (i32.const 0) (i32.const 2) (i32.const 2) (i32.const 2)))) (start $s))`;
  const config = { id: "a", capabilities: [Capability.SendMessage] };
  const loads = await Promise.allSettled([
    manager.loadWat(wat, config),
    manager.loadWat(wat, config),
  ]);
  assert.deepEqual(loads.map((load) => load.status).sort(), ["fulfilled", "rejected"]);
  const late = manager.loadWat(wat, { ...config, id: "b" });
  const refused = assert.rejects(late, PluginStateError);
  await manager.close();
  await refused;
  assert.deepEqual(log, ["loaded:a", "message:a", "unloaded:a"]);
});

testEachIsolation("PluginManager.close() answers after a load in flight stopped its plugin", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  // In a worker the plugin was stopped after close() answered: still counted, the next
  // plugin was refused by maxInstances.
  await using runtime = createRuntime({ resourceLimits: { maxInstances: 1 } });
  const manager = new PluginManager(runtime);
  const compiled = await runtime.compileWat("adder", "(module)");
  const loading = manager.loadCompiled(compiled, { id: "late" });
  const refused = assert.rejects(loading, PluginStateError);
  await manager.close();
  await using next = await runtime.createPluginFromWat("(module)");
  assert.equal(next.state, "created");
  await refused;
});

Deno.test("PluginManager lets go of a plugin stopped behind its back", {
  permissions: "none",
}, async (t) => {
  await t.step("by the plugin's own stop()", async () => {
    await using runtime = inlineRuntime();
    await using manager = new PluginManager(runtime);
    const unloaded: string[] = [];
    manager.addEventListener("unloaded", (event) => void unloaded.push(event.pluginId));
    const handle = await manager.loadWat(CALLS_WAT, { id: "a" });
    await manager.get(handle).stop();
    assert.deepEqual(manager.listPlugins(), []);
    assert.deepEqual(unloaded, ["a"]);
    assert.equal(manager.stats().activePlugins, 0);
    assert.equal(manager.stats().totalUnloaded, 1);
    // Its id is free again.
    assert.equal((await manager.loadWat(CALLS_WAT, { id: "a" })).id, "a");
  });

  await t.step("by runtime.close()", async () => {
    const runtime = inlineRuntime();
    await using manager = new PluginManager(runtime);
    await manager.loadWat(CALLS_WAT);
    await manager.loadWat(CALLS_WAT);
    await runtime.close();
    assert.deepEqual(manager.listPlugins(), []);
    assert.equal(manager.stats().activePlugins, 0);
    assert.equal(manager.stats().totalUnloaded, 2);
  });
});

testEachIsolation("PluginManager loads plugins from WAT, bytes, compiled modules and files", {
  permissions: { read: ["examples", "tests/cli/fixtures"] },
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);

  await t.step("loadWat() returns a handle with a generated id", async () => {
    const handle = await manager.loadWat(CALLS_WAT);
    assert.deepEqual(handle, { id: "plugin-1" });
    assert.ok(Object.isFrozen(handle));
    assert.equal(manager.get(handle).name, "plugin");
  });

  await t.step("load() takes a binary and a config", async () => {
    const handle = await manager.load(answerBinary(), { id: "answer", name: "answerer" });
    assert.equal(handle.id, "answer");
    assert.equal(manager.get(handle).name, "answerer");
    assert.equal(await manager.callI32(handle, "answer"), 42);
  });

  await t.step("loadCompiled() shares one compiled module", async () => {
    const compiled = await runtime.compileWat("calls", CALLS_WAT);
    const a = await manager.loadCompiled(compiled);
    const b = await manager.loadCompiled(compiled, { name: "b" });
    assert.notEqual(a.id, b.id);
    assert.deepEqual([manager.get(a).name, manager.get(b).name], ["calls", "b"]);
  });

  await t.step("loadFile() reads .wat files and names the plugin after the file", async () => {
    const handle = await manager.loadFile("examples/wat/math.wat");
    assert.equal(manager.get(handle).name, "math");
    assert.equal(await manager.callI32(handle, "factorial", [5]), 120);
    const url = new URL("../examples/wat/greet.wat", import.meta.url);
    const greet = await manager.loadFile(url, { name: "greeter" });
    assert.equal(manager.get(greet).name, "greeter");
    // Its bytes as wat2wasm reads them: decoded as UTF-8 first, a string's byte 0xff was
    // U+FFFD (EF BF BD).
    const raw = await manager.loadFile("tests/cli/fixtures/not_utf8.wat");
    assert.equal(await manager.callI32(raw, "b0"), 255);
    // A binary module is one whatever its name, as the CLI reads it.
    const binary = await manager.loadFile("tests/cli/fixtures/binary_named.wat");
    assert.equal(await manager.callI32(binary, "f"), 7);
    // And text that starts as WAT does is WAT whatever its name.
    const text = await manager.loadFile("tests/cli/fixtures/text_named.wasm");
    assert.equal(await manager.callI32(text, "f"), 9);
    await Promise.all([raw, binary, text].map((handle) => manager.unload(handle)));
  });

  await t.step("a file that does not exist rejects with Deno's NotFound", async () => {
    await assertRejectsWith(() => manager.loadFile("examples/wat/nope.wasm"), Deno.errors.NotFound);
  });

  await t.step("a duplicate id is a TypeError and leaves the first plugin alone", async () => {
    const before = runtime.pluginCount;
    await assertRejectsWith(() => manager.loadWat(CALLS_WAT, { id: "answer" }), TypeError, {
      message: 'Cannot load plugin "answer": a plugin with that id is already loaded',
    });
    assert.equal(runtime.pluginCount, before);
    assert.equal(await manager.callI32({ id: "answer" }, "answer"), 42);
  });

  await t.step("concurrent loads with one id keep one plugin", async () => {
    const before = runtime.pluginCount;
    const results = await Promise.allSettled([
      manager.loadWat(CALLS_WAT, { id: "twin" }),
      manager.loadWat(CALLS_WAT, { id: "twin" }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    assert.equal(runtime.pluginCount, before + 1);
  });

  await t.step("an id whose plugin is still unloading is taken too", async () => {
    const unloading = new PluginManager(runtime);
    const { release } = holdingTool(runtime, "holdx");
    const held = await unloading.loadWat(toolCallWat("holdx"), {
      id: "x",
      capabilities: [Capability.CallTool],
    });
    const running = unloading.callI32(held, "call");
    const unloaded = unloading.unload(held);
    // Its events still carry "x": a new "x" would be taken for it, and then for gone.
    await assertRejectsWith(() => unloading.loadWat(CALLS_WAT, { id: "x" }), TypeError, {
      message: 'Cannot load plugin "x": a plugin with that id is still unloading',
    });
    release();
    await running;
    await unloaded;
    assert.equal((await unloading.loadWat(CALLS_WAT, { id: "x" })).id, "x");
    await unloading.close();
  });

  await t.step("generated ids skip ids that are taken", async () => {
    await using other = new PluginManager(runtime);
    assert.equal((await other.loadWat(CALLS_WAT, { id: "plugin-1" })).id, "plugin-1");
    assert.equal((await other.loadWat(CALLS_WAT)).id, "plugin-2");
  });
});

testEachIsolation("PluginManager.loadFile() fetches http URLs", {
  permissions: { net: ["127.0.0.1"], read: ["examples"] },
}, async (t, { createRuntime }) => {
  const wat = await Deno.readTextFile("examples/wat/greet.wat");
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/greet.wat"
        ? new Response(wat)
        : new Response("no", { status: 404 }),
  );
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);
  const base = `http://127.0.0.1:${server.addr.port}`;

  await t.step("a served .wat file loads", async () => {
    const handle = await manager.loadFile(new URL(`${base}/greet.wat`));
    assert.equal(manager.get(handle).name, "greet");
    assert.equal(await manager.callI32(handle, "greet_len"), 13);
  });

  await t.step("an error status is a TypeError", async () => {
    await assertRejectsWith(() => manager.loadFile(new URL(`${base}/missing.wasm`)), TypeError, {
      message: `Cannot load ${base}/missing.wasm: the server answered 404`,
    });
  });

  await t.step("named after the URL's path, decoded, without query or fragment", async () => {
    // It was named "greet.wat?v=2" (the raw URL's text after its last slash).
    const handle = await manager.loadFile(new URL(`${base}/greet.wat?v=2#top`));
    assert.equal(manager.get(handle).name, "greet");
    // A URL naming no file leaves no name: said before anything is fetched.
    await assertRejectsWith(() => manager.loadFile(new URL(`${base}/`)), TypeError, {
      message: `Cannot name a plugin after ${base}/: give it a name in its config`,
    });
  });
});

Deno.test("PluginManager.loadFile() reads bounded, and a close ends the read", {
  permissions: { net: ["127.0.0.1"], read: true, write: true, run: ["mkfifo", "ls"] },
}, async (t) => {
  let stalled = 0;
  const MiB = new Uint8Array(2 ** 20);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/declared.wasm") return new Response(new Uint8Array(3 * 2 ** 20));
      if (path === "/streamed.wasm") {
        // No length said: read until it passes the bound.
        let sent = 0;
        return new Response(
          new ReadableStream({
            pull(controller) {
              if (sent++ < 3) controller.enqueue(MiB);
              else controller.close();
            },
          }),
        );
      }
      // Headers, then a body that never comes.
      stalled++;
      return new Response(new ReadableStream({ start() {} }));
    },
  );
  await using runtime = inlineRuntime();
  const base = `http://127.0.0.1:${server.addr.port}`;

  await t.step(
    "a body past the bound (256 MiB) is a CompilationError, read no further",
    async () => {
      // A 300 MB body was read whole (+950 MB of RSS) before its first bytes were checked.
      const signal = new AbortController().signal;
      await assertRejectsWith(
        () => readModuleFile(new URL(`${base}/declared.wasm`), signal, 2 ** 20),
        CompilationError,
        {
          message: `Cannot load ${base}/declared.wasm: ${3 * 2 ** 20} bytes, more than ${2 ** 20}`,
        },
      );
      const streamed = await assertRejectsWith(
        () => readModuleFile(new URL(`${base}/streamed.wasm`), signal, 2 ** 20),
        CompilationError,
      );
      assert.match(streamed.message, /streamed\.wasm: at least \d+ bytes, more than 1048576$/);
      assert.equal(MAX_MODULE_FILE_BYTES, 2 ** 28);
    },
  );

  await t.step("a close ends a read that stalls", async () => {
    // The load waited for ever, after close() had resolved.
    const manager = new PluginManager(runtime);
    const loading = manager.loadFile(new URL(`${base}/stalls.wasm`));
    while (stalled === 0) await delay(5);
    await manager.close();
    await assertRejectsWith(() => loading, PluginStateError, { state: "closed" });
  });

  await t.step("a close while the file is opened leaves it closed", async () => {
    // 200 loads closed a microtask after they began kept 200 descriptors of the file open.
    // Deno lets only a process with every permission read /proc/self/fd: `ls` reads it.
    const openOnFile = async () => {
      const listing = await new Deno.Command("ls", { args: ["-l", `/proc/${Deno.pid}/fd`] })
        .output();
      return new TextDecoder().decode(listing.stdout).split("\n")
        .filter((line) => line.endsWith("math.wat")).length;
    };
    for (let round = 0; round < 20; round++) {
      const manager = new PluginManager(runtime);
      const loading = manager.loadFile("examples/wat/math.wat");
      await Promise.resolve();
      await manager.close();
      await loading.catch(() => {});
    }
    assert.equal(await openOnFile(), 0);
  });

  await t.step("a URL written as text is fetched", async () => {
    // It was read as a path: NotFound.
    await using manager = new PluginManager(runtime);
    await assertRejectsWith(() => manager.loadFile(`${base}/declared.wasm`), CompilationError);
  });

  await t.step("only a regular file is read", async () => {
    // A FIFO's open blocked for ever (and /dev/zero would have filled the host's memory).
    const dir = await Deno.makeTempDir();
    try {
      const fifo = `${dir}/plugin.wasm`;
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      await using manager = new PluginManager(runtime);
      await assertRejectsWith(() => manager.loadFile(fifo), TypeError, {
        message: `Cannot load ${fifo}: it is not a regular file`,
      });
      await assertRejectsWith(() => manager.loadFile("/dev/zero"), TypeError);
      await assertRejectsWith(() => manager.loadFile(5 as unknown as string), TypeError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

testEachIsolation(
  "PluginManager calls plugins by handle",
  { permissions: "none" },
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    await using manager = new PluginManager(runtime);
    const calls = await manager.loadWat(CALLS_WAT, { name: "calls" });
    const bytes = await manager.loadWat(BYTES_WAT, { name: "bytes" });

    await t.step("initialize()", async () => {
      await manager.initialize(calls);
      assert.equal(manager.get(calls).state, "ready");
    });
    await t.step("callI32(), callI64(), callF64(), callVoid(), call()", async () => {
      assert.equal(await manager.callI32(calls, "add", [10, 5]), 15);
      assert.equal(await manager.callI64(calls, "add_i64", [1n, 2]), 3n);
      assert.equal(await manager.callF64(calls, "sqrt", [9]), 3);
      assert.equal(await manager.callVoid(calls, "store", [0, 1]), undefined);
      assert.deepEqual(await manager.call(calls, "divmod", [7, 2]), [3, 1]);
    });
    await t.step("callBytes() and callJson()", async () => {
      assert.deepEqual(await manager.callBytes(bytes, "reverse", bytesOf("ab")), bytesOf("ba"));
      assert.deepEqual(await manager.callJson(bytes, "echo", { ok: 1 }), { ok: 1 });
    });
    await t.step("options reach the plugin", async () => {
      const reason = new Error("stop");
      await assert.rejects(
        manager.callI32(calls, "add", [1, 2], { signal: AbortSignal.abort(reason) }),
        (err) => err === reason,
      );
    });
    await t.step("get() returns the plugin itself", () => {
      assert.equal(manager.get(calls).name, "calls");
    });
  },
);

testEachIsolation("PluginManager rejects handles it does not know", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);
  const handle = await manager.loadWat(CALLS_WAT, { id: "gone" });
  await manager.unload(handle);

  const misuses: [string, PluginHandle, string][] = [
    ["an unloaded handle", handle, "gone"],
    ["a made-up handle", { id: "nobody" }, "nobody"],
    ["a handle without an id", {} as PluginHandle, "an object"],
    ["null", null as unknown as PluginHandle, "null"],
  ];
  const throwingId = {
    get id(): string {
      throw new Error("no id here");
    },
  };
  const uses: [string, (h: PluginHandle) => Promise<unknown>][] = [
    ["initialize", (h) => manager.initialize(h)],
    ["callI32", (h) => manager.callI32(h, "add", [1, 2])],
    ["callI64", (h) => manager.callI64(h, "add_i64", [1n, 2n])],
    ["callF64", (h) => manager.callF64(h, "sqrt", [1])],
    ["callVoid", (h) => manager.callVoid(h, "nothing")],
    ["call", (h) => manager.call(h, "nothing")],
    ["callBytes", (h) => manager.callBytes(h, "echo", new Uint8Array())],
    ["callJson", (h) => manager.callJson(h, "echo", {})],
    ["getInfo", (h) => manager.getInfo(h)],
    ["unload", (h) => manager.unload(h)],
  ];
  for (const [what, badHandle, id] of misuses) {
    await t.step(`${what}: every method rejects with PluginNotFoundError`, async () => {
      for (const [, use] of uses) {
        await assertRejectsWith(() => use(badHandle), PluginNotFoundError, {
          kind: "plugin_not_found",
          id,
        });
      }
      assertThrowsWith(() => manager.get(badHandle), PluginNotFoundError, { id });
    });
  }

  await t.step("a handle whose id getter throws: every method rejects with its error", async () => {
    for (const [, use] of uses) {
      await assertRejectsWith(() => use(throwingId), Error, { message: "no id here" });
    }
  });
});

testEachIsolation(
  "PluginManager reports plugins, info and stats",
  { permissions: "none" },
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    await using manager = new PluginManager(runtime);
    const a = await manager.loadWat(CALLS_WAT, {
      id: "a",
      name: "alpha",
      capabilities: [Capability.CallTool, Capability.Timer],
    });
    const b = await manager.loadWat(CALLS_WAT, { id: "b", capabilities: [Capability.Timer] });

    await t.step("listPlugins() in load order", () => {
      assert.deepEqual(manager.listPlugins(), [a, b]);
    });

    await t.step("pluginsWithCapability()", () => {
      assert.deepEqual(manager.pluginsWithCapability(Capability.Timer), [a, b]);
      assert.deepEqual(manager.pluginsWithCapability(Capability.CallTool), [a]);
      assert.deepEqual(manager.pluginsWithCapability(Capability.Random), []);
    });

    await t.step("getInfo()", async () => {
      await manager.callI32(a, "add", [1, 1]);
      const info = await manager.getInfo(a);
      assert.deepEqual(
        { ...info, metrics: undefined },
        {
          id: "a",
          name: "alpha",
          state: "created",
          capabilities: ["call_tool", "timer"],
          metrics: undefined,
        },
      );
      assert.equal(info.metrics.callCount, 1);
    });

    await t.step("stats() counts calls made through the manager and on the plugins", async () => {
      await manager.get(b).callI32("add", [1, 1]);
      await assert.rejects(manager.callI32(b, "missing"));
      const stats = manager.stats();
      assert.deepEqual({ ...stats, totalExecutionTimeMs: 0 }, {
        totalLoaded: 2,
        totalUnloaded: 0,
        activePlugins: 2,
        totalCalls: 3,
        failedCalls: 1,
        totalExecutionTimeMs: 0,
      });
      assert.ok(stats.totalExecutionTimeMs >= 0);
    });

    await t.step("bad unload or load options are a TypeError; the plugin stays", async () => {
      await assertRejectsWith(() => manager.unload(a, { abrt: true } as never), TypeError, {
        message:
          "Cannot use the stop options: unknown key 'abrt' (did you mean 'abort'?); expected one of abort",
      });
      await assertRejectsWith(() => manager.unload(a, { abort: "yes" } as never), TypeError, {
        message: `Cannot unload plugin "${a.id}": 'abort' must be a boolean, received string "yes"`,
      });
      await assertRejectsWith(() => manager.unloadAll(null as never), TypeError, {
        message: "Cannot unload the plugins: expected options { abort? }, received null",
      });
      assert.deepEqual(manager.listPlugins(), [a, b]);
      await assertRejectsWith(
        () => manager.loadWat(CALLS_WAT, {}, { linkr: runtime.createLinker() } as never),
        TypeError,
        {
          message:
            "Cannot use the load options: unknown key 'linkr' (did you mean 'linker'?); expected one of linker",
        },
      );
      assert.deepEqual(manager.listPlugins(), [a, b]);
    });

    await t.step("unload() and unloadAll()", async () => {
      await manager.unload(a);
      assert.deepEqual(manager.listPlugins(), [b]);
      await manager.unloadAll();
      assert.deepEqual(manager.listPlugins(), []);
      assert.equal(runtime.pluginCount, 0);
      assert.deepEqual(
        [manager.stats().totalLoaded, manager.stats().totalUnloaded, manager.stats().activePlugins],
        [2, 2, 0],
      );
    });
  },
);

testEachIsolation("PluginManager dispatches an event for each step", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const manager = new PluginManager(runtime);
  const events = recordEvents(manager);

  await t.step("loaded, then state_changed around initialize and each call", async () => {
    const handle = await manager.loadWat(CALLS_WAT, { id: "p", name: "calls" });
    await manager.initialize(handle);
    await manager.callI32(handle, "add", [1, 2]);
    assert.deepEqual(summary(events), [
      "loaded p",
      "state_changed p",
      "state_changed p",
      "initialized p",
      "state_changed p",
      "state_changed p",
      "executed p",
    ]);
    assert.deepEqual(events[0]?.detail, { name: "calls" });
    assert.deepEqual(events.filter((e) => e.type === "state_changed").map((e) => e.detail), [
      { from: "created", to: "initializing" },
      { from: "initializing", to: "ready" },
      { from: "ready", to: "running" },
      { from: "running", to: "ready" },
    ]);
    const executed = events.at(-1) as PluginEvent<"executed">;
    assert.equal(executed.detail.function, "add");
    events.length = 0;
    await Promise.all([manager.initialize(handle), manager.initialize(handle)]);
    assert.deepEqual(summary(events), [], "a ready plugin initializes once: no event");
    events.length = 0;
    const second = await manager.loadWat(CALLS_WAT, { id: "q" });
    await Promise.all([manager.initialize(second), manager.initialize(second)]);
    assert.deepEqual(summary(events).filter((e) => e.startsWith("initialized")), [
      "initialized q",
    ]);
    await manager.unload(second);
    assert.equal(executed.detail.success, true);
    assert.ok(executed.detail.durationMs >= 0);
    assert.ok(executed instanceof PluginEvent);
    assert.ok(executed.time <= Date.now());
  });

  await t.step("a failed call is executed (unsuccessful), then error", async () => {
    events.length = 0;
    await assert.rejects(manager.callI32({ id: "p" }, "add", [1]));
    assert.deepEqual(summary(events), [
      "executed p",
      "error p",
    ]);
    const [executed, error] = events as [PluginEvent<"executed">, PluginEvent<"error">];
    assert.equal(executed.detail.success, false);
    assert.match(String(executed.detail.error), /expected 2 arguments, received 1/);
    assert.equal(error.detail.function, "add");
  });

  await t.step("an init that traps is an error event", async () => {
    events.length = 0;
    const handle = await manager.loadWat(INIT_TRAPS_WAT, { id: "bad" });
    await assertRejectsWith(() => manager.initialize(handle), TrapError);
    assert.deepEqual(summary(events), [
      "loaded bad",
      "state_changed bad",
      "state_changed bad",
      "error bad",
    ]);
    const error = events.at(-1) as PluginEvent<"error">;
    assert.equal(error.detail.function, "initialize");
    assert.ok(error.detail.error instanceof TrapError);
    assert.equal((await manager.getInfo(handle)).state, "error");
  });

  await t.step("a refused initialize() is no error event, as a refused call", async () => {
    // It was: `error` with function "initialize" for a paused plugin, and after `stopped`.
    const handle = await manager.loadWat(CALLS_WAT, { id: "paused" });
    await manager.get(handle).pause();
    events.length = 0;
    await assertRejectsWith(() => manager.callI32(handle, "add", [1, 2]), PluginStateError);
    await assertRejectsWith(() => manager.initialize(handle), PluginStateError);
    assert.deepEqual(summary(events), []);
    await manager.unload(handle);
  });

  await t.step("a message sent by a plugin", async () => {
    events.length = 0;
    const received: string[] = [];
    const handle = await manager.loadWat(hostFunctionsWat("host_send_message"), {
      id: "sender",
      capabilities: [Capability.SendMessage],
      onMessage: (message) => void received.push(message.to),
    });
    const plugin = manager.get(handle);
    const [to, toLen] = await putString(plugin, 0, "ops");
    const [msg, msgLen] = await putString(plugin, 16, "hi");
    await plugin.callI32("host_send_message", [to, toLen, msg, msgLen]);
    const message = events.find((e) => e.type === "message") as PluginEvent<"message">;
    assert.equal(message.pluginId, "sender");
    assert.deepEqual({ ...message.detail }, {
      from: "sender",
      to: "ops",
      data: bytesOf("hi"),
    });
    assert.deepEqual(received, ["ops"]);
  });

  await t.step("unloaded, for each plugin on close()", async () => {
    events.length = 0;
    await manager.close();
    assert.deepEqual(
      summary(events.filter((e) => e.type === "unloaded")).sort(),
      ["unloaded bad", "unloaded p", "unloaded sender"],
    );
    await manager.close();
    await assertRejectsWith(() => manager.loadWat(CALLS_WAT), PluginStateError, {
      state: "closed",
      message: "Cannot load a plugin: the manager is closed",
    });
  });

  await t.step(
    "a load in flight as close() begins rejects, and its plugin is stopped",
    async () => {
      const other = new PluginManager(runtime);
      const compiled = await runtime.compileWat("late", CALLS_WAT);
      const loading = other.loadCompiled(compiled, { id: "late" });
      await other.close();
      await assertRejectsWith(() => loading, PluginStateError, {
        state: "closed",
        message: 'Cannot load plugin "late": the manager was closed meanwhile',
      });
      assert.deepEqual(other.listPlugins(), []);
      assert.equal(other.stats().activePlugins, 0);
    },
  );
});

testEachIsolation("PluginManager.subscribe() streams events through a bounded buffer", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  // No anomaly events: a call slowed by a loaded machine would add one to the counts below.
  await using manager = new PluginManager(runtime, { anomaly: false });

  await t.step("a reader sees the events in order; the loop ends on close", async () => {
    await using local = createRuntime();
    const other = new PluginManager(local);
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of other.subscribe()) seen.push(event.type);
    })();
    const handle = await other.loadWat(CALLS_WAT);
    await other.callI32(handle, "add", [1, 2]);
    await other.close();
    await reading;
    assert.deepEqual(seen, [
      "loaded",
      "state_changed",
      "state_changed",
      "executed",
      "state_changed",
      "unloaded",
    ]);
    assert.equal((await other.subscribe().next()).done, true);
  });

  await t.step(
    "a subscriber that never reads loses the oldest events, plugins never wait",
    async () => {
      const events = manager.subscribe({ bufferSize: 4 });
      const handle = await manager.loadWat(CALLS_WAT);
      for (let i = 0; i < 50; i++) await manager.callI32(handle, "add", [i, 1]);
      // loaded + 50 × (running, ready, executed) = 151 events.
      assert.equal(events.pending, 4);
      assert.equal(events.dropped, 147);
      const first = await events.next();
      assert.equal(first.value?.type, "executed");
      assert.equal((first.value as PluginEvent<"executed">).detail.success, true);
      await events.return();
      assert.equal(events.pending, 0);
      assert.equal((await events.next()).done, true);
    },
  );

  await t.step("two reads at once are a TypeError", async () => {
    const events = manager.subscribe();
    const pending = events.next();
    await assertRejectsWith(() => events.next(), TypeError, {
      message: "Cannot read a subscription twice at the same time",
    });
    await events.return();
    assert.equal((await pending).done, true);
  });

  await t.step("a buffer size below 1 is a RangeError", () => {
    assertThrowsWith(() => manager.subscribe({ bufferSize: 0 }), RangeError, {
      message: "Cannot subscribe with 'bufferSize' = 0: it must be a positive integer",
    });
  });

  await t.step("options that are not { bufferSize } are a TypeError", () => {
    assertThrowsWith(() => manager.subscribe({ bufferSize: "5" as never }), TypeError, {
      message: `Cannot subscribe with 'bufferSize': expected a number, received string "5"`,
    });
    assertThrowsWith(() => manager.subscribe({ buffersize: 5 } as never), TypeError, {
      message:
        "Cannot use the subscribe options: unknown key 'buffersize' (did you mean 'bufferSize'?); expected one of bufferSize",
    });
    assertThrowsWith(() => manager.subscribe(null as never), TypeError, {
      message:
        "Cannot use the subscribe options: expected an object { bufferSize? }, received null",
    });
  });
});

testEachIsolation("PluginManager runs 100 plugins through load, call and unload", {
  permissions: "none",
  slow: true,
}, async (_t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxInstances: 100 } });
  await using manager = new PluginManager(runtime);
  const compiled = await runtime.compileWat("calls", CALLS_WAT);
  const handles = await Promise.all(
    Array.from({ length: 100 }, (_, i) => manager.loadCompiled(compiled, { id: `p${i}` })),
  );
  assert.equal(runtime.pluginCount, 100);
  await assert.rejects(manager.loadCompiled(compiled), /maxInstances/);
  const sums = await Promise.all(handles.map((h, i) => manager.callI32(h, "add", [i, 1])));
  assert.deepEqual(sums, Array.from({ length: 100 }, (_, i) => i + 1));
  await manager.unloadAll();
  assert.deepEqual(manager.stats(), {
    ...manager.stats(),
    totalLoaded: 100,
    totalUnloaded: 100,
    activePlugins: 0,
    totalCalls: 100,
    failedCalls: 0,
  });
  assert.equal(runtime.pluginCount, 0);
  await using again = await runtime.createPlugin(compiled);
  assert.equal(await again.callI32("add", [2, 2]), 4);
});

Deno.test("PluginManager listeners can be removed, and once-listeners run once", {
  permissions: "none",
}, async () => {
  await using runtime = inlineRuntime();
  await using manager = new PluginManager(runtime);
  const seen: string[] = [];
  const onLoaded = (event: PluginEvent<"loaded">): void => void seen.push(`kept ${event.pluginId}`);
  const onRemoved = (): void => void seen.push("removed");
  manager.addEventListener("loaded", onLoaded);
  manager.addEventListener("loaded", onRemoved);
  manager.addEventListener("loaded", () => void seen.push("once"), { once: true });
  manager.removeEventListener("loaded", onRemoved);
  await manager.loadWat("(module)", { id: "a" });
  await manager.loadWat("(module)", { id: "b" });
  manager.removeEventListener("loaded", onLoaded);
  await manager.loadWat("(module)", { id: "c" });
  assert.deepEqual(seen, ["kept a", "once", "kept b"]);
});

/** A plugin importing the application's own host function `env.twice`. */
const LINKED_WAT = `(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (func (export "f") (param i32) (result i32) (call $twice (local.get 0))))`;

testEachIsolation("PluginManager links the application's host functions", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);
  const linker = runtime.createLinker();
  linker.funcWrap("env", "twice", (x: number) => x * 2);
  const config = { capabilities: [Capability.CallHostFunction] };

  await t.step(
    "loadWat, load of bytes or a compiled module, and loadCompiled take a linker",
    async () => {
      const compiled = await runtime.compileWat("linked", LINKED_WAT);
      const handles = [
        await manager.loadWat(LINKED_WAT, config, { linker }),
        await manager.load(compiled, config, { linker }),
        await manager.loadCompiled(compiled, config, { linker }),
      ];
      for (const handle of handles) assert.equal(await manager.callI32(handle, "f", [21]), 42);
    },
  );

  await t.step("without one, the import is an ImportNotFoundError", async () => {
    await assertRejectsWith(() => manager.loadWat(LINKED_WAT, config), ImportNotFoundError, {
      kind: "import_not_found",
    });
  });
});

testEachIsolation("PluginManager offers every call of WasmPlugin by handle", {
  permissions: "none",
}, async (_t, { createRuntime }) => {
  await using runtime = createRuntime();
  await using manager = new PluginManager(runtime);
  const calls = await manager.loadWat(CALLS_WAT);
  assert.equal(await manager.callF32(calls, "half", [3]), 1.5);
  const bytes = await manager.loadWat(BYTES_WAT);
  assert.equal(await manager.callWithBytes(bytes, "sum", new Uint8Array([1, 2, 3])), 6);
  const command = await manager.loadWat(
    `(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const 3))))`,
    { capabilities: [Capability.Wasi] },
  );
  assert.equal((await manager.run(command)).exitCode, 3);
});

import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  InvalidFunctionError,
  type PluginEvent,
  PluginStateError,
  type RunOptions,
  TimeoutError,
  TrapError,
  type WasmError,
  type WasmPlugin,
  type WasmRuntime,
} from "../mod.ts";
import {
  allowingWorkers,
  assertRejectsWith,
  testEachIsolation,
  workerRuntime,
} from "./_helpers.ts";

const C_WASI = new URL("../examples/c_wasi/c_wasi.wasm", import.meta.url);
const DATA = new URL("../examples/c_wasi/data", import.meta.url).pathname;
const SECRET = new URL("../examples/c_wasi/secret.txt", import.meta.url).pathname;
const READ = [C_WASI.pathname, DATA, SECRET];

const decoder = new TextDecoder();

testEachIsolation("WasmPlugin.run() runs a WASI command", {
  permissions: { read: READ },
}, async (t, kit) => {
  await using runtime = kit.createRuntime();
  const compiled = await runtime.compile("c_wasi", await Deno.readFile(C_WASI));
  const secretBefore = await Deno.readTextFile(SECRET);
  const command = {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: {
      args: ["one"],
      env: { PROBE_PATHS: "/data/../secret.txt" },
      preopens: { "/data": DATA },
    },
  };

  await t.step("stdin in, stdout out, the exit code returned", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const result = await plugin.run({ stdin: new TextEncoder().encode("a\nb\nc\n") });
    assert.equal(result.exitCode, 3);
    const stdout = decoder.decode(result.stdout);
    assert.match(stdout, /^A\nB\nC\nlines: 3\nargs: one\n/);
    assert.match(stdout, /greeting: Hello from the preopened \/data directory!/);
    assert.equal(result.outputTruncated, false);
  });

  await t.step("each run is a fresh instance with its own stdin", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const first = await plugin.run({ stdin: new TextEncoder().encode("x\n") });
    const second = await plugin.run();
    assert.match(decoder.decode(first.stdout), /lines: 1/);
    assert.match(decoder.decode(second.stdout), /lines: 0/);
    assert.equal((await plugin.metrics()).callCount, 2);
  });

  await t.step("escaping the preopen fails and leaves the host file alone", async () => {
    await using plugin = await runtime.createPlugin(compiled, command);
    const { stdout } = await plugin.run();
    assert.match(decoder.decode(stdout), /probe \/data\/\.\.\/secret\.txt: denied/);
    assert.match(decoder.decode(stdout), /network: Function not implemented/);
    assert.equal(await Deno.readTextFile(SECRET), secretBefore);
  });

  await t.step("without FileSystem the preopen is not there", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      ...command,
      capabilities: [Capability.Wasi],
    });
    const { exitCode, stdout, stderr } = await plugin.run();
    assert.equal(exitCode, 1, "main.c exits with 1 when it cannot read /data/greeting.txt");
    assert.doesNotMatch(decoder.decode(stdout), /greeting: Hello/);
    assert.match(decoder.decode(stderr), /\/data\/greeting\.txt/);
  });

  await t.step("without Wasi the command is denied", async () => {
    await using plugin = await runtime.createPlugin(compiled, {});
    const error = await assertRejectsWith(() => plugin.run(), CapabilityDeniedError);
    assert.equal(error.capability, Capability.Wasi);
  });
});

testEachIsolation("A preopen named through a symlink is readable", {
  permissions: { read: true, write: true },
}, async (_t, kit) => {
  // A worker was granted the path as named only, and the WASI layer reads it resolved (macOS's
  // /tmp is a symlink): "Capabilities insufficient" in a worker, the file inline.
  const linked = await Deno.makeTempDir({ prefix: "wasmplug_linked_" });
  try {
    await Deno.symlink(DATA, `${linked}/data`);
    await using runtime = kit.createRuntime();
    const compiled = await runtime.compile("c_wasi", await Deno.readFile(C_WASI));
    await using plugin = await runtime.createPlugin(compiled, {
      capabilities: [Capability.Wasi, Capability.FileSystem],
      wasi: { preopens: { "/data": `${linked}/data` } },
    });
    const { stdout } = await plugin.run();
    assert.match(decoder.decode(stdout), /greeting: Hello from the preopened \/data directory!/);
  } finally {
    await Deno.remove(linked, { recursive: true });
  }
});

testEachIsolation("WasmPlugin.run() needs a command and enforces limits", {
  permissions: "none",
}, async (t, kit) => {
  await t.step("a module without _start is not a command", async () => {
    await using loaded = await kit.loadPlugin('(module (func (export "f")))');
    await assertRejectsWith(() => loaded.plugin.run(), InvalidFunctionError, {
      functionName: "_start",
    });
  });

  const loop = `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (func (export "_start") (loop $l (br $l)))
    (func (export "quit") (call $exit (i32.const 7))))`;

  await t.step("a command that never ends times out", async () => {
    await using loaded = await kit.loadPlugin(loop, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxFuel: null },
    });
    await assertRejectsWith(() => loaded.plugin.run({ timeoutMs: 100 }), TimeoutError);
  });

  // Writes "out" to stdout and "err" to stderr, then traps, loops or asks for randomness.
  const writeThen = (then: string) =>
    `(module
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "\\10\\00\\00\\00\\03\\00\\00\\00")
      (data (i32.const 16) "out")
      (data (i32.const 32) "\\30\\00\\00\\00\\03\\00\\00\\00")
      (data (i32.const 48) "err")
      (func (export "_start")
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
        (drop (call $write (i32.const 2) (i32.const 32) (i32.const 1) (i32.const 64)))
        ${then}))`;

  await t.step("a command that fails brings what it wrote on its error", async () => {
    const failures: {
      then: string;
      // deno-lint-ignore no-explicit-any
      error: abstract new (...args: any[]) => WasmError;
      options: RunOptions;
    }[] = [
      { then: "unreachable", error: TrapError, options: {} },
      { then: "(loop $l (br $l))", error: TimeoutError, options: { timeoutMs: 100 } },
      {
        then: "(drop (call $random (i32.const 0) (i32.const 4)))",
        error: CapabilityDeniedError,
        options: {},
      },
    ];
    for (const { then, error, options } of failures) {
      await using loaded = await kit.loadPlugin(writeThen(then), {
        capabilities: [Capability.Wasi],
        resourceLimits: { maxFuel: null },
      });
      const failure = await assertRejectsWith(() => loaded.plugin.run(options), error);
      assert.deepEqual(failure.output, {
        stdout: new TextEncoder().encode("out"),
        stderr: new TextEncoder().encode("err"),
        outputTruncated: false,
      });
      // Not enumerable: a logged error does not print the output.
      assert.ok(!Object.keys(failure).includes("output"));
    }
  });

  await t.step("an abort's reason carries no output: other calls may share it", async () => {
    // `_start` writes, then waits on a tool that never answers; one reason aborts two runs.
    await using runtime = kit.createRuntime();
    runtime.registerTool("never", () => new Promise(() => {}));
    const waitingCommand = writeThen(`(drop (call $tool (i32.const 100) (i32.const 5)
      (i32.const 105) (i32.const 2) (i32.const 200) (i32.const 16)))`)
      .replace(
        '(memory (export "memory") 1)',
        `(import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1) (data (i32.const 100) "never{}")`,
      );
    const controller = new AbortController();
    const reason = new TimeoutError(undefined, { timeoutMs: 1 });
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const plugin = await runtime.createPluginFromWat(waitingCommand, {
        capabilities: [Capability.Wasi, Capability.CallTool],
      });
      runs.push(assert.rejects(plugin.run({ signal: controller.signal }), (err) => err === reason));
    }
    setTimeout(() => controller.abort(reason), 50);
    await Promise.all(runs);
    assert.equal(reason.output, undefined);
  });

  await t.step("proc_exit outside run() is a trap, and the plugin stays usable", async () => {
    await using loaded = await kit.loadPlugin(loop, { capabilities: [Capability.Wasi] });
    const error = await assertRejectsWith(() => loaded.plugin.callVoid("quit"), TrapError);
    assert.match(error.message, /proc_exit\(7\) outside plugin\.run\(\)/);
    await assertRejectsWith(() => loaded.plugin.callVoid("quit"), TrapError);
  });
});

testEachIsolation("WasmPlugin.run() waits in line as any call does", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime({ resourceLimits: { maxExecutionTimeMs: 20_000 } });
  const held = holdingTools(runtime);
  // `_start` echoes up to 64 bytes of stdin; `hold()` waits on the tool `holdx`.
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "holdx{}")
      (func (export "_start")
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (i32.const 64))
        (drop (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 32)))
        (i32.store (i32.const 20) (i32.load (i32.const 32)))
        (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))))
      (func (export "hold") (result i32)
        (call $tool (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 2) (i32.const 64)
          (i32.const 64))))`,
    { capabilities: [Capability.Wasi, Capability.CallTool] },
  );

  await t.step("its stdin is copied as it is made", async () => {
    const release = held.hold(plugin);
    const stdin = new TextEncoder().encode("hello");
    const running = plugin.run({ stdin });
    stdin.fill(0x21);
    await release();
    assert.equal(decoder.decode((await running).stdout), "hello");
  });

  await t.step("its signal takes it out of the line at once", async () => {
    const release = held.hold(plugin);
    const controller = new AbortController();
    const waiting = plugin.run({ signal: controller.signal });
    controller.abort("not now");
    await assert.rejects(waiting, (err) => err === "not now");
    await release();
  });

  await t.step("refused, it counts no fuel and never runs", async () => {
    await plugin.run();
    const before = await plugin.metrics();
    const states: string[] = [];
    const onState = (event: PluginEvent<"state_changed">) => void states.push(event.detail.to);
    plugin.addEventListener("state_changed", onState);
    await assert.rejects(plugin.run({ fuel: 1e15 }), RangeError);
    await assert.rejects(plugin.run({ signal: AbortSignal.abort("no") }), (err) => err === "no");
    plugin.removeEventListener("state_changed", onState);
    assert.equal((await plugin.metrics()).fuelConsumed, before.fuelConsumed);
    assert.deepEqual(states, []);
  });

  await t.step("while the plugin stops, it is refused at once, and not counted", async () => {
    const release = held.hold(plugin);
    const before = (await plugin.metrics()).callCount;
    const stopped = plugin.stop();
    for (const signal of [undefined, AbortSignal.abort("no")]) {
      await assertRejectsWith(
        () => plugin.run(signal === undefined ? {} : { signal }),
        PluginStateError,
        { state: "stopping" },
      );
    }
    await release();
    await stopped;
    assert.equal((await plugin.metrics()).callCount, before + 1);
  });
});

/**
 * The tool `holdx` on `runtime`: `hold(plugin)` starts the plugin's `hold()`
 * call, which runs until the function it returns is called (that awaits it).
 */
function holdingTools(runtime: WasmRuntime): { hold(plugin: WasmPlugin): () => Promise<number> } {
  let gate = Promise.withResolvers<void>();
  runtime.registerTool("holdx", async () => {
    await gate.promise;
    return 0;
  });
  return {
    hold(plugin) {
      const opened = gate = Promise.withResolvers();
      const running = plugin.callI32("hold");
      return () => {
        opened.resolve();
        return running;
      };
    },
  };
}

testEachIsolation("A run's memory counts in the plugin's peak, not in its current size", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // The command runs in an instance of its own: its 200 MiB showed nowhere in the metrics.
  await using loaded = await loadPlugin(
    `(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (drop (memory.grow (i32.const 31)))))`,
    { capabilities: [Capability.Wasi] },
  );
  const { plugin } = loaded;
  const before = await plugin.metrics();
  assert.equal((await plugin.run()).exitCode, 0);
  const after = await plugin.metrics();
  assert.equal(after.peakMemoryBytes, 32 * 65536);
  assert.equal(after.currentMemoryBytes, before.currentMemoryBytes);
  // So does a run that fails after it grew.
  await using failing = await loadPlugin(
    `(module
      (memory (export "memory") 1)
      (func (export "_start") (drop (memory.grow (i32.const 40))) unreachable))`,
    { capabilities: [Capability.Wasi] },
  );
  await assertRejectsWith(() => failing.plugin.run(), TrapError);
  assert.equal((await failing.plugin.metrics()).peakMemoryBytes, 41 * 65536);
});

Deno.test({
  name: "A run its signal aborts in a worker still counts its memory in the peak",
  permissions: allowingWorkers({}),
}, async () => {
  // The worker sent it with the failure, and the abort's path dropped it.
  await using runtime = workerRuntime();
  await using plugin = await runtime.createPluginFromWat(
    `(module
      (memory (export "memory") 1)
      (func (export "_start") (drop (memory.grow (i32.const 40))) (loop $l (br $l))))`,
    { capabilities: [Capability.Wasi], resourceLimits: { maxFuel: null } },
  );
  const reason = new Error("enough");
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 100);
  assert.equal(await plugin.run({ signal: controller.signal }).catch((err) => err), reason);
  assert.equal((await plugin.metrics()).peakMemoryBytes, 41 * 65536);
});

testEachIsolation(
  "A run a host function held past its deadline times out with its output and memory",
  {
    permissions: "none",
  },
  async (_t, kit) => {
    // A linker function that holds the host thread past the deadline (no timer can fire) and
    // then returns: the guest writes and returns at once. A worker's run succeeded or timed out
    // by a race, and a late result lost the output and the memory that inline keeps.
    await using runtime = kit.createRuntime();
    const compiled = await runtime.compileWat(
      "late",
      `(module
      (import "wasi_snapshot_preview1" "fd_write"
        (func $write (param i32 i32 i32 i32) (result i32)))
      (import "env" "hold" (func $hold))
      (memory (export "memory") 1)
      (data (i32.const 16) "late\\n")
      (func (export "_start")
        (drop (memory.grow (i32.const 40)))
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 5))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $hold)))`,
    );
    const holdMs = 150;
    const linker = runtime.createLinker().funcWrap("env", "hold", () => {
      const end = performance.now() + holdMs;
      while (performance.now() < end);
    });
    await using plugin = await runtime.createPluginWithLinker(compiled, {
      capabilities: [Capability.Wasi, Capability.CallHostFunction],
      resourceLimits: { maxExecutionTimeMs: 100 },
    }, linker);
    for (let round = 0; round < 3; round++) {
      const err = await assertRejectsWith(() => plugin.run(), TimeoutError);
      assert.equal(decoder.decode(err.output?.stdout), "late\n");
    }
    const metrics = await plugin.metrics();
    assert.equal(metrics.peakMemoryBytes, 41 * 65536);
    assert.equal(metrics.failureCount, 3);
  },
);

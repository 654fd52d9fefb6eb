/**
 * Hostile plugins at the end of a host-function callback chain: a guest
 * calls a host function (a linker function or a host tool) that calls into
 * another plugin whose export never stops, or back into its own plugin,
 * where it would wait for the very call it is part of (calls to one plugin
 * are queued): that fails at once with a PluginStateError. The inner
 * deadline ends the inner call, the outer call's own deadline ends a host
 * function that never answers, and both plugins answer the next call. An inline linker function cannot wait for anything: one
 * that returns a promise fails the call with a HostFunctionError.
 *
 * A host function that never returns *synchronously* (a `while (true)` in
 * the host's own code) cannot be preempted in either isolation: host
 * functions run on the host thread. That is the host's bug, not the guest's,
 * and no test here can show it without hanging.
 */
import assert from "node:assert/strict";
import {
  Capability,
  HostFunctionError,
  PluginStateError,
  TimeoutError,
  type WasmPlugin,
  type WasmRuntime,
} from "../../mod.ts";
import { assertRejectsWith, testEachIsolation, textOf } from "../_helpers.ts";
import { within } from "./_within.ts";

/** The deadline of the spinning plugin's calls, in milliseconds. */
const INNER_MS = 100;
/** The deadline of the calling plugin's calls: far longer, so it is not what stops a chain. */
const OUTER_MS = 5_000;
/** The deadline of a call that is meant to time out itself. */
const SHORT_MS = 150;

const SPINNER_WAT = `(module
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  (func (export "ok") (result i32) i32.const 1))`;

/**
 * `via_linker` calls the linker function `env.hook`; `via_tool` calls the
 * host tool named by the `(ptr, len)` of its arguments, with `{}`.
 */
const CALLER_WAT = `(module
  (import "env" "hook" (func $hook (result i32)))
  (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{}")
  (data (i32.const 16) "spin")
  (data (i32.const 32) "never")
  (data (i32.const 48) "own")
  (data (i32.const 64) "chain")
  (func (export "via_linker") (result i32) (call $hook))
  (func (export "via_tool") (param i32 i32) (result i32)
    (call $tool (local.get 0) (local.get 1) (i32.const 0) (i32.const 2) (i32.const 256) (i32.const 64)))
  (func (export "ok") (result i32) i32.const 1))`;

/** The `(ptr, len)` of each tool name in {@linkcode CALLER_WAT}'s memory. */
const TOOL = {
  spin: [16, 4],
  never: [32, 5],
  own: [48, 3],
  chain: [64, 5],
} as const;

/** The plugins of one chain: a spinning one, and callers whose `env.hook` is replaceable. */
interface Chain {
  readonly spinner: WasmPlugin;
  /** Creates a caller whose `env.hook` runs `hook`. */
  caller(hook: (self: () => WasmPlugin) => unknown): Promise<WasmPlugin>;
}

async function chain(runtime: WasmRuntime): Promise<Chain> {
  const spinner = await runtime.createPluginFromWat(SPINNER_WAT, {
    name: "spinner",
    resourceLimits: { maxExecutionTimeMs: INNER_MS },
  });
  const compiled = await runtime.compileWat("caller", CALLER_WAT);
  return {
    spinner,
    async caller(hook) {
      const created: { plugin?: WasmPlugin } = {};
      const self = (): WasmPlugin => created.plugin!;
      const linker = runtime.createLinker().funcWrap("env", "hook", () => hook(self));
      created.plugin = await runtime.createPluginWithLinker(compiled, {
        capabilities: [Capability.CallHostFunction, Capability.CallTool],
        resourceLimits: { maxExecutionTimeMs: OUTER_MS },
      }, linker);
      return created.plugin;
    },
  };
}

/** Asserts both ends of the chain answer a normal call. */
async function assertBothAnswer(caller: WasmPlugin, spinner: WasmPlugin): Promise<void> {
  assert.equal(await caller.callI32("ok"), 1);
  assert.equal(await spinner.callI32("ok"), 1);
}

testEachIsolation("Hostile: a spinning plugin behind a host tool", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxFuel: null } });
  const { spinner, caller } = await chain(runtime);
  let innerError: unknown;
  runtime.registerTool("spin", async () => {
    try {
      return await spinner.callI32("spin");
    } catch (err) {
      innerError = err;
      throw err;
    }
  });
  runtime.registerTool("chain", async () => {
    // One more hop: this tool calls a plugin whose own tool calls the spinner.
    await using middle = await caller(() => 0);
    return await middle.callI32("via_tool", [...TOOL.spin]);
  });
  runtime.registerTool("never", () => new Promise(() => {}));
  await using plugin = await caller(() => 0);

  await t.step(
    "the spinner's deadline ends it, and its TimeoutError reaches the caller",
    async () => {
      innerError = undefined;
      const error = await within(() =>
        assertRejectsWith(() => plugin.callI32("via_tool", [...TOOL.spin]), TimeoutError, {
          kind: "timeout",
          timeoutMs: INNER_MS,
        })
      );
      // A WasmError thrown by a host function reaches the caller as it is.
      assert.equal(error, innerError);
      await assertBothAnswer(plugin, spinner);
    },
  );

  await t.step("two hops deep, the spinner's deadline still ends the whole chain", async () => {
    innerError = undefined;
    const error = await within(() =>
      assertRejectsWith(() => plugin.callI32("via_tool", [...TOOL.chain]), TimeoutError, {
        timeoutMs: INNER_MS,
      })
    );
    assert.equal(error, innerError);
    await assertBothAnswer(plugin, spinner);
    assert.equal(runtime.pluginCount, 2, "the middle plugin was closed");
  });

  await t.step("a tool that never settles is ended by the caller's own deadline", async () => {
    await within(() =>
      assertRejectsWith(
        () => plugin.callI32("via_tool", [...TOOL.never], { timeoutMs: SHORT_MS }),
        TimeoutError,
        { timeoutMs: SHORT_MS },
      )
    );
    await assertBothAnswer(plugin, spinner);
  });

  await t.step("the metrics count each failed call once", async () => {
    const metrics = await plugin.metrics();
    assert.equal(metrics.failureCount, 3);
    assert.equal((await spinner.metrics()).failureCount, 2);
  });
});

testEachIsolation("Hostile: a host function that calls back into its own plugin", {
  permissions: "none",
}, async (t, { createRuntime, isolation }) => {
  // No deadline at all: a re-entrant call that waited for itself would hang for good.
  await using runtime = createRuntime({
    resourceLimits: { maxFuel: null, maxExecutionTimeMs: Infinity },
  });
  const { spinner, caller } = await chain(runtime);
  let reentrant: Promise<unknown> | undefined;
  let reenter: (self: WasmPlugin) => Promise<unknown> = (self) => self.callI32("ok");
  const self = await caller((plugin) => reentrant = reenter(plugin()));
  runtime.registerTool("own", async () => await (reentrant = reenter(self)));

  await t.step(
    "a tool awaiting its own plugin fails at once with a PluginStateError, never waits",
    async () => {
      reentrant = undefined;
      const error = await within(() =>
        assertRejectsWith(() => self.callI32("via_tool", [...TOOL.own]), PluginStateError, {
          kind: "plugin_state",
          state: "running",
        })
      );
      assert.match(error.message, /from one of its own host functions/);
      // The outer call failed with the error of the re-entrant one, as it is.
      await assert.rejects(reentrant!, (err) => err === error);
      await assertBothAnswer(self, spinner);
    },
  );

  await t.step("so does a bytes-ABI call (callJson) from the tool", async () => {
    reenter = (plugin) => plugin.callJson("ok", null);
    await within(() =>
      assertRejectsWith(() => self.callI32("via_tool", [...TOOL.own]), PluginStateError)
    );
    reenter = (plugin) => plugin.callI32("ok");
    await assertBothAnswer(self, spinner);
  });

  if (isolation === "worker") {
    await t.step(
      "a linker function awaiting its own plugin fails at once with a PluginStateError",
      async () => {
        reentrant = undefined;
        await within(() =>
          assertRejectsWith(() => self.callI32("via_linker"), PluginStateError, {
            state: "running",
          })
        );
        await assertBothAnswer(self, spinner);
      },
    );

    await t.step(
      "a worker linker function may read and write its own plugin's memory before it answers",
      async () => {
        // The worker waiting on the linker function serves its memory meanwhile, as inline.
        reenter = async (plugin) => {
          const [open] = await plugin.readMemory(0, 1);
          await plugin.writeMemory(0, new Uint8Array([open! + 1]));
          return (await plugin.readMemory(0, 1))[0];
        };
        assert.equal(await within(() => self.callI32("via_linker")), "{".charCodeAt(0) + 1);
        assert.deepEqual(await self.readMemory(0, 1), new Uint8Array(["{".charCodeAt(0) + 1]));
        await self.writeMemory(0, new TextEncoder().encode("{"));
        reenter = (plugin) => plugin.callI32("ok");
        await assertBothAnswer(self, spinner);
      },
    );
  } else {
    await t.step(
      "an inline linker function cannot wait: its promise is a HostFunctionError",
      async () => {
        reentrant = undefined;
        const error = await assertRejectsWith(
          () => self.callI32("via_linker"),
          HostFunctionError,
          { kind: "host_function", module: "env", functionName: "hook" },
        );
        assert.ok(error.cause instanceof TypeError, `cause: ${error.cause}`);
        assert.match(error.message, /promise/);
        // The call it started was refused, as any call back into its own plugin is.
        await assert.rejects(reentrant!, PluginStateError);
        await assertBothAnswer(self, spinner);
      },
    );
  }

  await t.step("a tool may read its own plugin's memory", async () => {
    reenter = async (plugin) => [...await plugin.readMemory(0, 2)];
    const length = await within(() => self.callI32("via_tool", [...TOOL.own]));
    // The tool answered the bytes of "{}" it read, as JSON, into the guest's buffer at 256.
    assert.equal(textOf(await self.readMemory(256, length)), "[123,125]");
    reenter = (plugin) => plugin.callI32("ok");
    await assertBothAnswer(self, spinner);
  });
});

testEachIsolation("Hostile: a spinning plugin behind a linker function", {
  permissions: "none",
}, async (t, { createRuntime, isolation }) => {
  await using runtime = createRuntime({ resourceLimits: { maxFuel: null } });
  const { spinner, caller } = await chain(runtime);
  let inner: Promise<number> | undefined;
  await using plugin = await caller(() => inner = spinner.callI32("spin"));

  if (isolation === "worker") {
    await t.step(
      "the spinner's deadline ends it, and its TimeoutError reaches the caller",
      async () => {
        const error = await within(() =>
          assertRejectsWith(() => plugin.callI32("via_linker"), TimeoutError, {
            timeoutMs: INNER_MS,
          })
        );
        await assert.rejects(inner!, (err) => err === error);
        await assertBothAnswer(plugin, spinner);
      },
    );
    // A worker linker function that never settles is ended by the caller's deadline too:
    // tests/worker/worker_backend_test.ts shows it.
  } else {
    await t.step(
      "the spinner is stopped by its deadline, and the caller gets a HostFunctionError, not 0",
      async () => {
        const error = await within(() =>
          assertRejectsWith(() => plugin.callI32("via_linker"), HostFunctionError, {
            module: "env",
            functionName: "hook",
          })
        );
        assert.ok(error.cause instanceof TypeError, `cause: ${error.cause}`);
        // The inner call ran and failed on its own, and nothing was left unhandled.
        await assertRejectsWith(() => inner!, TimeoutError, { timeoutMs: INNER_MS });
        await assertBothAnswer(plugin, spinner);
      },
    );
  }
});

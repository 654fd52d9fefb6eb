/**
 * Host functions that fail in every way a host can: a linker function or a
 * host tool that throws something (an Error, a string, `undefined`, a
 * WasmError), returns a promise where it cannot, returns a value of the
 * wrong wasm type, or a tool result that is not JSON. Each call ends in a
 * typed error, never a silent 0, and the same plugin answers the next call.
 * A result is checked against the import's wasm type before the engine
 * sees it, so nothing is converted without a word (a string or `undefined`
 * for an i32 would otherwise be read as 0).
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  HostFunctionError,
  WasmError,
  type WasmPlugin,
} from "../../mod.ts";
import {
  assertRejectsWith,
  type IsolationKit,
  putString,
  testEachIsolation,
  textOf,
} from "../_helpers.ts";

/** Each export calls the import of the same name; `ok` is the normal call. */
const HOST_WAT = `(module
  (import "env" "run" (func $run))
  (import "env" "int" (func $int (result i32)))
  (import "env" "wide" (func $wide (result i64)))
  (import "env" "pair" (func $pair (result i32 i64)))
  (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $run))
  (func (export "int") (result i32) (call $int))
  (func (export "wide") (result i64) (call $wide))
  (func (export "pair") (result i32 i64) (call $pair))
  (func (export "tool") (param i32 i32 i32 i32) (result i32)
    (call $tool (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 1024) (i32.const 1024)))
  (func (export "ok") (result i32) i32.const 1))`;

/** A plugin of {@linkcode HOST_WAT} whose linker functions and `answer` tool all do `behave()`. */
interface HostPlugin extends AsyncDisposable {
  readonly plugin: WasmPlugin;
  /** What every linker function and the tool do from now on. */
  behave: () => unknown;
}

async function hostPlugin({ createRuntime }: IsolationKit): Promise<HostPlugin> {
  const runtime = createRuntime();
  const host = { behave: (): unknown => undefined };
  const linker = runtime.createLinker();
  for (const name of ["run", "int", "wide", "pair"]) {
    linker.funcWrap("env", name, () => host.behave());
  }
  runtime.registerTool("answer", () => host.behave());
  const compiled = await runtime.compileWat("host-results", HOST_WAT);
  const plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction, Capability.CallTool],
  }, linker);
  return Object.assign(host, { plugin, [Symbol.asyncDispose]: () => runtime.close() });
}

/** Calls the `answer` tool with `{}` and returns what it wrote, as text. */
async function callTool(plugin: WasmPlugin): Promise<string> {
  const [namePtr, nameLen] = await putString(plugin, 0, "answer");
  const [argsPtr, argsLen] = await putString(plugin, 16, "{}");
  const length = await plugin.callI32("tool", [namePtr, nameLen, argsPtr, argsLen]);
  assert.ok(length >= 0, `the tool was not found (${length})`);
  return textOf(await plugin.readMemory(1024, length));
}

class QuotaError extends Error {}

/** Values a host function may throw. */
const THROWN: readonly [string, () => unknown][] = [
  ["an Error", () => new Error("disk on fire")],
  ["an Error subclass", () => new QuotaError("over quota")],
  ["a string", () => "just a string"],
  ["a number", () => 42],
  ["null", () => null],
  ["undefined", () => undefined],
  ["a plain object", () => ({ code: "EFAIL" })],
];

/** A host function that throws `value`. */
function throwing(value: unknown): () => never {
  return () => {
    throw value;
  };
}

/** Asserts `cause` is what the host threw: the same value, in both isolations (`undefined` too). */
function assertSameCause(cause: unknown, thrown: unknown): void {
  assert.equal(cause, thrown);
}

testEachIsolation("Hostile: a linker function that throws anything is a HostFunctionError", {
  permissions: "none",
}, async (t, kit) => {
  await using host = await hostPlugin(kit);
  const { plugin } = host;

  for (const [what, make] of THROWN) {
    await t.step(`it throws ${what}: the thrown value is the cause`, async () => {
      const thrown = make();
      host.behave = throwing(thrown);
      for (const fn of ["run", "int", "wide", "pair"]) {
        const error = await assertRejectsWith(() => plugin.call(fn, []), HostFunctionError, {
          kind: "host_function",
          module: "env",
          functionName: fn,
        });
        assertSameCause(error.cause, thrown);
      }
      assert.equal(await plugin.callI32("ok"), 1);
    });
  }

  await t.step("it throws a WasmError: the caller gets that error as it is", async () => {
    const thrown = new CapabilityDeniedError("Reaching the database is not allowed", {
      capability: Capability.NetworkAccess,
    });
    host.behave = throwing(thrown);
    const error = await assertRejectsWith(() => plugin.callI32("int"), CapabilityDeniedError, {
      capability: Capability.NetworkAccess,
    });
    assert.equal(error, thrown);
    assert.equal(await plugin.callI32("ok"), 1);
  });

  await t.step("each failure is counted once", async () => {
    assert.equal((await plugin.metrics()).failureCount, THROWN.length * 4 + 1);
  });
});

testEachIsolation("Hostile: a linker function that returns what wasm cannot take", {
  permissions: "none",
}, async (t, kit) => {
  const { isolation } = kit;
  await using host = await hostPlugin(kit);
  const { plugin } = host;

  if (isolation === "inline") {
    await t.step("a promise is a HostFunctionError, not a silent 0", async () => {
      // A rejected one included: nobody waits for it, and it is not left unhandled either.
      for (const promise of [() => Promise.resolve(7), () => Promise.reject(new Error("later"))]) {
        host.behave = promise;
        const error = await assertRejectsWith(() => plugin.callI32("int"), HostFunctionError, {
          module: "env",
          functionName: "int",
        });
        assert.ok(error.cause instanceof TypeError, `cause: ${error.cause}`);
        assert.match(error.message, /returned a promise, which only isolation "worker" waits for/);
      }
      // A thenable that is not a Promise is no different.
      host.behave = () => ({ then: (resolve: (value: number) => void) => resolve(7) });
      await assertRejectsWith(() => plugin.callI32("int"), HostFunctionError);
      assert.equal(await plugin.callI32("ok"), 1);
    });
  } else {
    await t.step(
      "a worker waits for a promise: its value, or its rejection as the cause",
      async () => {
        host.behave = () => Promise.resolve(7);
        assert.equal(await plugin.callI32("int"), 7);
        const rejection = new Error("later");
        host.behave = () => Promise.reject(rejection);
        await assertRejectsWith(() => plugin.callI32("int"), HostFunctionError, {
          functionName: "int",
          cause: rejection,
        });
        assert.equal(await plugin.callI32("ok"), 1);
      },
    );
  }

  const mistyped: readonly [string, string, () => unknown][] = [
    ["a string for an i32", "int", () => "abc"],
    ["a numeric string for an i32", "int", () => "12"],
    ["undefined for an i32", "int", () => undefined],
    ["an object for an i32", "int", () => ({})],
    ["a fraction for an i32", "int", () => 3.7],
    ["2^40 for an i32", "int", () => 2 ** 40],
    ["a bigint for an i32", "int", () => 7n],
    ["a number for an i64", "wide", () => 7],
    ["a numeric string for an i64", "wide", () => "7"],
    ["2^64 for an i64", "wide", () => 2n ** 64n],
    ["one value for an (i32, i64) pair", "pair", () => 7],
    ["a pair with a number for its i64", "pair", () => [7, 7]],
    ["a pair that is too short", "pair", () => [7]],
  ];
  for (const [what, fn, value] of mistyped) {
    await t.step(`${what} is a HostFunctionError, never a silent conversion`, async () => {
      host.behave = value;
      const error = await assertRejectsWith(() => plugin.call(fn, []), HostFunctionError, {
        kind: "host_function",
        module: "env",
        functionName: fn,
      });
      assert.ok(error.cause instanceof TypeError, `cause: ${error.cause}`);
      assert.match(error.message, /It returned .* which needs? /);
      assert.equal(await plugin.callI32("ok"), 1);
    });
  }

  if (isolation === "worker") {
    await t.step("a promise's value is checked the same way", async () => {
      host.behave = () => Promise.resolve("abc");
      await assertRejectsWith(() => plugin.callI32("int"), HostFunctionError, {
        functionName: "int",
      });
      assert.equal(await plugin.callI32("ok"), 1);
    });
  }

  await t.step("well-typed values still pass, i64 as bigint and pairs as arrays", async () => {
    host.behave = () => -1n;
    assert.equal(await plugin.callI64("wide"), -1n);
    host.behave = () => [-1, 2n ** 40n];
    assert.deepEqual(await plugin.call("pair"), [-1, 2n ** 40n]);
    // Unsigned i32s and booleans are well-defined i32s; a void function's value is ignored.
    host.behave = () => 0xffff_ffff;
    assert.equal(await plugin.callI32("int"), -1);
    host.behave = () => true;
    assert.equal(await plugin.callI32("int"), 1);
    host.behave = () => "ignored";
    await plugin.callVoid("run");
  });
});

testEachIsolation("Hostile: a host tool that throws or answers something that is not JSON", {
  permissions: "none",
}, async (t, kit) => {
  await using host = await hostPlugin(kit);
  const { plugin } = host;

  for (const [what, make] of THROWN) {
    await t.step(`it throws ${what}: a HostFunctionError of host_call_tool`, async () => {
      const thrown = make();
      host.behave = throwing(thrown);
      const error = await assertRejectsWith(() => callTool(plugin), HostFunctionError, {
        module: "env",
        functionName: "host_call_tool",
      });
      assertSameCause(error.cause, thrown);
      host.behave = () => ({ fine: true });
      assert.equal(await callTool(plugin), '{"fine":true}');
    });
  }

  await t.step("it rejects with a WasmError: the caller gets that error as it is", async () => {
    const thrown = new CapabilityDeniedError("Reaching the database is not allowed", {
      capability: Capability.NetworkAccess,
    });
    host.behave = () => Promise.reject(thrown);
    await assertRejectsWith(() => callTool(plugin), CapabilityDeniedError, {
      message: thrown.message,
    });
    assert.equal(await plugin.callI32("ok"), 1);
  });

  const unserializable: readonly [string, () => unknown][] = [
    ["a bigint", () => 7n],
    ["an object holding a bigint", () => ({ big: 7n })],
    ["a cycle", () => {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      return cycle;
    }],
    ["a function", () => () => 7],
    ["a symbol", () => Symbol("seven")],
    ["an object whose toJSON throws", () => ({
      toJSON() {
        throw new RangeError("no JSON today");
      },
    })],
  ];
  for (const [what, value] of unserializable) {
    await t.step(`it answers ${what}: a HostFunctionError, not "no such tool"`, async () => {
      host.behave = value;
      const error = await assertRejectsWith(() => callTool(plugin), HostFunctionError, {
        functionName: "host_call_tool",
      });
      assert.ok(error.cause instanceof Error, `cause: ${error.cause}`);
      host.behave = () => [1, "two"];
      assert.equal(await callTool(plugin), '[1,"two"]');
    });
  }

  await t.step(
    "the guest sees nothing of a failed answer: its output buffer is untouched",
    async () => {
      await plugin.writeMemory(1024, new Uint8Array(8).fill(0xee));
      host.behave = () => 7n;
      await assertRejectsWith(() => callTool(plugin), WasmError);
      assert.deepEqual(await plugin.readMemory(1024, 8), new Uint8Array(8).fill(0xee));
    },
  );
});

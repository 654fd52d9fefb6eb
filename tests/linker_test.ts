import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  type HostFunction,
  HostFunctionError,
  ImportNotFoundError,
  InstantiationError,
  Linker,
  ResourceLimitError,
  TrapError,
  TypeMismatchError,
} from "../mod.ts";
import { assertRejectsWith, assertThrowsWith, bytesOf, testEachIsolation } from "./_helpers.ts";

const GRANTED = { capabilities: [Capability.CallHostFunction] };

/** Calls `env.twice` on i32, `env.scale` on f64 and `env.wide` on i64. */
const TYPED_WAT = `(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "env" "scale" (func $scale (param f64 f64) (result f64)))
  (import "math" "wide" (func $wide (param i64) (result i64)))
  (func (export "quad") (param i32) (result i32) (call $twice (call $twice (local.get 0))))
  (func (export "scale") (param f64 f64) (result f64) (call $scale (local.get 0) (local.get 1)))
  (func (export "wide") (param i64) (result i64) (call $wide (local.get 0))))`;

/** `env.fail` called from `run`, and from `guarded` inside a catch-all the guest thinks is safe. */
const FAILING_WAT = `(module
  (import "env" "fail" (func $fail))
  (func (export "run") (call $fail))
  (func (export "guarded") (result i32)
    (try (do (call $fail)) (catch_all))
    (i32.const 7)))`;

function typedLinker(linker: Linker): Linker {
  return linker
    .funcWrap("env", "twice", (x: number) => 2 * x)
    .funcWrap("env", "scale", (x: number, by: number) => x * by)
    .funcWrap("math", "wide", (x: bigint) => x << 32n);
}

Deno.test("Linker.funcWrap() defines host functions", { permissions: "none" }, async (t) => {
  await t.step("definitions are listed, found, and replaced by a later one", () => {
    const first: HostFunction = () => 1;
    const second: HostFunction = () => 2;
    const linker = new Linker().funcWrap("env", "f", first).funcWrap("env", "g", first);
    assert.deepEqual(linker.definitions(), [["env", "f"], ["env", "g"]]);
    assert.equal(linker.get("env", "f"), first);
    linker.funcWrap("env", "f", second);
    assert.equal(linker.get("env", "f"), second);
    assert.equal(linker.get("other", "f"), undefined);
    assert.equal(linker.definitions().length, 2);
  });

  await t.step("a name that is not a string is a TypeError", () => {
    assertThrowsWith(
      () => new Linker().funcWrap("env", 1 as unknown as string, () => 0),
      TypeError,
      {
        message: "Cannot define a host function: module and name must be strings",
      },
    );
  });

  await t.step("something other than a function is a TypeError", () => {
    assertThrowsWith(
      () => new Linker().funcWrap("env", "log", "print" as unknown as HostFunction),
      TypeError,
      { message: 'Cannot define host function "env"."log": expected a function, received string' },
    );
  });
});

testEachIsolation("WasmRuntime.createPluginWithLinker() calls linker functions", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("typed", TYPED_WAT);
  const linker = typedLinker(runtime.createLinker());

  await t.step("arguments and results keep their wasm types", async () => {
    await using plugin = await runtime.createPluginWithLinker(compiled, GRANTED, linker);
    assert.equal(await plugin.callI32("quad", [3]), 12);
    assert.equal(await plugin.callF64("scale", [1.5, 3]), 4.5);
    assert.equal(await plugin.callI64("wide", [3n]), 3n << 32n);
  });

  await t.step("a linker function returns several results as an array", async () => {
    const pairWat = `(module (import "env" "pair" (func $pair (param i32) (result i32 i64)))
      (func (export "pair") (param i32) (result i32 i64) (call $pair (local.get 0))))`;
    const pairLinker = runtime.createLinker()
      .funcWrap("env", "pair", (x: number) => [x + 1, BigInt(x) << 40n]);
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat("pair", pairWat),
      GRANTED,
      pairLinker,
    );
    assert.deepEqual(await plugin.call("pair", [2]), [3, 2n << 40n]);
  });

  await t.step("one linker serves several plugins", async () => {
    await using a = await runtime.createPluginWithLinker(compiled, GRANTED, linker);
    await using b = await runtime.createPluginWithLinker(compiled, GRANTED, linker);
    assert.deepEqual([await a.callI32("quad", [1]), await b.callI32("quad", [2])], [4, 8]);
  });

  await t.step("without CallHostFunction the plugin loads but the call is denied", async () => {
    await using plugin = await runtime.createPluginWithLinker(compiled, {}, linker);
    const error = await assertRejectsWith(
      () => plugin.callI32("quad", [3]),
      CapabilityDeniedError,
      {
        kind: "capability_denied",
        capability: "call_host_function",
      },
    );
    assert.match(error.message, /linker function "env"\."twice" needs the "call_host_function"/);
  });

  await t.step("a linker function overrides a built-in of the same name", async () => {
    const logged: number[] = [];
    const overriding = runtime.createLinker().funcWrap(
      "env",
      "host_log",
      (level: number) => void logged.push(level),
    );
    const logWat = `(module (import "env" "host_log" (func $log (param i32 i32 i32)))
      (func (export "run") (call $log (i32.const 2) (i32.const 0) (i32.const 0))))`;
    await using plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat("log", logWat),
      GRANTED,
      overriding,
    );
    await plugin.callVoid("run");
    assert.deepEqual(logged, [2]);
  });
});

testEachIsolation("Linker functions that throw fail the call with HostFunctionError", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("failing", FAILING_WAT);
  const cause = new Error("disk on fire");
  let thrown: unknown = cause;
  const linker = runtime.createLinker().funcWrap("env", "fail", () => {
    throw thrown;
  });
  await using plugin = await runtime.createPluginWithLinker(compiled, GRANTED, linker);

  await t.step("the host's exception is the cause", async () => {
    await assertRejectsWith(() => plugin.callVoid("run"), HostFunctionError, {
      kind: "host_function",
      module: "env",
      functionName: "fail",
      cause,
      message: 'Host function "env"."fail" failed: disk on fire',
    });
  });

  await t.step("the cause is the very object the host threw, whatever its class", async () => {
    class QuotaError extends Error {}
    const own = new QuotaError("over quota");
    thrown = own;
    const error = await assertRejectsWith(() => plugin.callVoid("run"), HostFunctionError);
    assert.equal(error.cause, own);
    thrown = cause;
  });

  await t.step("a guest that catches the exception cannot swallow it", async () => {
    await assertRejectsWith(() => plugin.callI32("guarded"), HostFunctionError, { cause });
  });

  await t.step("a WasmError thrown by the host reaches the caller as it is", async () => {
    thrown = new ResourceLimitError("Quota exceeded", { limit: "quota" });
    await assertRejectsWith(() => plugin.callVoid("run"), ResourceLimitError, {
      limit: "quota",
      message: "Quota exceeded",
    });
  });

  await t.step("the failures are counted", async () => {
    const metrics = await plugin.metrics();
    assert.equal(metrics.failureCount, 4);
    assert.equal(metrics.successCount, 0);
  });
});

testEachIsolation("What a linker function returns is what its import declares", {
  permissions: "none",
}, async (t, { createRuntime, isolation }) => {
  await using runtime = createRuntime();
  let value: unknown;
  const linker = runtime.createLinker()
    .funcWrap("env", "done", () => value)
    .funcWrap("env", "ref", () => value)
    .funcWrap("env", "pair", () => value);
  await using plugin = await runtime.createPluginWithLinker(
    await runtime.compileWat(
      "returns",
      `(module
        (import "env" "done" (func $done))
        (import "env" "ref" (func $ref (result externref)))
        (import "env" "pair" (func $pair (result i32 i32)))
        (func (export "done") (call $done))
        (func (export "ref") (result externref) (call $ref))
        (func (export "id") (param externref) (result externref) (local.get 0))
        (func (export "pair") (result i32) (call $pair) (i32.sub)))`,
    ),
    GRANTED,
    linker,
  );

  await t.step("no results: whatever it returns is dropped, not converted or sent", async () => {
    for (const ignored of [Symbol("s"), { valueOf: () => assert.fail("read") }, "x".repeat(1e6)]) {
      value = ignored;
      await plugin.callVoid("done");
    }
  });

  await t.step("several results: the values it checked are the values the guest gets", async () => {
    let reads = 0;
    const values = [7, 0];
    Object.defineProperty(values, 0, { get: () => reads++ === 0 ? 7 : "seven" });
    value = values;
    assert.equal(await plugin.callI32("pair"), 7);
    assert.equal(reads, 1);
  });

  await t.step("an externref crosses as itself, or is refused in a worker", async () => {
    // Signed or unsigned 64 bits: an i64's range either way.
    const exact = [42, -1.5, "text", null, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n];
    for (const ref of exact) {
      value = ref;
      assert.deepEqual(await plugin.call("ref", []), [ref]);
      assert.deepEqual(await plugin.call("id", [ref]), [ref]);
    }
    // An array, a boolean, bytes and a lone surrogate arrived converted: as its first element,
    // 1 or 0, a copy, U+FFFD.
    const objects = [{ token: 1 }, 2n ** 100n, Symbol("s"), [1], [], true, bytesOf("b"), "\ud800"];
    for (const ref of objects) {
      value = ref;
      if (isolation === "inline") {
        assert.deepEqual(await plugin.call("ref", []), [ref]);
        assert.deepEqual(await plugin.call("id", [ref]), [ref]);
      } else {
        await assertRejectsWith(() => plugin.call("ref", []), HostFunctionError);
        await assertRejectsWith(() => plugin.call("id", [ref]), TypeMismatchError);
      }
    }
  });
});

testEachIsolation("WasmRuntime reports imports it cannot provide", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const notProvided = "is not provided by the linker or the host";
  const cases: [string, string, string, string, string][] = [
    ["an unknown env function", '(import "env" "missing" (func))', "env", "missing", notProvided],
    [
      "an unknown module",
      '(import "vendor" "hook" (func (param i32)))',
      "vendor",
      "hook",
      notProvided,
    ],
    // A linker defines functions only: the message says why, not to define it.
    [
      "a shared memory import",
      '(import "env" "memory" (memory 1 2 shared))',
      "env",
      "memory",
      "is a shared memory, which cannot be imported: the runtime gives each instance a new " +
      "unshared 32-bit memory of 64 KiB pages for an imported one, and a linker defines " +
      "functions only",
    ],
    [
      "a 64-bit memory import",
      '(import "env" "memory" (memory i64 1))',
      "env",
      "memory",
      "is a 64-bit memory, which cannot be imported",
    ],
    [
      "a 64-bit table import",
      '(import "env" "table" (table i64 1 funcref))',
      "env",
      "table",
      "is a 64-bit table of funcref, which cannot be imported",
    ],
    [
      "a global import",
      '(import "env" "base" (global i32))',
      "env",
      "base",
      "is a global, which cannot be imported: a linker defines functions only",
    ],
  ];
  for (const [what, decl, module, importName, why] of cases) {
    await t.step(`${what} is an ImportNotFoundError`, async () => {
      const compiled = await runtime.compileWat("imports", `(module ${decl})`);
      assert.equal(compiled.imports[0]?.module, module);
      const error = await assertRejectsWith(
        () => runtime.createPluginWithLinker(compiled, GRANTED, runtime.createLinker()),
        ImportNotFoundError,
        { kind: "import_not_found", module, importName },
      );
      assert.ok(
        error.message.startsWith(`Import not found: "${module}"."${importName}" ${why}`),
        error.message,
      );
      assert.equal(runtime.pluginCount, 0);
    });
  }
  await t.step("without a linker, too", async () => {
    await assertRejectsWith(
      () => runtime.createPluginFromWat('(module (import "env" "log" (func (param i32))))'),
      ImportNotFoundError,
      { module: "env", importName: "log" },
    );
  });
});

testEachIsolation("A start function that fails makes an InstantiationError", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();

  await t.step("a trap in the start function", async () => {
    const error = await assertRejectsWith(
      () => runtime.createPluginFromWat("(module (func $start unreachable) (start $start))"),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.ok(error.cause instanceof TrapError);
    assert.match(error.message, /Plugin trapped: unreachable/);
  });

  await t.step("a linker function that throws during start", async () => {
    const compiled = await runtime.compileWat(
      "start",
      '(module (import "env" "fail" (func $fail)) (start $fail))',
    );
    const linker = runtime.createLinker().funcWrap("env", "fail", () => {
      throw new Error("not now");
    });
    const error = await assertRejectsWith(
      () => runtime.createPluginWithLinker(compiled, GRANTED, linker),
      InstantiationError,
    );
    assert.ok(error.cause instanceof HostFunctionError);
    assert.equal(runtime.pluginCount, 0);
  });

  await t.step("a capability denied during start", async () => {
    const compiled = await runtime.compileWat(
      "start",
      '(module (import "env" "hook" (func $hook)) (start $hook))',
    );
    const linker = runtime.createLinker().funcWrap("env", "hook", () => {});
    const error = await assertRejectsWith(
      () => runtime.createPluginWithLinker(compiled, {}, linker),
      InstantiationError,
    );
    assert.ok(error.cause instanceof CapabilityDeniedError);
  });
});

testEachIsolation("Function references to and from linker functions are checked", {
  permissions: "none",
}, async (t, { createRuntime, isolation }) => {
  await using runtime = createRuntime();
  const wat = `(module
    (import "env" "keep" (func $keep (param funcref)))
    (import "env" "give" (func $give (result funcref)))
    (func $f)
    (elem declare func $f)
    (func (export "keepNull") (call $keep (ref.null func)))
    (func (export "keepF") (call $keep (ref.func $f)))
    (func (export "give") (result i32) (ref.is_null (call $give))))`;
  let kept: unknown = "unset";
  let given: unknown = null;
  const linker = runtime.createLinker()
    .funcWrap("env", "keep", (ref: unknown) => void (kept = ref))
    .funcWrap("env", "give", () => given);
  await using plugin = await runtime.createPluginWithLinker(
    await runtime.compileWat("refs", wat),
    GRANTED,
    linker,
  );

  await t.step("null crosses both ways", async () => {
    await plugin.callVoid("keepNull");
    assert.equal(kept, null);
    assert.equal(await plugin.callI32("give"), 1);
  });

  await t.step("a guest function reaches an inline host; not a worker's", async () => {
    // A worker's host got a Uint8Array of the function's arity instead.
    if (isolation === "inline") {
      await plugin.callVoid("keepF");
      assert.equal(typeof kept, "function");
    } else {
      const error = await assertRejectsWith(() => plugin.callVoid("keepF"), HostFunctionError);
      assert.match(error.message, /cannot cross to the host from the plugin's worker/);
    }
  });

  await t.step("a result that is no function reference fails the host function", async () => {
    // Inline the engine's TypeError, unnamed: a TypeMismatchError.
    given = { not: "a function" };
    const error = await assertRejectsWith(() => plugin.callI32("give"), HostFunctionError);
    assert.match(error.message, /"env"\."give".*funcref result/);
    given = null;
    assert.equal(await plugin.callI32("give"), 1);
  });
});

import assert from "node:assert/strict";
import {
  CallDepthExceededError,
  Capability,
  HostFunctionError,
  InvalidFunctionError,
  MemoryOutOfBoundsError,
  OutOfMemoryError,
  type PluginEvent,
  PluginStateError,
  TimeoutError,
  TrapError,
  TypeMismatchError,
  WasiExit,
  type WasmPlugin,
} from "../mod.ts";
import {
  assertRejectsWith,
  assertThrowsWith,
  bytesOf,
  delay,
  pluginThatThrows,
  putString,
  testEachIsolation,
  textOf,
} from "./_helpers.ts";
import {
  BYTES_WAT,
  CALLS_WAT,
  growableWat,
  hostFunctionsWat,
  LIFECYCLE_WAT,
  NO_ALLOCATOR_WAT,
  toolCallWat,
  TRAPS_WAT,
} from "./fixtures/wat.ts";
import { twoMemoriesBinary } from "./fixtures/binary.ts";

const PAGE = 65_536;

testEachIsolation("WasmPlugin typed calls return the export's results", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(CALLS_WAT);
  const { plugin } = loaded;

  await t.step("callI32() returns a number", async () => {
    assert.equal(await plugin.callI32("add", [10, 5]), 15);
    assert.equal(await plugin.callI32("add", [0x7fff_ffff, 1]), -0x8000_0000);
  });

  await t.step("callI32() accepts the unsigned range and returns it signed", async () => {
    assert.equal(await plugin.callI32("echo_i32", [0xffff_ffff]), -1);
    assert.equal(await plugin.callI32("echo_i32", [-0x8000_0000]), -0x8000_0000);
  });

  await t.step("callI64() takes bigints and safe integers, returns a bigint", async () => {
    assert.equal(await plugin.callI64("add_i64", [2n ** 40n, 1]), 2n ** 40n + 1n);
    assert.equal(await plugin.callI64("add_i64", [Number.MAX_SAFE_INTEGER, 1n]), 2n ** 53n);
    assert.equal(await plugin.callI64("echo_i64", [-(2n ** 63n)]), -(2n ** 63n));
    assert.equal(await plugin.callI64("echo_i64", [2n ** 64n - 1n]), -1n);
  });

  await t.step("callF32() rounds to single precision", async () => {
    assert.equal(await plugin.callF32("half", [3]), 1.5);
    assert.equal(await plugin.callF32("half", [0.1]), Math.fround(Math.fround(0.1) * 0.5));
  });

  await t.step("callF64()", async () => {
    assert.equal(await plugin.callF64("sqrt", [2]), Math.SQRT2);
    assert.equal(await plugin.callF64("pi"), Math.PI);
    assert.ok(Number.isNaN(await plugin.callF64("sqrt", [-1])));
  });

  await t.step("callVoid() returns undefined", async () => {
    assert.equal(await plugin.callVoid("nothing"), undefined);
    await plugin.callVoid("store", [0, 42]);
    assert.deepEqual(await plugin.readMemory(0, 1), new Uint8Array([42]));
  });

  await t.step("call() returns every result (multi-value)", async () => {
    assert.deepEqual(await plugin.call("swap", [1, 2n]), [2n, 1]);
    assert.deepEqual(await plugin.call("divmod", [17, 5]), [3, 2]);
    assert.deepEqual(await plugin.call("add", [1, 2]), [3]);
    assert.deepEqual(await plugin.call("nothing"), []);
  });
});

testEachIsolation("WasmPlugin calls check arguments against the signature", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(CALLS_WAT);
  const { plugin } = loaded;

  await t.step("a wrong argument count is a TypeMismatchError", async () => {
    await assertRejectsWith(() => plugin.callI32("add", [1]), TypeMismatchError, {
      kind: "type_mismatch",
      message: 'Cannot call "add": expected 2 arguments, received 1',
    });
    await assertRejectsWith(() => plugin.callI32("echo_i32", [1, 2]), TypeMismatchError, {
      message: 'Cannot call "echo_i32": expected 1 argument, received 2',
    });
  });

  const wrong: [string, string, unknown[], RegExp][] = [
    ["a string for an i32", "add", [1, "2"], /parameter 1 expects an i32 .*received string "2"/],
    ["2^32 for an i32", "add", [2 ** 32, 0], /parameter 0 expects an i32 .*number 4294967296/],
    ["-2^31 - 1 for an i32", "add", [0, -(2 ** 31) - 1], /parameter 1 expects an i32/],
    ["a fraction for an i32", "add", [1.5, 0], /parameter 0 expects an i32 .*number 1\.5/],
    ["NaN for an i32", "echo_i32", [NaN], /parameter 0 expects an i32 .*number NaN/],
    ["a bigint for an i32", "echo_i32", [1n], /parameter 0 expects an i32 .*bigint 1n/],
    ["an unsafe number for an i64", "echo_i64", [2 ** 53], /parameter 0 expects an i64/],
    ["2^64 for an i64", "echo_i64", [2n ** 64n], /parameter 0 expects an i64/],
    ["a fraction for an i64", "echo_i64", [0.5], /a bigint, or a safe integer/],
    ["a string for an f64", "sqrt", ["4"], /parameter 0 expects an f64 \(a number\)/],
    ["a bigint for an f32", "half", [1n], /parameter 0 expects an f32/],
  ];
  for (const [what, fn, args, message] of wrong) {
    await t.step(`${what} is a TypeMismatchError naming the parameter`, async () => {
      const error = await assertRejectsWith(() => plugin.call(fn, args), TypeMismatchError);
      assert.match(error.message, message);
    });
  }

  await t.step("arguments that are not an array are a TypeMismatchError", async () => {
    await assertRejectsWith(
      () => plugin.callI32("add", "1, 2" as unknown as number[]),
      TypeMismatchError,
      { message: 'Cannot call "add": expected an array of arguments, received string "1, 2"' },
    );
  });

  await t.step("a missing export is an InvalidFunctionError", async () => {
    await assertRejectsWith(() => plugin.callI32("subtract", [1, 2]), InvalidFunctionError, {
      kind: "invalid_function",
      functionName: "subtract",
      message: 'Function not found: "subtract" is not an exported function',
    });
  });

  await t.step("an export that is not a function is an InvalidFunctionError", async () => {
    await assertRejectsWith(() => plugin.callI32("answer"), InvalidFunctionError, {
      functionName: "answer",
    });
    await assertRejectsWith(() => plugin.call("memory"), InvalidFunctionError);
  });

  const mismatched: [string, (p: WasmPlugin) => Promise<unknown>, string][] = [
    [
      "callI32() on an f64 export",
      (p) => p.callI32("pi"),
      'Cannot call "pi" as returning (i32): it returns (f64)',
    ],
    [
      "callI64() on an i32 export",
      (p) => p.callI64("echo_i32", [1]),
      'Cannot call "echo_i32" as returning (i64): it returns (i32)',
    ],
    [
      "callF32() on an f64 export",
      (p) => p.callF32("sqrt", [1]),
      'Cannot call "sqrt" as returning (f32): it returns (f64)',
    ],
    [
      "callF64() on multi-value",
      (p) => p.callF64("divmod", [1, 1]),
      'Cannot call "divmod" as returning (f64): it returns (i32, i32)',
    ],
    [
      "callVoid() on an i32 export",
      (p) => p.callVoid("add", [1, 2]),
      'Cannot call "add" as returning (): it returns (i32)',
    ],
  ];
  for (const [what, run, message] of mismatched) {
    await t.step(`${what} is a TypeMismatchError`, async () => {
      await assertRejectsWith(() => run(plugin), TypeMismatchError, { message });
    });
  }
});

testEachIsolation(
  "WasmPlugin call options are validated",
  { permissions: "none" },
  async (t, { loadPlugin }) => {
    await using loaded = await loadPlugin(CALLS_WAT);
    const { plugin } = loaded;

    await t.step("a non-positive timeoutMs is a RangeError", async () => {
      await assertRejectsWith(() => plugin.callI32("add", [1, 2], { timeoutMs: 0 }), RangeError, {
        message: "Cannot call with 'timeoutMs' = 0: it must be a positive number",
      });
    });
    await t.step("a fractional fuel is a RangeError", async () => {
      await assertRejectsWith(() => plugin.callI32("add", [1, 2], { fuel: 1.5 }), RangeError, {
        message: "Cannot call with 'fuel' = 1.5: it must be a positive integer",
      });
    });
    await t.step("valid budgets are accepted", async () => {
      const signal = new AbortController().signal;
      assert.equal(await plugin.callI32("add", [1, 2], { signal, timeoutMs: 100, fuel: 1000 }), 3);
    });
    await t.step("an aborted signal rejects with its reason", async () => {
      const reason = new Error("cancelled by the caller");
      await assert.rejects(
        plugin.callI32("add", [1, 2], { signal: AbortSignal.abort(reason) }),
        (err) => err === reason,
      );
      assert.equal(await plugin.callI32("add", [1, 2]), 3);
    });
  },
);

testEachIsolation("WasmPlugin turns traps into typed errors and stays usable", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(TRAPS_WAT);
  const { plugin } = loaded;

  const traps: [string, string, number[], string][] = [
    ["unreachable", "unreachable", [], "unreachable"],
    ["integer divide by zero", "divide", [1, 0], "divide by zero"],
    ["integer overflow", "divide", [-(2 ** 31), -1], "divide result unrepresentable"],
    ["out-of-bounds memory access", "load", [PAGE - 2], "memory access out of bounds"],
  ];
  for (const [what, fn, args, trap] of traps) {
    await t.step(`${what} is a TrapError`, async () => {
      const error = await assertRejectsWith(() => plugin.call(fn, args), TrapError, {
        kind: "trap",
        trap,
        message: `Plugin trapped: ${trap}`,
      });
      assert.ok(error.cause instanceof WebAssembly.RuntimeError);
    });
  }

  await t.step("an uncaught guest exception is a TrapError that keeps nothing of it", async () => {
    // Its payload is the guest's (and a worker cannot carry it): the same error in both isolations.
    await using thrower = await loadPlugin(
      '(module (tag $t (param i32)) (func (export "boom") (result i32) i32.const 7 throw $t))',
    );
    const error = await assertRejectsWith(() => thrower.plugin.callI32("boom"), TrapError, {
      trap: "uncaught wasm exception",
      message: "Plugin trapped: uncaught wasm exception",
      cause: undefined,
    });
    assert.ok(!("cause" in error));
  });

  await t.step("recursion past maxCallDepth is a CallDepthExceededError", async () => {
    await using deep = await loadPlugin(TRAPS_WAT, { resourceLimits: { maxCallDepth: 50 } });
    await assertRejectsWith(() => deep.plugin.callI32("recurse", [0]), CallDepthExceededError, {
      kind: "call_depth_exceeded",
      maxCallDepth: 50,
      message: "Call depth exceeded the limit of 50",
    });
  });

  await t.step("the engine's stack overflow is a CallDepthExceededError too", async () => {
    await using unbounded = await loadPlugin(TRAPS_WAT, {
      resourceLimits: { maxCallDepth: Infinity },
    });
    const error = await assertRejectsWith(
      () => unbounded.plugin.callI32("recurse", [0]),
      CallDepthExceededError,
      { maxCallDepth: Infinity },
    );
    assert.ok(error.cause instanceof RangeError);
    assert.match(error.message, /the engine's stack overflowed/);
  });

  await t.step("the next call succeeds", async () => {
    assert.equal(await plugin.callI32("divide", [10, 2]), 5);
    assert.equal(plugin.state, "created");
  });
});

testEachIsolation("Memory accesses made before stop() or the runtime's close() finish", {
  permissions: "none",
}, async (t, { loadPlugin, createRuntime }) => {
  // A worker plugin's were ended with the worker: "The plugin's worker stopped answering".
  await t.step("stop()", async () => {
    await using loaded = await loadPlugin(growableWat());
    const { plugin } = loaded;
    const written = plugin.writeMemory(100, bytesOf("hi"));
    const read = plugin.readMemory(100, 2);
    await plugin.stop();
    await written;
    assert.equal(textOf(await read), "hi");
  });

  await t.step("the runtime's close()", async () => {
    const runtime = createRuntime();
    const plugin = await runtime.createPluginFromWat(growableWat());
    await plugin.writeMemory(100, bytesOf("ok"));
    const read = plugin.readMemory(100, 2);
    await runtime.close();
    assert.equal(textOf(await read), "ok");
  });
});

testEachIsolation("WasmPlugin.readMemory() and writeMemory() are bounds-checked", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(growableWat());
  const { plugin } = loaded;

  await t.step("bytes written are read back", async () => {
    await plugin.writeMemory(100, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await plugin.readMemory(99, 5), new Uint8Array([0, 1, 2, 3, 0]));
    assert.deepEqual(await plugin.readMemory(PAGE, 0), new Uint8Array());
  });

  await t.step("the result is a copy", async () => {
    const bytes = await plugin.readMemory(100, 1);
    bytes[0] = 99;
    assert.deepEqual(await plugin.readMemory(100, 1), new Uint8Array([1]));
  });

  const outside: [string, number, number][] = [
    ["past the end", PAGE - 1, 2],
    ["at the end", PAGE, 1],
    ["a negative offset", -1, 1],
    ["a negative length", 0, -1],
    ["a fractional offset", 0.5, 1],
    ["a huge length", 0, 2 ** 53],
  ];
  for (const [what, offset, length] of outside) {
    await t.step(`reading ${what} is a MemoryOutOfBoundsError`, async () => {
      await assertRejectsWith(() => plugin.readMemory(offset, length), MemoryOutOfBoundsError, {
        kind: "memory_out_of_bounds",
        offset,
        size: length,
      });
    });
  }

  await t.step("writing past the end is a MemoryOutOfBoundsError and writes nothing", async () => {
    const error = await assertRejectsWith(
      () => plugin.writeMemory(PAGE - 1, new Uint8Array([7, 7])),
      MemoryOutOfBoundsError,
      { offset: PAGE - 1, size: 2 },
    );
    assert.match(error.message, /2 bytes at offset 65535 exceed the memory of 65536 bytes/);
    assert.deepEqual(await plugin.readMemory(PAGE - 1, 1), new Uint8Array([0]));
  });

  await t.step("writing something else than a Uint8Array is a TypeError", async () => {
    await assertRejectsWith(
      () => plugin.writeMemory(0, [1, 2] as unknown as Uint8Array),
      TypeError,
      {
        message: "Cannot write memory: expected a Uint8Array, received an array",
      },
    );
  });

  await t.step("memory grown by the guest is visible", async () => {
    assert.equal(await plugin.callI32("grow", [1]), 1);
    await plugin.writeMemory(PAGE, new Uint8Array([5]));
    assert.deepEqual(await plugin.readMemory(PAGE, 1), new Uint8Array([5]));
  });
});

testEachIsolation("WasmPlugin finds the memory the host can access", {
  permissions: "none",
}, async (t, { createRuntime, loadPlugin }) => {
  const noMemory = /The plugin has no memory the host can access: export one named "memory"/;

  await t.step("the only exported memory is used whatever its name", async () => {
    await using loaded = await loadPlugin(
      '(module (memory (export "f") 1) (data (i32.const 8) "hi"))',
    );
    assert.equal(textOf(await loaded.plugin.readMemory(8, 2)), "hi");
  });

  await t.step('among several memories, the one named "memory" is used', async () => {
    await using runtime = createRuntime();
    const compiled = await runtime.compile("two", twoMemoriesBinary("other", "memory", "yes"));
    await using plugin = await runtime.createPlugin(compiled);
    assert.equal(textOf(await plugin.readMemory(0, 3)), "yes");
  });

  await t.step('several memories, none named "memory", is an error', async () => {
    await using runtime = createRuntime();
    const compiled = await runtime.compile("two", twoMemoriesBinary("a", "b"));
    await using plugin = await runtime.createPlugin(compiled);
    const error = await assertRejectsWith(() => plugin.readMemory(0, 1), MemoryOutOfBoundsError);
    assert.match(error.message, noMemory);
  });

  await t.step("a module without memory has none to read or write", async () => {
    await using loaded = await loadPlugin("(module (memory 1))");
    const error = await assertRejectsWith(
      () => loaded.plugin.writeMemory(0, new Uint8Array([1])),
      MemoryOutOfBoundsError,
      { offset: 0, size: 1 },
    );
    assert.match(error.message, noMemory);
    assert.equal((await loaded.plugin.metrics()).currentMemoryBytes, 0);
  });
});

testEachIsolation(
  "WasmPlugin bytes calls follow the ABI",
  { permissions: "none" },
  async (t, { loadPlugin }) => {
    await using loaded = await loadPlugin(BYTES_WAT);
    const { plugin } = loaded;
    const freed = (): Promise<number> => plugin.callI32("freed");

    await t.step("callWithBytes() passes (ptr, len) and returns the i32, then frees", async () => {
      assert.equal(await plugin.callWithBytes("sum", new Uint8Array([1, 2, 3, 250])), 256);
      assert.equal(await freed(), 1);
    });

    await t.step("callWithBytes() with no bytes allocates nothing", async () => {
      assert.equal(await plugin.callWithBytes("sum", new Uint8Array()), 0);
      assert.equal(await freed(), 1);
    });

    await t.step("callBytes() copies the packed (ptr, len) output out, frees both", async () => {
      assert.deepEqual(
        await plugin.callBytes("reverse", new Uint8Array([1, 2, 3])),
        new Uint8Array([3, 2, 1]),
      );
      assert.equal(await freed(), 3);
    });

    await t.step("each output of a run of same-length calls is a buffer of its own", async () => {
      const outputs: Uint8Array[] = [];
      for (let i = 0; i < 5; i++) {
        outputs.push(await plugin.callBytes("reverse", bytesOf(`ab${i}`)));
      }
      outputs[0]!.fill(0);
      outputs.forEach((output, i) => {
        if (i > 0) assert.deepEqual(output, bytesOf(`${i}ba`));
        assert.equal(output.byteOffset, 0);
        assert.equal(output.buffer.byteLength, 3);
      });
      assert.equal(new Set(outputs.map((output) => output.buffer)).size, 5);
      // The run ends: an output of another length is exact too.
      const longer = await plugin.callBytes("reverse", bytesOf("abcde"));
      assert.deepEqual(longer, bytesOf("edcba"));
      assert.equal(longer.buffer.byteLength, 5);
      assert.equal(await freed(), 15);
    });

    await t.step("an output that is the input buffer is freed once", async () => {
      assert.deepEqual(await plugin.callBytes("echo", bytesOf("hello")), bytesOf("hello"));
      assert.equal(await freed(), 16);
    });

    await t.step("callJson() is JSON on both sides", async () => {
      const value = { question: "size?", sizes: [1, 2.5, null], nested: { ok: true } };
      assert.deepEqual(await plugin.callJson("echo", value), value);
    });

    await t.step("an output outside memory is a MemoryOutOfBoundsError", async () => {
      await assertRejectsWith(
        () => plugin.callBytes("out_of_bounds", new Uint8Array([1])),
        MemoryOutOfBoundsError,
        { offset: 65530, size: 100 },
      );
    });

    await t.step("output that is not JSON is a TypeMismatchError, and a failed call", async () => {
      const executed: boolean[] = [];
      const onExecuted = (event: PluginEvent<"executed">) => executed.push(event.detail.success);
      plugin.addEventListener("executed", onExecuted);
      const before = await plugin.metrics();
      const error = await assertRejectsWith(
        () => plugin.callJson("garbage", {}),
        TypeMismatchError,
        {
          message: '"garbage" returned 4 bytes that are not UTF-8 JSON',
        },
      );
      plugin.removeEventListener("executed", onExecuted);
      assert.ok(error.cause instanceof Error);
      const after = await plugin.metrics();
      assert.equal(after.failureCount - before.failureCount, 1);
      assert.equal(after.successCount, before.successCount);
      assert.deepEqual(executed, [false]);
    });

    await t.step("a value JSON cannot encode is a TypeMismatchError", async () => {
      await assertRejectsWith(() => plugin.callJson("echo", undefined), TypeMismatchError, {
        message: 'Cannot call "echo": expected a JSON-serializable argument, received undefined',
      });
      const error = await assertRejectsWith(
        () => plugin.callJson("echo", { n: 1n }),
        TypeMismatchError,
      );
      assert.ok(error.cause instanceof TypeError);
    });

    await t.step("input that is not a Uint8Array is a TypeMismatchError", async () => {
      await assertRejectsWith(
        () => plugin.callBytes("echo", "hello" as unknown as Uint8Array),
        TypeMismatchError,
        { message: 'Cannot call "echo": expected a Uint8Array, received string "hello"' },
      );
    });

    await t.step("a function of another shape is a TypeMismatchError", async () => {
      await assertRejectsWith(
        () => plugin.callBytes("one_param", new Uint8Array(1)),
        TypeMismatchError,
        {
          message:
            'Cannot call "one_param" with bytes: expected (i32 ptr, i32 len) -> i64, found (i32) -> (i32)',
        },
      );
      await assertRejectsWith(
        () => plugin.callWithBytes("echo", new Uint8Array(1)),
        TypeMismatchError,
      );
    });

    await t.step("a missing function is an InvalidFunctionError", async () => {
      await assertRejectsWith(
        () => plugin.callBytes("nope", new Uint8Array(1)),
        InvalidFunctionError,
        {
          functionName: "nope",
        },
      );
    });

    await t.step("the plugin is ready for the next call after each failure", async () => {
      assert.equal(await plugin.callWithBytes("sum", new Uint8Array([4, 5])), 9);
    });

    await t.step("malloc and free(ptr) serve when alloc and dealloc are absent", async () => {
      const wat = BYTES_WAT.replace('"alloc"', '"malloc"').replace(
        '(func (export "dealloc") (param i32 i32)',
        '(func (export "free") (param i32)',
      );
      await using other = await loadPlugin(wat);
      assert.deepEqual(await other.plugin.callBytes("reverse", bytesOf("ab")), bytesOf("ba"));
      assert.equal(await other.plugin.callI32("freed"), 2);
    });

    await t.step(
      "an allocator answering 0 is an OutOfMemoryError; nothing is written",
      async () => {
        await using other = await loadPlugin(`(module
        (memory (export "memory") 1)
        (data (i32.const 0) "keep")
        (func (export "alloc") (param i32) (result i32) i32.const 0)
        (func (export "sum") (param i32 i32) (result i32) i32.const 7)
        (func (export "head") (result i32) i32.const 0 i32.load))`);
        await assertRejectsWith(
          () => other.plugin.callWithBytes("sum", bytesOf("overwrite")),
          OutOfMemoryError,
          { message: 'The plugin\'s alloc(9) answered 0 (out of memory) for the input of "sum"' },
        );
        assert.deepEqual(await other.plugin.readMemory(0, 4), bytesOf("keep"));
        assert.equal(await other.plugin.callWithBytes("sum", new Uint8Array()), 7);
      },
    );

    await t.step("a plugin without an allocator is an InvalidFunctionError", async () => {
      await using other = await loadPlugin(NO_ALLOCATOR_WAT);
      const error = await assertRejectsWith(
        () => other.plugin.callWithBytes("len", new Uint8Array([1])),
        InvalidFunctionError,
        { functionName: "alloc" },
      );
      assert.match(
        error.message,
        /exports no allocator "alloc\(size: i32\) -> i32" \(or "malloc"\)/,
      );
    });
  },
);

testEachIsolation("WasmPlugin.metrics() counts calls, failures and memory", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(growableWat());
  const { plugin } = loaded;

  await t.step("before any call", async () => {
    assert.deepEqual(await plugin.metrics(), {
      callCount: 0,
      successCount: 0,
      failureCount: 0,
      avgExecutionTimeNs: 0,
      totalExecutionTimeNs: 0,
      p50ExecutionTimeNs: 0,
      p99ExecutionTimeNs: 0,
      maxExecutionTimeNs: 0,
      fuelConsumed: 0,
      peakMemoryBytes: PAGE,
      currentMemoryBytes: PAGE,
      lastExecution: null,
      droppedLogRecords: 0,
    });
  });

  await t.step("after successes and failures", async () => {
    const before = Date.now();
    assert.equal(await plugin.callI32("size"), 1);
    assert.equal(await plugin.callI32("grow", [2]), 1);
    await assert.rejects(plugin.callI32("missing"));
    await assert.rejects(plugin.callI32("grow", ["x" as unknown as number]));
    const metrics = await plugin.metrics();
    assert.equal(metrics.callCount, 4);
    assert.equal(metrics.successCount, 2);
    assert.equal(metrics.failureCount, 2);
    assert.equal(metrics.avgExecutionTimeNs, Math.round(metrics.totalExecutionTimeNs / 4));
    assert.ok(metrics.p50ExecutionTimeNs > 0, `p50 ${metrics.p50ExecutionTimeNs}`);
    assert.ok(metrics.p50ExecutionTimeNs <= metrics.p99ExecutionTimeNs);
    assert.ok(metrics.p99ExecutionTimeNs <= metrics.maxExecutionTimeNs);
    assert.ok(metrics.maxExecutionTimeNs <= metrics.totalExecutionTimeNs);
    assert.ok(metrics.lastExecution instanceof Date);
    assert.ok(metrics.lastExecution.getTime() >= before - 1);
    assert.ok(metrics.lastExecution.getTime() <= Date.now() + 1);
    assert.equal(metrics.currentMemoryBytes, 3 * PAGE);
    assert.equal(metrics.peakMemoryBytes, 3 * PAGE);
  });

  await t.step("a snapshot does not change afterwards", async () => {
    const snapshot = await plugin.metrics();
    await plugin.callI32("size");
    assert.equal(snapshot.callCount, 4);
    assert.ok(Object.isFrozen(snapshot));
    assert.equal((await plugin.metrics()).callCount, 5);
  });
});

testEachIsolation("WasmPlugin moves through its lifecycle states", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("lifecycle", LIFECYCLE_WAT);
  const seen: [step: number, state: string][] = [];
  const linker = runtime.createLinker().funcWrap("env", "probe", (step: number) => {
    seen.push([step, plugin.state]);
  });
  const plugin = await runtime.createPluginWithLinker(compiled, {
    capabilities: [Capability.CallHostFunction],
  }, linker);

  await t.step("created -> initializing (_initialize, then init) -> ready", async () => {
    assert.equal(plugin.state, "created");
    await plugin.initialize();
    assert.deepEqual(seen, [[1, "initializing"], [2, "initializing"]]);
    assert.equal(plugin.state, "ready");
  });

  await t.step("initializing again is a no-op", async () => {
    await plugin.initialize();
    assert.equal(seen.length, 2);
  });

  await t.step("ready -> running -> ready around a call", async () => {
    await plugin.callVoid("work");
    assert.deepEqual(seen[2], [3, "running"]);
    assert.equal(plugin.state, "ready");
  });

  await t.step("paused plugins refuse calls until resumed", async () => {
    await plugin.pause();
    assert.equal(plugin.state, "paused");
    await plugin.pause();
    await assertRejectsWith(() => plugin.callVoid("work"), PluginStateError, {
      state: "paused",
      message: 'Cannot call "work" on plugin "lifecycle": the plugin is paused',
    });
    await assertRejectsWith(() => plugin.initialize(), PluginStateError, { state: "paused" });
    plugin.resume();
    assert.equal(plugin.state, "ready");
    await plugin.callVoid("work");
  });

  await t.step("resume() without pause() is a PluginStateError", () => {
    assertThrowsWith(() => plugin.resume(), PluginStateError, { state: "ready" });
  });

  await t.step("-> stopped, after which everything is refused", async () => {
    await plugin.stop();
    assert.equal(plugin.state, "stopped");
    await plugin.stop();
    const refused = { state: "stopped", kind: "plugin_state" };
    await assertRejectsWith(() => plugin.callVoid("work"), PluginStateError, {
      ...refused,
      message: 'Cannot call "work" on plugin "lifecycle": the plugin is stopped',
    });
    await assertRejectsWith(
      () => plugin.callBytes("work", new Uint8Array()),
      PluginStateError,
      refused,
    );
    await assertRejectsWith(() => plugin.readMemory(0, 1), PluginStateError, refused);
    await assertRejectsWith(() => plugin.initialize(), PluginStateError, refused);
    await assertRejectsWith(() => plugin.pause(), PluginStateError, refused);
    assert.equal(runtime.pluginCount, 0);
  });
});

testEachIsolation("WasmPlugin.initialize() runs only the initializers that exist", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();

  await t.step("init alone runs", async () => {
    await using plugin = await runtime.createPluginFromWat(`(module
      (global $ran (mut i32) (i32.const 0))
      (func (export "init") (global.set $ran (i32.const 1)))
      (func (export "ran") (result i32) (global.get $ran)))`);
    await plugin.initialize();
    assert.equal(await plugin.callI32("ran"), 1);
  });

  await t.step("a module without initializers becomes ready", async () => {
    await using plugin = await runtime.createPluginFromWat("(module)");
    await plugin.initialize();
    assert.equal(plugin.state, "ready");
  });

  await t.step("an init that traps leaves the plugin in error", async () => {
    await using plugin = await runtime.createPluginFromWat(
      '(module (func (export "init") unreachable) (func (export "f")))',
    );
    await assertRejectsWith(() => plugin.initialize(), TrapError, { trap: "unreachable" });
    assert.equal(plugin.state, "error");
    await assertRejectsWith(() => plugin.callVoid("f"), PluginStateError, { state: "error" });
    await assertRejectsWith(() => plugin.initialize(), PluginStateError, { state: "error" });
    await plugin.stop();
    assert.equal(plugin.state, "stopped");
  });
});

testEachIsolation("WasmPlugin runs overlapping calls one at a time", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(hostFunctionsWat("host_call_tool"), {
    capabilities: [Capability.CallTool],
  });
  const { runtime, plugin } = loaded;
  const log: string[] = [];
  runtime.registerTool("slow", async (args) => {
    const { tag } = args as { tag: string };
    log.push(`start ${tag}`);
    await delay(20);
    log.push(`end ${tag}`);
    return tag.repeat(3);
  });
  const [name, nameLen] = await putString(plugin, 0, "slow");
  /** Writes `{ tag }` at `at`; the call writes its answer at `at + 512`. */
  const prepare = async (tag: string, at: number): Promise<() => Promise<number>> => {
    const [args, argsLen] = await putString(plugin, at, JSON.stringify({ tag }));
    return () => plugin.callI32("host_call_tool", [name, nameLen, args, argsLen, at + 512, 64]);
  };

  await t.step("the second call waits and gets its own result", async () => {
    const [callA, callB] = [await prepare("a", 100), await prepare("bb", 200)];
    const first = callA();
    assert.equal(plugin.state, "running");
    const second = callB();
    assert.deepEqual(await Promise.all([first, second]), [5, 8]);
    assert.deepEqual(log, ["start a", "end a", "start bb", "end bb"]);
    assert.equal(textOf(await plugin.readMemory(612, 5)), '"aaa"');
    assert.equal(textOf(await plugin.readMemory(712, 8)), '"bbbbbb"');
    assert.equal(plugin.state, "created");
  });

  await t.step("pause() waits for the running call", async () => {
    log.length = 0;
    const call = (await prepare("c", 300))();
    await plugin.pause();
    assert.deepEqual(log, ["start c", "end c"]);
    assert.equal(plugin.state, "paused");
    assert.equal(await call, 5);
    plugin.resume();
  });

  await t.step(
    "a call issued as the running call settles finds the queued pause() in place",
    async () => {
      log.length = 0;
      const callE = await prepare("e", 300);
      const running = callE();
      const paused = plugin.pause();
      // Issued the moment the running call settles, before the pause has had its turn.
      const late = running.then(() => callE());
      await paused;
      assert.equal(plugin.state, "paused");
      assert.deepEqual(log, ["start e", "end e"]);
      await assertRejectsWith(() => late, PluginStateError, { state: "paused" });
      plugin.resume();
    },
  );

  await t.step("a pause() queued behind a running call yields to stop()", async () => {
    await using other = await loadPlugin(hostFunctionsWat("host_sleep_ms"), {
      capabilities: [Capability.Timer],
    });
    const running = other.plugin.callVoid("host_sleep_ms", [20]);
    const paused = other.plugin.pause();
    const stopped = other.plugin.stop();
    await running;
    await assertRejectsWith(() => paused, PluginStateError, { state: "stopping" });
    await stopped;
    assert.equal(other.plugin.state, "stopped");
  });

  await t.step("resume() while a pause() waits behind a running call cancels it", async () => {
    // resume() threw (the plugin was running), and the pause then held the plugin for good.
    await using other = await loadPlugin(hostFunctionsWat("host_sleep_ms"), {
      capabilities: [Capability.Timer],
    });
    const running = other.plugin.callVoid("host_sleep_ms", [20]);
    const paused = other.plugin.pause();
    other.plugin.resume();
    await Promise.all([running, paused]);
    assert.equal(other.plugin.state, "created");
    await other.plugin.callVoid("host_sleep_ms", [0]);
    // A pause() after that resume() pauses again.
    const again = other.plugin.callVoid("host_sleep_ms", [20]);
    const pausedAgain = other.plugin.pause();
    other.plugin.resume();
    const third = other.plugin.pause();
    await Promise.all([again, pausedAgain, third]);
    assert.equal(other.plugin.state, "paused");
    other.plugin.resume();
  });

  await t.step("initialize() behind a running call waits its turn", async () => {
    // It was refused with a PluginStateError: the plugin was "running", not "created".
    await using other = await loadPlugin(
      `(module
        (import "env" "host_sleep_ms" (func $sleep (param i32)))
        (global $g (mut i32) (i32.const 0))
        (func (export "init") (global.set $g (i32.const 42)))
        (func (export "get") (result i32) (call $sleep (i32.const 20)) (global.get $g)))`,
      { capabilities: [Capability.Timer] },
    );
    const running = other.plugin.callI32("get");
    const initialized = other.plugin.initialize();
    const second = other.plugin.initialize();
    assert.equal(await running, 0);
    await Promise.all([initialized, second]);
    assert.equal(other.plugin.state, "ready");
    assert.equal(await other.plugin.callI32("get"), 42);
  });

  await t.step(
    "an initialize() waiting behind a call is refused once stop() is asked",
    async () => {
      // It ran the guest's initializer on the stopping plugin, and stop() waited for it.
      await using other = await loadPlugin(
        `(module
        (import "env" "host_sleep_ms" (func $sleep (param i32)))
        (func (export "init"))
        (func (export "nap") (call $sleep (i32.const 20))))`,
        { capabilities: [Capability.Timer] },
      );
      const states: string[] = [];
      other.plugin.addEventListener("state_changed", (event) => {
        states.push((event as PluginEvent<"state_changed">).detail.to);
      });
      const running = other.plugin.callVoid("nap");
      const initialized = other.plugin.initialize();
      const stopped = other.plugin.stop();
      await running;
      await assertRejectsWith(() => initialized, PluginStateError, { state: "stopping" });
      await stopped;
      assert.deepEqual(states, ["running", "created", "stopped"]);
    },
  );

  await t.step(
    "resume() while a stop waits is refused, and so is the waiting pause()",
    async () => {
      // resume() "cancelled" the pause of a stopping plugin, and the pause() resolved.
      await using other = await loadPlugin(hostFunctionsWat("host_sleep_ms"), {
        capabilities: [Capability.Timer],
      });
      const running = other.plugin.callVoid("host_sleep_ms", [20]);
      const paused = other.plugin.pause();
      const stopped = other.plugin.stop();
      assert.throws(() => other.plugin.resume(), PluginStateError);
      await running;
      await assertRejectsWith(() => paused, PluginStateError, { state: "stopping" });
      await stopped;
    },
  );

  await t.step("two pause()s behind a running call: one resume() lets calls in", async () => {
    await using other = await loadPlugin(hostFunctionsWat("host_sleep_ms"), {
      capabilities: [Capability.Timer],
    });
    const running = other.plugin.callVoid("host_sleep_ms", [20]);
    const pauses = [other.plugin.pause(), other.plugin.pause()];
    await running;
    await Promise.all(pauses);
    assert.equal(other.plugin.state, "paused");
    other.plugin.resume();
    await delay(0);
    assert.equal(other.plugin.state, "created");
    await other.plugin.callVoid("host_sleep_ms", [0]);
  });

  await t.step("stop() waits for the running call; queued calls are refused", async () => {
    const callD = await prepare("d", 400);
    const running = callD();
    const queued = callD();
    const stopped = plugin.stop();
    assert.equal(await running, 5);
    await assertRejectsWith(() => queued, PluginStateError, { state: "stopping" });
    await stopped;
    assert.equal(plugin.state, "stopped");
  });
});

testEachIsolation("Calls made while a plugin initializes wait for it", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  runtime.registerTool("slow", () => delay(30).then(() => 1));
  const wat = (initTraps: boolean) =>
    `(module
      (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "slow{}")
      (global $ready (mut i32) (i32.const 0))
      (func (export "init")
        (drop (call $tool (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 2) (i32.const 64) (i32.const 8)))
        ${initTraps ? "unreachable" : ""}
        (global.set $ready (i32.const 1)))
      (func (export "ready") (result i32) (global.get $ready)))`;
  const config = { capabilities: [Capability.CallTool] };

  await t.step("they run after it, and see what it set up", async () => {
    await using plugin = await runtime.createPluginFromWat(wat(false), config);
    const initializing = plugin.initialize();
    assert.equal(plugin.state, "initializing");
    const calls = [plugin.callI32("ready"), plugin.callI32("ready")];
    await initializing;
    assert.deepEqual(await Promise.all(calls), [1, 1]);
    assert.equal(plugin.state, "ready");
  });

  await t.step("when it fails, they fail with the plugin's error state", async () => {
    await using plugin = await runtime.createPluginFromWat(wat(true), config);
    const initializing = plugin.initialize();
    const calls = [plugin.callI32("ready"), plugin.callI32("ready")];
    await assertRejectsWith(() => initializing, TrapError);
    for (const call of calls) {
      await assertRejectsWith(() => call, PluginStateError, { state: "error" });
    }
  });
});

testEachIsolation("A TimeoutError is the same whichever side saw the deadline first", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  await using loaded = await loadPlugin(
    '(module (func (export "spin") (loop $l (br $l))))',
    { resourceLimits: { maxFuel: null } },
  );
  // In a worker, the host's timer or the guest's own check may end the call: no engine error
  // rides along either way.
  for (let i = 0; i < 5; i++) {
    const error = await assertRejectsWith(
      () => loaded.plugin.callVoid("spin", [], { timeoutMs: 30 }),
      TimeoutError,
      { timeoutMs: 30, message: "Plugin execution timed out after 30 ms" },
    );
    assert.equal(error.cause, undefined);
  }
});

testEachIsolation("Errors whose cause is not a WasmError read the same in both isolations", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();

  await t.step(
    "proc_exit outside run(): a TrapError caused by the WasiExit and its code",
    async () => {
      await using plugin = await runtime.createPluginFromWat(
        `(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "quit") (call $exit (i32.const 7))))`,
        { capabilities: [Capability.Wasi] },
      );
      const error = await assertRejectsWith(() => plugin.callVoid("quit"), TrapError);
      assert.ok(error.cause instanceof WasiExit, `cause: ${error.cause}`);
      assert.equal(error.cause.code, 7);
    },
  );

  await t.step(
    "values whose every read throws: a HostFunctionError, and the plugin goes on",
    async () => {
      const hostile: [string, () => unknown, string][] = [
        ["a Proxy whose prototype trap throws", () =>
          new Proxy({}, {
            getPrototypeOf() {
              throw new Error("trap");
            },
          }), "a thrown object"],
        [
          "an error whose message getter throws",
          () =>
            Object.defineProperty(new Error(), "message", {
              get() {
                throw new Error("getter");
              },
            }),
          "a thrown object",
        ],
        [
          "an error whose message is a symbol",
          () => Object.assign(new Error(), { message: Symbol("s") }),
          "Symbol(s)",
        ],
      ];
      for (const [what, make, reason] of hostile) {
        let value: unknown;
        await using plugin = await pluginThatThrows(runtime, () => value = make());
        await assertRejectsWith(
          () => plugin.callVoid("go"),
          HostFunctionError,
          {
            message: `Host function "env"."fail" failed: ${reason}`,
          },
        );
        assert.ok(value !== undefined, what);
        // Answered at once: a worker whose host call got no answer waited out the timeout.
        assert.equal(await plugin.callI32("ok", [], { timeoutMs: 2000 }), 7, what);
      }
    },
  );

  await t.step(
    "a thrown message of a megabyte is cut at 16 Ki characters, with a note",
    async () => {
      const huge = "x".repeat(1_000_000);
      await using plugin = await pluginThatThrows(runtime, () => new Error(huge));
      await assertRejectsWith(() => plugin.callVoid("go"), HostFunctionError, {
        message: `Host function "env"."fail" failed: ${"x".repeat(16 * 1024)}… (${
          1_000_000 - 16 * 1024
        } more characters)`,
      });
    },
  );

  await t.step("a thrown text near the cut reads the same in both isolations", async () => {
    for (const length of [16_420, 16_448, 16_449]) {
      const text = "y".repeat(length - 1) + "😀";
      await using plugin = await pluginThatThrows(runtime, () => new Error(text));
      const error = await assertRejectsWith(() => plugin.callVoid("go"), HostFunctionError);
      const expected = length + 1 <= 16 * 1024 + 64
        ? text
        : `${"y".repeat(16 * 1024)}… (${length + 1 - 16 * 1024} more characters)`;
      assert.equal(error.message, `Host function "env"."fail" failed: ${expected}`, `${length}`);
      assert.ok(error.message.isWellFormed());
    }
  });

  await t.step("a tool that throws a string: the message says it, the cause is it", async () => {
    runtime.registerTool("shout", () => {
      // deno-lint-ignore no-throw-literal
      throw "a string";
    });
    await using plugin = await runtime.createPluginFromWat(toolCallWat("shout"), {
      capabilities: [Capability.CallTool],
    });
    const error = await assertRejectsWith(() => plugin.callI32("call"), HostFunctionError, {
      message: 'Host function "env"."host_call_tool" failed: a string',
    });
    assert.equal(error.cause, "a string");
  });
});

testEachIsolation("A call refused before it runs counts no fuel", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(
    `(module
      (func (export "work") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))`,
  );
  const { plugin } = loaded;
  await t.step("bad arguments, options or exports after a call that used fuel", async () => {
    const refusals: [string, () => Promise<unknown>][] = [
      ["too many arguments", () => plugin.callI32("work", [1, 2])],
      ["an argument of the wrong type", () => plugin.callI32("work", ["1" as unknown as number])],
      ["a result of another type", () => plugin.callF64("work", [1])],
      ["an unknown export", () => plugin.callI32("nope", [])],
      ["a fuel budget above the plugin's", () => plugin.callI32("work", [1], { fuel: 1e15 })],
      ["a bytes call of an unknown export", () => plugin.callBytes("nope", new Uint8Array(1))],
      [
        "a bytes call aborted already",
        () => plugin.callBytes("work", new Uint8Array(1), { signal: AbortSignal.abort() }),
      ],
    ];
    const states: string[] = [];
    plugin.addEventListener("state_changed", (event) => void states.push(event.detail.to));
    for (const [what, refused] of refusals) {
      await plugin.callI32("work", [1]);
      const before = (await plugin.metrics()).fuelConsumed;
      states.length = 0;
      await assert.rejects(refused(), Error, what);
      assert.equal((await plugin.metrics()).fuelConsumed, before, what);
      // Never marked running for it either.
      assert.deepEqual(states, [], what);
    }
  });
});

testEachIsolation("A bytes call that fails in a host function gives its input back", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const linker = runtime.createLinker().funcWrap("env", "boom", () => {
    throw new Error("the host is down");
  });
  // An allocator of one buffer: taken by alloc, given back by dealloc, else out of memory.
  // With an async host function imported, the call takes the JSPI path: it was not freed there.
  for (const asyncImport of ["", '(import "env" "host_sleep_ms" (func (param i32)))']) {
    await t.step(
      asyncImport === "" ? "a plain module" : "a module with an async host function",
      async () => {
        const plugin = await runtime.createPluginWithLinker(
          await runtime.compileWat(
            "one-buffer",
            `(module
            (import "env" "boom" (func $boom))
            ${asyncImport}
            (memory (export "memory") 1)
            (global $taken (mut i32) (i32.const 0))
            (func (export "alloc") (param i32) (result i32)
              (if (result i32) (global.get $taken) (then (i32.const 0))
                (else (global.set $taken (i32.const 1)) (i32.const 1024))))
            (func $walk (param i32) ;; recurses, as a free merging chunks may
              (if (local.get 0) (then (call $walk (i32.sub (local.get 0) (i32.const 1))))))
            (func (export "dealloc") (param i32 i32)
              (call $walk (i32.const 4))
              (global.set $taken (i32.const 0)))
            (func $deep (param i32)
              (if (local.get 0)
                (then (call $deep (i32.sub (local.get 0) (i32.const 1))))
                (else (call $boom))))
            ;; Fails as deep as its input is long: the depth its frames took is free again.
            (func (export "fail") (param i32 i32) (result i64) (call $deep (local.get 1)) (i64.const 0)))`,
          ),
          {
            capabilities: [Capability.CallHostFunction, Capability.Timer],
            resourceLimits: { maxCallDepth: 20 },
          },
          linker,
        );
        // The buffer of the first failed call stayed taken: the second was out of memory. After
        // a failure 17 calls deep, the free ran out of depth.
        for (const input of ["input", "x".repeat(17), "input"]) {
          await assertRejectsWith(
            () => plugin.callBytes("fail", bytesOf(input)),
            HostFunctionError,
          );
        }
      },
    );
  }
});

testEachIsolation(
  "A global only ever lowered is no stack pointer: a failed call keeps its change",
  {
    permissions: "none",
  },
  async (_t, { createRuntime }) => {
    // A bump allocator growing down: its top went back after a failed call while the node it had
    // given out stayed linked, and the next node overwrote it.
    await using runtime = createRuntime();
    const linker = runtime.createLinker().funcWrap("env", "boom", () => {
      throw new Error("no");
    });
    const plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "bump-down",
        `(module
        (import "env" "boom" (func $boom))
        (global $top (mut i32) (i32.const 65536))
        (func (export "take_then_fail")
          (global.set $top (i32.sub (global.get $top) (i32.const 8)))
          (call $boom))
        ;; Raised by another function (a free): still no frame of the body that lowered it.
        (func (export "give_back") (global.set $top (i32.add (global.get $top) (i32.const 8))))
        (func (export "top") (result i32) (global.get $top)))`,
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await assertRejectsWith(() => plugin.callVoid("take_then_fail"), HostFunctionError);
    assert.equal(await plugin.callI32("top"), 65528);
  },
);

testEachIsolation("A failed call puts the stack pointer back where the call found it", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // $sp is lowered as a prologue lowers a stack pointer; a trap skips the epilogue that raises
  // it again. (A guest's counter lowered the same way is taken for one: it goes back only as
  // far as the failed call found it, not further.)
  // Unmetered too: its budgets are set from the host, not by the prepare function.
  for (const resourceLimits of [{}, { maxFuel: null }]) {
    await using loaded = await loadPlugin(
      `(module
        (global $sp (mut i32) (i32.const 4096))
        (func (export "frame") (result i32)
          (global.set $sp (i32.sub (global.get $sp) (i32.const 16)))
          (global.get $sp))
        (func (export "trap_in_frame")
          (global.set $sp (i32.sub (global.get $sp) (i32.const 16)))
          unreachable)
        ;; An epilogue gives the frame back: what tells a stack pointer from a global only lowered.
        (func (export "balanced") (local $frame i32)
          (global.set $sp (local.tee $frame (i32.sub (global.get $sp) (i32.const 16))))
          (global.set $sp (i32.add (local.get $frame) (i32.const 16))))
        (func (export "sp") (result i32) (global.get $sp)))`,
      { resourceLimits },
    );
    const { plugin } = loaded;
    assert.equal(await plugin.callI32("frame"), 4080, "a call that returns keeps what it did");
    for (let i = 0; i < 3; i++) {
      await assertRejectsWith(() => plugin.callVoid("trap_in_frame"), TrapError);
    }
    assert.equal(await plugin.callI32("sp"), 4080);
  }
});

testEachIsolation(
  "A host function that runs past the deadline and then fails ends in a TimeoutError",
  {
    permissions: "none",
  },
  async (_t, { createRuntime }) => {
    // Inline it was the host function's error, in a worker the TimeoutError.
    await using runtime = createRuntime();
    const linker = runtime.createLinker().funcWrap("env", "slow_then_fail", () => {
      const end = performance.now() + 150;
      while (performance.now() < end) {
        // busy past the call's 100 ms
      }
      throw new Error("gave up");
    });
    const plugin = await runtime.createPluginWithLinker(
      await runtime.compileWat(
        "slow",
        '(module (import "env" "slow_then_fail" (func $f)) (func (export "go") (call $f)))',
      ),
      { capabilities: [Capability.CallHostFunction] },
      linker,
    );
    await assertRejectsWith(() => plugin.callVoid("go", [], { timeoutMs: 100 }), TimeoutError);
  },
);

testEachIsolation("A bad bytes call or run() counts as a failed call, as a bad typed call does", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // A typed call with a bad argument was counted; a bytes call with a bad input, and run() of
  // a module that is no command, were not.
  await using loaded = await loadPlugin(
    '(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) i32.const 0))',
  );
  const { plugin } = loaded;
  let events = 0;
  plugin.addEventListener("executed", () => events++);
  await assertRejectsWith(() => plugin.callBytes("alloc", "text" as never), TypeMismatchError);
  await assertRejectsWith(() => plugin.callBytes(42 as never, new Uint8Array()), TypeError);
  await assertRejectsWith(() => plugin.run(), InvalidFunctionError);
  await assertRejectsWith(() => plugin.run({ stdin: "text" as never }), TypeError);
  const { callCount, failureCount } = await plugin.metrics();
  assert.deepEqual({ callCount, failureCount, events }, {
    callCount: 4,
    failureCount: 4,
    events: 4,
  });
});

testEachIsolation(
  "A getter of a call's arguments that stops or pauses the plugin refuses the call",
  {
    permissions: "none",
  },
  async (t, { loadPlugin }) => {
    // The call held the turn and had not yet marked the plugin running: stop() closed the backend
    // under it (a TypeError inline, WorkerCrashedError in a worker), and a pause let it run.
    const wat = `(module (memory (export "memory") 1)
    (func (export "alloc") (param i32) (result i32) (i32.const 64))
    (func (export "id") (param i32) (result i32) (local.get 0))
    (func (export "len") (param i32 i32) (result i32) (local.get 1)))`;
    const reading = (read: () => void): number[] => {
      const args = [0];
      Object.defineProperty(args, 0, { get: () => (read(), 5) });
      return args;
    };

    await t.step("pause(): the call holds its turn and runs; the pause follows it", async () => {
      await using loaded = await loadPlugin(wat);
      const { plugin } = loaded;
      let pausing: Promise<void> | undefined;
      assert.equal(await plugin.callI32("id", reading(() => pausing = plugin.pause())), 5);
      await pausing;
      assert.equal(plugin.state, "paused");
      await plugin.resume();
      assert.equal(await plugin.callI32("id", [3]), 3);
    });

    await t.step("stop(), from the arguments or the options", async () => {
      for (const where of ["arguments", "options"] as const) {
        await using loaded = await loadPlugin(wat);
        const { plugin } = loaded;
        let stopping: Promise<void> | undefined;
        const stop = () => stopping = plugin.stop();
        const options = {
          get timeoutMs() {
            if (where === "options") stop();
            return 1000;
          },
        };
        const args = where === "arguments" ? reading(stop) : [5];
        await assertRejectsWith(() => plugin.callI32("id", args, options), PluginStateError);
        await stopping;
        assert.equal(plugin.state, "stopped");
      }
    });

    await t.step("stop() from a bytes call's options", async () => {
      await using loaded = await loadPlugin(wat);
      const { plugin } = loaded;
      let stopping: Promise<void> | undefined;
      const options = {
        get timeoutMs() {
          stopping = plugin.stop();
          return 1000;
        },
      };
      await assertRejectsWith(
        () => plugin.callWithBytes("len", new Uint8Array(3), options),
        PluginStateError,
      );
      await stopping;
    });
  },
);

testEachIsolation("What initialize() grew shows in the metrics at once", {
  permissions: "none",
}, async (_t, { loadPlugin }) => {
  // A reactor's heap set up by _initialize showed only after the next call.
  await using loaded = await loadPlugin(
    `(module (memory (export "memory") 1)
      (func (export "_initialize") (drop (memory.grow (i32.const 15))))
      (func (export "noop")))`,
  );
  const { plugin } = loaded;
  await plugin.initialize();
  const metrics = await plugin.metrics();
  assert.equal(metrics.currentMemoryBytes, 16 * 65536);
  assert.equal(metrics.peakMemoryBytes, 16 * 65536);
});

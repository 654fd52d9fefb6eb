/**
 * Red team: modules shaped to hurt the loader — huge type, import, export,
 * function, data and element sections, 50 000 locals, 100 000 nested blocks,
 * a huge `br_table`, megabyte names, data segments at the 4 GiB boundary —
 * and guests that play with the instrumenter's reserved names, funcref
 * results, `call_indirect` type confusion, huge `table.grow` deltas and i64
 * edge values. Loading stays bounded in time and memory, and every failure is
 * a typed WasmError.
 */
import assert from "node:assert/strict";
import {
  CompilationError,
  InstantiationError,
  InvalidFunctionError,
  TrapError,
  TypeMismatchError,
  WasmError,
} from "../../mod.ts";
import { assertRejectsWith, type IsolationKit } from "../_helpers.ts";
import { describe, lagProbe, outcome, redteamTest } from "./_redteam.ts";

// --- a tiny binary writer -------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function concat(parts: readonly (readonly number[] | Uint8Array)[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function section(id: number, body: Uint8Array): Uint8Array {
  return concat([[id], uleb(body.length), body]);
}

function vec(items: readonly (readonly number[] | Uint8Array)[]): Uint8Array {
  return concat([uleb(items.length), ...items]);
}

function wasm(...sections: Uint8Array[]): Uint8Array {
  return concat([[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], ...sections]);
}

function name(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  return concat([uleb(bytes.length), bytes]);
}

function code(locals: readonly (readonly number[])[], body: readonly number[]): Uint8Array {
  const inner = concat([uleb(locals.length), ...locals, body, [0x0b]]);
  return concat([uleb(inner.length), inner]);
}

const I32_RESULT = [0x60, 0x00, 0x01, 0x7f];

/** One function `f: [] -> [i32]` with `locals` and `body`, exported as "f". */
function oneFunction(locals: readonly (readonly number[])[], body: readonly number[]): Uint8Array {
  return wasm(
    section(1, vec([I32_RESULT])),
    section(3, vec([[0]])),
    section(7, vec([concat([name("f"), [0x00, 0x00]])])),
    section(10, vec([code(locals, body)])),
  );
}

/** Loads `bytes` in a fresh runtime: the outcome of the load (and of calling "f" if any). */
async function load(
  createRuntime: IsolationKit["createRuntime"],
  bytes: Uint8Array,
): Promise<{ load: Awaited<ReturnType<typeof outcome>>; lag: number }> {
  await using runtime = createRuntime({ resourceLimits: { maxExecutionTimeMs: 1_000 } });
  const stop = lagProbe();
  await new Promise((r) => setTimeout(r, 10));
  const o = await outcome(
    (async () => {
      const plugin = await runtime.createPlugin(await runtime.compile("shape", bytes));
      // A shape without "f" answers with an InvalidFunctionError, which is typed too.
      return await plugin.call("f", []).catch((e) => e);
    })(),
  );
  return { load: o, lag: stop() };
}

/** Asserts the load settled (either way) in time, typed, without stalling the host. */
function assertBounded(
  label: string,
  { load: o, lag }: Awaited<ReturnType<typeof load>>,
  maxMs = 2_000,
): void {
  assert.ok(o.ms < maxMs, `${label}: ${describe(o)}`);
  assert.ok(lag < 1_000, `${label}: the event loop stalled ${lag.toFixed(0)} ms`);
  if (!o.ok) assert.ok(o.error instanceof WasmError, `${label}: ${describe(o)}`);
  if (o.ok && o.value instanceof Error) {
    assert.ok(o.value instanceof WasmError, `${label}: call ${o.value}`);
  }
}

const SHAPES: Record<string, () => Uint8Array> = {
  "50 000 locals": () => oneFunction([[...uleb(50_000), 0x7f]], [0x41, 0x00]),
  "a local count of 2^32-1": () => oneFunction([[0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f]], [0x41, 0]),
  "100 000 nested blocks": () =>
    oneFunction([], [
      ...new Array(100_000).fill([0x02, 0x40]).flat(),
      ...new Array(100_000).fill(0x0b),
      0x41,
      0x01,
    ]),
  "a br_table of 1 000 000 targets": () =>
    oneFunction([], [
      0x02,
      0x40,
      0x41,
      0x00,
      0x0e,
      ...uleb(1_000_000),
      ...new Uint8Array(1_000_000),
      0x00,
      0x0b,
      0x41,
      0x01,
    ]),
  "20 000 imports": () =>
    wasm(
      section(1, vec([[0x60, 0, 0]])),
      section(
        2,
        vec(Array.from({ length: 20_000 }, (_, i) => concat([name("env"), name(`f${i}`), [0, 0]]))),
      ),
    ),
  "20 000 exports": () =>
    wasm(
      section(1, vec([I32_RESULT])),
      section(3, vec([[0]])),
      section(
        7,
        vec(Array.from({ length: 20_000 }, (_, i) => concat([name(`e${i}`), [0, 0]]))),
      ),
      section(10, vec([code([], [0x41, 1])])),
    ),
  "a 4 MB export name": () =>
    wasm(
      section(1, vec([I32_RESULT])),
      section(3, vec([[0]])),
      section(7, vec([concat([name("x".repeat(4_000_000)), [0, 0]])])),
      section(10, vec([code([], [0x41, 1])])),
    ),
  "50 000 passive data segments": () =>
    wasm(
      section(5, vec([[0x00, 0x01]])),
      section(12, new Uint8Array(uleb(50_000))),
      section(11, vec(Array.from({ length: 50_000 }, () => [0x01, 0x01, 0xaa]))),
    ),
  "an active data segment at 4 GiB - 1": () =>
    wasm(
      section(5, vec([[0x00, 0x01]])),
      // i32.const -1 (= 0xffffffff), two bytes
      section(11, vec([[0x00, 0x41, 0x7f, 0x0b, 0x02, 0x01, 0x02]])),
    ),
  "50 000 element segments": () =>
    wasm(
      section(1, vec([[0x60, 0, 0]])),
      section(3, vec([[0]])),
      section(4, vec([[0x70, 0x00, 0x01]])),
      section(9, vec(Array.from({ length: 50_000 }, () => [0x01, 0x00, 0x01, 0x00]))),
      section(10, vec([code([], [])])),
    ),
};

redteamTest(
  "Red team: modules shaped to hurt the loader",
  { slow: true },
  async (t, { createRuntime }) => {
    for (const [label, make] of Object.entries(SHAPES)) {
      await t.step(label, async () => {
        assertBounded(label, await load(createRuntime, make()));
      });
    }
    await t.step("the segment at 4 GiB - 1 fails as an InstantiationError", async () => {
      const { load: o } = await load(
        createRuntime,
        SHAPES["an active data segment at 4 GiB - 1"]!(),
      );
      assert.ok(!o.ok && o.error instanceof InstantiationError, describe(o));
    });
  },
);

// A 3 MB module of 999 999 empty function types (`60 00 00` each) once took ~1.6 s to compile
// and stalled the event loop ~1.3 s: wasmplug read it three times, an object and two arrays per
// type, synchronously. The parser now shares one entry among types encoded alike, reads a module
// once per prepared variant, checks each count against the engine's limits before reading on,
// and yields between phases while the engine validates on its own threads.
redteamTest(
  "Red team: a module of a million function types",
  { slow: true },
  async (t, { createRuntime }) => {
    await t.step(
      "999 999 types load in bounded time, the event loop never stalled long",
      async () => {
        const bytes = wasm(section(1, repeatedTypes(999_999)));
        const result = await load(createRuntime, bytes);
        // About 0.5-1 s on a quiet 2-core machine (V8 compiles the 3 MB twice); generous for a
        // loaded one. The event loop is what must stay free.
        assertBounded("999 999 types", result, 4_000);
        assert.ok(result.lag < 500, `the event loop stalled ${result.lag.toFixed(0)} ms`);
      },
    );
    await t.step("1 000 001 types fail at once, before a type is read", async () => {
      const bytes = wasm(section(1, new Uint8Array(uleb(1_000_001))));
      const { load: o } = await load(createRuntime, bytes);
      assert.ok(!o.ok && o.error instanceof CompilationError, describe(o));
      assert.match(o.error.message, /exceeds internal limit of 1000000/);
      assert.ok(o.ms < 200, describe(o));
    });
    await t.step("1 000 000 types: a limit pass that needs one more fails, named", async () => {
      const result = await load(createRuntime, wasm(section(1, repeatedTypes(1_000_000))));
      assertBounded("1 000 000 types", result);
      const o = result.load;
      // The clock deadline's hook, which both isolations get, has a type of its own.
      assert.ok(!o.ok && o.error instanceof CompilationError, describe(o));
      assert.match(o.error.message, /needs 1 more, above the engine's limit of 1000000/);
    });
  },
);

/** `count` function types `() -> ()`, as a type section payload. */
function repeatedTypes(count: number): Uint8Array {
  const prefix = uleb(count);
  const payload = new Uint8Array(prefix.length + 3 * count);
  payload.set(prefix);
  for (let at = prefix.length; at < payload.length; at += 3) payload[at] = 0x60;
  return payload;
}

redteamTest("Red team: the instrumenter's reserved names", {}, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  for (
    const decl of [
      `(func (export "__wasmplug_fuel"))`,
      `(global (export "__wasmplug_trap") (mut i32) (i32.const 0))`,
      `(memory (export "__wasmplug_interrupt") 1)`,
    ]
  ) {
    await t.step(`a guest exporting ${decl}`, async () => {
      await assertRejectsWith(
        () => runtime.createPluginFromWat(`(module ${decl})`),
        CompilationError,
      );
      assert.equal(runtime.pluginCount, 0);
    });
  }
  await t.step("the instrumenter's own exports cannot be called", async () => {
    const plugin = await runtime.createPluginFromWat(
      `(module (func $s) (start $s) (func (export "ok") (result i32) (i32.const 7)))`,
    );
    for (const fn of ["__wasmplug_start", "__wasmplug_fuel", "__wasmplug_trap"]) {
      await assertRejectsWith(() => plugin.call(fn, []), InvalidFunctionError);
    }
    await assertRejectsWith(() => plugin.readMemory(0, 4), WasmError);
    assert.equal(await plugin.callI32("ok"), 7);
    await plugin.stop();
  });
});

const GAMES_WAT = `(module
  (type $i2i (func (param i32) (result i32)))
  (type $v2l (func (result i64)))
  (table $t 2 10 funcref)
  (elem (i32.const 0) $inc $wide)
  (func $inc (type $i2i) (i32.add (local.get 0) (i32.const 1)))
  (func $wide (type $v2l) (i64.const -1))
  (func (export "confuse") (result i32)
    (call_indirect $t (type $i2i) (i32.const 5) (i32.const 1)))
  (func (export "grow_huge") (result i32)
    (table.grow $t (ref.null func) (i32.const -1)))
  (func (export "grow_over") (result i32)
    (table.grow $t (ref.null func) (i32.const 9)))
  (func (export "leak") (result funcref) (table.get $t (i32.const 0)))
  (func (export "echo64") (param i64) (result i64) (local.get 0))
  (func (export "nan") (result f64) (f64.reinterpret_i64 (i64.const 0x7ff0000000000001)))
  (func (export "ok") (result i32) (i32.const 7)))`;

redteamTest("Red team: tables, funcrefs and i64 games", {}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxTableElements: 8 } });
  const plugin = await runtime.createPluginFromWat(GAMES_WAT);

  await t.step("call_indirect with the wrong type traps", async () => {
    await assertRejectsWith(() => plugin.callI32("confuse"), TrapError, { kind: "trap" });
    assert.equal(await plugin.callI32("ok"), 7);
  });

  await t.step("table.grow by 2^32-1 or past maxTableElements returns -1", async () => {
    assert.equal(await plugin.callI32("grow_huge"), -1);
    assert.equal(await plugin.callI32("grow_over"), -1);
  });

  await t.step("i64 edge values round-trip exactly, a NaN payload is a number", async () => {
    for (const v of [0n, -1n, -(2n ** 63n), 2n ** 63n - 1n]) {
      assert.equal(await plugin.callI64("echo64", [v]), v);
    }
    // Unsigned input wraps to the signed value.
    assert.equal(await plugin.callI64("echo64", [2n ** 64n - 1n]), -1n);
    await assertRejectsWith(() => plugin.callI64("echo64", [2n ** 64n]), TypeMismatchError);
    await assertRejectsWith(() => plugin.callI64("echo64", [2 ** 53]), TypeMismatchError);
    assert.ok(Number.isNaN(await plugin.callF64("nan")));
  });
});

// BREAK (worker): an export returning a funcref resolves `plugin.call("leak")` with
// `[Uint8Array(0)]` in worker isolation (the function is flattened by the wire), while inline it
// hands the host a raw wasm function that runs guest code outside any call's budget. Fix
// (src/wasm_plugin.ts result check / src/worker/_worker_main.ts `resultValues`): reject
// reference results other than null/externref-as-given with a `TypeMismatchError` in both
// isolations (as arguments already are in a worker).
redteamTest(
  "Red team: a funcref result does not cross as garbage",
  {},
  async (_t, { createRuntime }) => {
    await using runtime = createRuntime();
    const plugin = await runtime.createPluginFromWat(GAMES_WAT);
    const o = await outcome(plugin.call("leak", []));
    assert.ok(!o.ok && o.error instanceof TypeMismatchError, describe(o));
    assert.equal(await plugin.callI32("ok"), 7);
  },
);

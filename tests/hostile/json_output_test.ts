/**
 * Hostile `callJson` output: JSON whose parse takes many times its size in
 * host memory. Ten plugins returning 16 MiB of `[[[…]]]` at once ended the
 * host process out of memory (461 MiB of heap each).
 */
import assert from "node:assert/strict";
import { ResourceLimitError } from "../../mod.ts";
import { parseJsonOutput } from "../../src/_json_output.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";

const OUT = 65536;

/**
 * `"lists"` answers `[[], [], …, []]` with `n` empty arrays after the first
 * (4n + 4 bytes): wide, not deep.
 */
function listsFunction(n: number): string {
  return `(func (export "lists") (param i32 i32) (result i64) (local $i i32)
    (i32.store8 (i32.const ${OUT}) (i32.const 0x5b))
    (loop $l
      (i32.store (i32.add (i32.const ${OUT + 1}) (i32.shl (local.get $i) (i32.const 2)))
        (i32.const 0x202c5d5b))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const ${n}))))
    (i32.store16 (i32.const ${OUT + 1 + 4 * n}) (i32.const 0x5d5b))
    (i32.store8 (i32.const ${OUT + 3 + 4 * n}) (i32.const 0x5d))
    (i64.or (i64.shl (i64.const ${OUT}) (i64.const 32)) (i64.const ${4 * n + 4})))`;
}

const JSON_WAT = `(module
  (memory (export "memory") 130)
  (func (export "alloc") (param i32) (result i32) (i32.const 16))
  ;; 8 MiB: 4 Mi "[" then 4 Mi "]": 4 Mi nested arrays.
  (func (export "nested") (param i32 i32) (result i64)
    (memory.fill (i32.const ${OUT}) (i32.const 0x5b) (i32.const 4194304))
    (memory.fill (i32.const ${OUT + 4194304}) (i32.const 0x5d) (i32.const 4194304))
    (i64.or (i64.shl (i64.const ${OUT}) (i64.const 32)) (i64.const 8388608)))
  ;; 8 MiB of 2 Mi empty arrays in one.
  ${listsFunction(2 * 1024 * 1024)}
  ;; "[1,1,…,1]" with $n ones: 2n + 1 bytes, one array.
  (func (export "ones") (param i32 i32) (result i64) (local $i i32) (local $n i32)
    (local.set $n (i32.const 2097152))
    (i32.store8 (i32.const ${OUT}) (i32.const 0x5b))
    (loop $l
      (i32.store16 (i32.add (i32.const ${OUT + 1}) (i32.shl (local.get $i) (i32.const 1)))
        (i32.const 0x2c31))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (i32.store8 (i32.add (i32.const ${OUT}) (i32.shl (local.get $n) (i32.const 1))) (i32.const 0x5d))
    (i64.or (i64.shl (i64.const ${OUT}) (i64.const 32))
      (i64.extend_i32_u (i32.add (i32.shl (local.get $n) (i32.const 1)) (i32.const 1))))))`;

/** 32 MiB of 8 Mi empty arrays in one (the engine would take some 700 MiB to parse it). */
const LISTS_32_MIB_WAT = `(module
  (memory (export "memory") 600)
  (func (export "alloc") (param i32) (result i32) (i32.const 16))
  ${listsFunction(8 * 1024 * 1024)})`;

testEachIsolation(
  "Hostile: callJson refuses output whose parse would take more heap than 16 times the plugin's memory limit",
  { permissions: "none" },
  async (t, { loadPlugin }) => {
    await using loaded = await loadPlugin(JSON_WAT, { resourceLimits: { maxMemoryPages: 130 } });
    const { plugin } = loaded;
    await t.step("8 MiB of 2 Mi arrays is refused, before it is parsed", async () => {
      const before = Deno.memoryUsage().heapUsed;
      const error = await within(() =>
        assertRejectsWith(() => plugin.callJson("lists", null), ResourceLimitError, {
          limit: "maxMemoryPages",
        })
      );
      assert.match(error.message, /"lists" returned 8388612 bytes of JSON/);
      // The parse would have taken some 160 MiB; its budget is 16 × 130 pages = 130 MiB.
      assert.ok(Deno.memoryUsage().heapUsed - before < 100 * 1024 * 1024);
    });
    await t.step(
      "8 MiB of arrays nested 4 Mi deep is refused: the engine nests off the heap",
      async () => {
        await within(() =>
          assertRejectsWith(() => plugin.callJson("nested", null), ResourceLimitError, {
            limit: "MAX_JSON_DEPTH",
          })
        );
      },
    );
    await t.step("4 MiB of numbers in one array is parsed", async () => {
      const ones = await plugin.callJson("ones", null) as number[];
      assert.equal(ones.length, 2_097_152);
      assert.equal(ones[2_097_151], 1);
    });
    await t.step(
      "a large memory limit does not lift the bound past a share of the heap",
      async () => {
        // With 4 096 pages the budget was 16 × 256 MiB: two plugins' 80 MiB of nested arrays,
        // each within it, ended the host out of memory together.
        await using large = await loadPlugin(LISTS_32_MIB_WAT, {
          resourceLimits: { maxMemoryPages: 4096, maxFuel: null },
        });
        await within(() =>
          assertRejectsWith(() => large.plugin.callJson("lists", null), ResourceLimitError, {
            limit: "MAX_JSON_HEAP_SHARE",
          })
        );
      },
    );
    await t.step("the refusal counts as the call's failure", async () => {
      const { failureCount } = await plugin.metrics();
      await assertRejectsWith(() => plugin.callJson("nested", null), ResourceLimitError);
      assert.equal((await plugin.metrics()).failureCount, failureCount + 1);
    });
  },
);

Deno.test("callJson's estimate counts an object with array-index keys as the store it gets", () => {
  // 8 MiB of {"99":0}: estimated at 97 MB and parsed within a 130 MiB budget, it took
  // twice that (V8 gives such an object an elements store of its own).
  const item = '{"99":0},';
  const text = `[${item.repeat(Math.floor((8 << 20) / item.length)).slice(0, -1)}]`;
  assert.throws(() => parseJsonOutput("indexed", new TextEncoder().encode(text), 130), {
    name: "ResourceLimitError",
  });
  // Nor does an escape hide one ("9\u0039" is 99).
  const escaped = text.replaceAll('"99"', '"9\\u0039"');
  assert.throws(() => parseJsonOutput("escaped", new TextEncoder().encode(escaped), 130), {
    name: "ResourceLimitError",
  });
  // The same objects with a key that is no index parse ("01" is none).
  const leading = text.replaceAll('"99"', '"01"');
  assert.ok(
    (parseJsonOutput("leading", new TextEncoder().encode(leading), 130) as unknown[]).length,
  );
  const named = text.replaceAll('"99"', '"ab"');
  assert.equal(
    (parseJsonOutput("named", new TextEncoder().encode(named), 130) as unknown[]).length > 0,
    true,
  );
});

Deno.test("callJson's bounds hold for short outputs, the decoded text, and say what set them", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  // 20 002 bytes nested 10 001 deep: under 64 KiB it was parsed without a scan.
  assert.throws(
    () => parseJsonOutput("deep", encode("[".repeat(10_001) + "]".repeat(10_001)), 16),
    (err: unknown) => err instanceof ResourceLimitError && err.limit === "MAX_JSON_DEPTH",
  );
  assert.equal(
    (parseJsonOutput("ok", encode("[".repeat(10_000) + "]".repeat(10_000)), 16) as unknown[])
      .length,
    1,
  );
  // 40 MiB of one string beyond Latin-1: its decoded text alone takes 80 MiB of UTF-16, more
  // than the 64 MiB floor of a 16-page plugin (it was estimated at 40 MiB and parsed).
  const wide = encode(`"${"€".repeat(14 * 1024 * 1024)}"`);
  assert.throws(() => parseJsonOutput("wide", wide, 16), (err: unknown) => {
    assert.ok(err instanceof ResourceLimitError && err.limit === "maxMemoryPages");
    // The floor set the budget, not 16 × 16 pages (16 MiB): the message says so.
    assert.match(err.message, /64 MiB, the least any plugin's JSON may take/);
    return true;
  });
});

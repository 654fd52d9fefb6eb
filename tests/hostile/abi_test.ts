/**
 * Hostile guests at the bytes/JSON/host ABI: pointers and lengths outside
 * memory (or wrapping around 2^32), a lying allocator, and output that is
 * not UTF-8 JSON. Every call ends in its documented error and the same
 * plugin answers the next call.
 */
import assert from "node:assert/strict";
import {
  Capability,
  MemoryOutOfBoundsError,
  TypeMismatchError,
  type WasmPlugin,
} from "../../mod.ts";
import { assertRejectsWith, bytesOf, testEachIsolation } from "../_helpers.ts";
import { HOST_FUNCTIONS, type HostFunctionName, hostFunctionsWat } from "../fixtures/wat.ts";

/**
 * `aim(ptr, len)` sets what `respond` returns as its packed output;
 * `lie(ptr)` sets what `alloc` returns; `echo` is an honest bytes function.
 * Memory is one page; bytes 0..8 hold garbage for the JSON cases.
 */
const ABI_WAT = `(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\\ff\\fe{x")
  (data (i32.const 16) "\\"\\ed\\a0\\80\\"")
  (global $out_ptr (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (global $alloc_at (mut i32) (i32.const 1024))
  (func (export "alloc") (param i32) (result i32) (global.get $alloc_at))
  (func (export "aim") (param i32 i32) (global.set $out_ptr (local.get 0)) (global.set $out_len (local.get 1)))
  (func (export "lie") (param i32) (global.set $alloc_at (local.get 0)))
  (func $pack (param i32 i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32))
      (i64.extend_i32_u (local.get 1))))
  (func (export "respond") (param i32 i32) (result i64)
    (call $pack (global.get $out_ptr) (global.get $out_len)))
  (func (export "echo") (param i32 i32) (result i64) (call $pack (local.get 0) (local.get 1)))
  (func (export "len") (param i32 i32) (result i32) (local.get 1))
  (func (export "ok") (result i32) i32.const 1))`;

const PAGE = 65_536;

/** Packed outputs that point outside the one-page memory: [ptr, len] as i32 arguments. */
const OUT_OF_BOUNDS: readonly [string, number, number][] = [
  ["a length past the end", PAGE - 6, 100],
  ["a pointer past the end", PAGE, 1],
  ["a pointer at 2^32 - 1", -1, 1],
  ["a length of 2^32 - 1", 0, -1],
  ["a range that wraps around 2^32", -16, 32],
];

/** Asserts the plugin still answers normally, bytes and JSON included. */
async function assertAnswers(plugin: WasmPlugin): Promise<void> {
  assert.equal(await plugin.callI32("ok"), 1);
  assert.deepEqual(await plugin.callBytes("echo", bytesOf("fine")), bytesOf("fine"));
  assert.deepEqual(await plugin.callJson("echo", { fine: [1, true] }), { fine: [1, true] });
}

testEachIsolation("Hostile: out-of-bounds outputs and allocations at the bytes/JSON ABI", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(ABI_WAT);
  const { plugin } = loaded;

  for (const [what, ptr, len] of OUT_OF_BOUNDS) {
    await t.step(`callBytes()/callJson() given ${what}: MemoryOutOfBoundsError`, async () => {
      await plugin.callVoid("aim", [ptr, len]);
      await assertRejectsWith(
        () => plugin.callBytes("respond", bytesOf("in")),
        MemoryOutOfBoundsError,
        { kind: "memory_out_of_bounds" },
      );
      await assertRejectsWith(() => plugin.callJson("respond", {}), MemoryOutOfBoundsError, {
        kind: "memory_out_of_bounds",
      });
      await plugin.callVoid("aim", [0, 0]);
      await assertAnswers(plugin);
    });
  }

  for (const [what, ptr] of [["past the end", PAGE - 2], ["at 2^32 - 1", -1]] as const) {
    await t.step(`an allocator returning a pointer ${what}: MemoryOutOfBoundsError`, async () => {
      await plugin.callVoid("lie", [ptr]);
      await assertRejectsWith(
        () => plugin.callBytes("echo", bytesOf("four")),
        MemoryOutOfBoundsError,
        { kind: "memory_out_of_bounds" },
      );
      await assertRejectsWith(
        () => plugin.callWithBytes("len", bytesOf("four")),
        MemoryOutOfBoundsError,
        { kind: "memory_out_of_bounds" },
      );
      await plugin.callVoid("lie", [1024]);
      assert.equal(await plugin.callWithBytes("len", bytesOf("four")), 4);
      await assertAnswers(plugin);
    });
  }
});

testEachIsolation("Hostile: output that is not UTF-8 JSON is a TypeMismatchError", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(ABI_WAT);
  const { plugin } = loaded;
  const garbage: readonly [string, number, number][] = [
    ["invalid UTF-8", 0, 2],
    ["invalid UTF-8 then text", 0, 4],
    ["UTF-8 that is not JSON", 2, 2],
    ["no bytes at all", 0, 0],
    ["an encoded surrogate inside a JSON string", 16, 5],
  ];
  for (const [what, ptr, len] of garbage) {
    await t.step(`${what}`, async () => {
      await plugin.callVoid("aim", [ptr, len]);
      const error = await assertRejectsWith(
        () => plugin.callJson("respond", {}),
        TypeMismatchError,
        { kind: "type_mismatch" },
      );
      assert.match(error.message, /"respond" returned \d+ bytes that are not UTF-8 JSON/);
      // The raw bytes are still available through callBytes().
      assert.equal((await plugin.callBytes("respond", new Uint8Array())).length, len);
      await assertAnswers(plugin);
    });
  }
});

/** Each host function given an out-of-bounds range, with the capability it needs. */
const HOST_CASES: readonly [HostFunctionName, Capability | undefined, number[]][] = [
  ["host_log", undefined, [1, PAGE - 4, 100]],
  ["host_log", undefined, [1, -16, 32]],
  ["host_get_config", Capability.ReadConfig, [PAGE, 4, 0, 16]],
  ["host_get_config", Capability.ReadConfig, [0, -1, 0, 16]],
  ["host_set_config", Capability.WriteConfig, [0, 1, PAGE - 1, 2]],
  ["host_storage_get", Capability.ReadState, [-1, 2, 0, 16]],
  ["host_storage_set", Capability.WriteState, [0, 1, PAGE - 1, 100]],
  ["host_send_message", Capability.SendMessage, [0, 1, -16, 32]],
  ["host_call_tool", Capability.CallTool, [PAGE - 1, 2, 0, 0, 0, 16]],
  ["host_http_fetch", Capability.NetworkAccess, [PAGE - 1, 2, 0, 16]],
  ["host_random_bytes", Capability.Random, [PAGE - 8, 16]],
  ["host_random_bytes", Capability.Random, [-16, 32]],
];

testEachIsolation("Hostile: out-of-bounds ranges passed to host functions", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  const names = Object.keys(HOST_FUNCTIONS) as HostFunctionName[];
  const wat = hostFunctionsWat(...names).replace(
    /\)$/,
    `\n  (func (export "ok") (result i32) i32.const 1))`,
  );
  await using loaded = await loadPlugin(wat, {
    capabilities: Object.values(Capability),
  });
  const { plugin } = loaded;

  for (const [fn, , args] of HOST_CASES) {
    await t.step(`env.${fn}(${args.join(", ")}): MemoryOutOfBoundsError`, async () => {
      await assertRejectsWith(() => plugin.call(fn, args), MemoryOutOfBoundsError, {
        kind: "memory_out_of_bounds",
      });
      assert.equal(await plugin.callI32("ok"), 1);
    });
  }

  await t.step("an output buffer past the end is a MemoryOutOfBoundsError too", async () => {
    // host_random_bytes fills in place; host_get_config answers into (out_ptr, out_cap).
    await plugin.writeMemory(0, bytesOf("k"));
    await plugin.callI32("host_set_config", [0, 1, 0, 1]);
    await assertRejectsWith(
      () => plugin.callI32("host_get_config", [0, 1, PAGE - 1, 16]),
      MemoryOutOfBoundsError,
      { kind: "memory_out_of_bounds" },
    );
    assert.equal(await plugin.callI32("ok"), 1);
    assert.equal(await plugin.callI32("host_get_config", [0, 1, 64, 16]), 1);
  });
});

/**
 * Hostile guests that make the host hold their data: `host_storage_set` and
 * `host_set_config` records count against `maxStorageBytes` (keys, values
 * and 64 bytes per record). Without it, 64 records of 16 MiB pushed the
 * host past 1.4 GB.
 */
import assert from "node:assert/strict";
import {
  Capability,
  DEFAULT_LIMITS,
  ResourceLimitError,
  RESTRICTIVE_LIMITS,
  UNLIMITED_LIMITS,
} from "../../mod.ts";
import { resolveLimits } from "../../src/compile/_limit_overrides.ts";
import { STORAGE_RECORD_OVERHEAD as RECORD } from "../../src/host/_services.ts";
import { assertRejectsWith, putString, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";

const MiB = 1024 * 1024;

/** Where the value bytes start; keys are written below. */
const VALUE = 65_536;

/**
 * `flood(n, len)` stores `n` records of `len` bytes under 4-byte keys 0..n-1
 * and returns how many it stored; `set`/`get` reach the host functions.
 */
const STORAGE_WAT = `(module
  (import "env" "host_storage_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_set_config" (func $config (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 257)
  (func (export "flood") (param $n i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.const 0) (local.get $i))
        (drop (call $set (i32.const 0) (i32.const 4) (i32.const ${VALUE}) (local.get $len)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
  (func (export "set") (param i32 i32 i32 i32) (result i32)
    (call $set (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "get") (param i32 i32 i32 i32) (result i32)
    (call $get (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "config") (param i32 i32 i32 i32) (result i32)
    (call $config (local.get 0) (local.get 1) (local.get 2) (local.get 3))))`;

const CAPABILITIES = [Capability.WriteState, Capability.ReadState, Capability.WriteConfig];

/** Room for a 16 MiB value after the keys. */
const RUNTIME = { resourceLimits: { maxMemoryPages: 257 } };

Deno.test("ResourceLimits.maxStorageBytes has its defaults and is validated", () => {
  assert.equal(DEFAULT_LIMITS.maxStorageBytes, 16 * MiB);
  assert.equal(RESTRICTIVE_LIMITS.maxStorageBytes, MiB);
  assert.equal(UNLIMITED_LIMITS.maxStorageBytes, Infinity);
  assert.equal(resolveLimits(DEFAULT_LIMITS, { maxStorageBytes: 10 }).maxStorageBytes, 10);
  assert.equal(
    resolveLimits(DEFAULT_LIMITS, { maxStorageBytes: Infinity }).maxStorageBytes,
    Infinity,
  );
  assert.throws(() => resolveLimits(DEFAULT_LIMITS, { maxStorageBytes: 0 }), RangeError);
  assert.throws(() => resolveLimits(DEFAULT_LIMITS, { maxStorageBytes: 1.5 }), RangeError);
  assert.throws(
    () => resolveLimits(DEFAULT_LIMITS, { maxStorageBytes: "1" as unknown as number }),
    TypeError,
  );
});

testEachIsolation("host_storage_set beyond maxStorageBytes fails the call", {
  permissions: "none",
}, async (t, kit) => {
  await t.step("64 records of 16 MiB: the first one over the limit fails", async () => {
    await using loaded = await kit.loadPlugin(STORAGE_WAT, {
      capabilities: CAPABILITIES,
    }, RUNTIME);
    await within(async () => {
      await assertRejectsWith(
        () => loaded.plugin.callI32("flood", [64, 16 * MiB]),
        ResourceLimitError,
        { limit: "maxStorageBytes" },
      );
    });
    // 1 MiB records: 15 fit in the default 16 MiB (each costs 4 + 1 MiB + RECORD bytes).
    await assertRejectsWith(
      () => loaded.plugin.callI32("flood", [64, MiB]),
      ResourceLimitError,
      { limit: "maxStorageBytes" },
    );
    // The plugin answers its next call; what did fit is still there.
    await loaded.plugin.writeMemory(0, new Uint8Array(4));
    assert.equal(await loaded.plugin.callI32("get", [0, 4, VALUE, 0]), MiB);
    assert.equal(await loaded.plugin.callI32("flood", [15, MiB]), 15);
  });

  await t.step(
    "the stored state stays as it was; replacing a key gives back its size",
    async () => {
      await using loaded = await kit.loadPlugin(STORAGE_WAT, {
        capabilities: CAPABILITIES,
        resourceLimits: { maxStorageBytes: 1000 + RECORD },
      }, RUNTIME);
      const { plugin } = loaded;
      const [a, aLen] = await putString(plugin, 0, "a");
      const [b, bLen] = await putString(plugin, 8, "b");
      // 1 + 900 + RECORD bytes of 1000 + RECORD.
      assert.equal(await plugin.callI32("set", [a, aLen, VALUE, 900]), 0);
      const error = await assertRejectsWith(
        () => plugin.callI32("set", [b, bLen, VALUE, 100]),
        ResourceLimitError,
        { limit: "maxStorageBytes" },
      );
      assert.equal(
        error.message,
        `Cannot store storage key "b": the plugin's storage and config would hold ${
          1002 + 2 * RECORD
        } bytes, above the limit maxStorageBytes = ${1000 + RECORD}`,
      );
      assert.equal(await plugin.callI32("get", [b, bLen, VALUE, 0]), -1);
      // Replacing "a" accounts its old record first, however often.
      for (let i = 0; i < 10; i++) {
        assert.equal(await plugin.callI32("set", [a, aLen, VALUE, 990]), 0);
      }
      assert.equal(await plugin.callI32("set", [a, aLen, VALUE, 10]), 0);
      // 11 + RECORD, then 1 + (988 - RECORD) + RECORD: 1000 + RECORD exactly.
      assert.equal(await plugin.callI32("set", [b, bLen, VALUE, 988 - RECORD]), 0);
      assert.equal(await plugin.callI32("get", [a, aLen, VALUE, 0]), 10);
    },
  );

  await t.step("config the guest writes counts too, config the host gave does not", async () => {
    await using loaded = await kit.loadPlugin(STORAGE_WAT, {
      capabilities: CAPABILITIES,
      resourceLimits: { maxStorageBytes: 1000 + 2 * RECORD },
      config: { given: "x".repeat(4096) },
    }, RUNTIME);
    const { plugin } = loaded;
    const [key, keyLen] = await putString(plugin, 0, "given");
    // 5 + 900 + RECORD bytes: the host's 4 KiB value it replaces was never counted.
    assert.equal(await plugin.callI32("config", [key, keyLen, VALUE, 900]), 0);
    await assertRejectsWith(
      () => plugin.callI32("config", [key, keyLen, VALUE, 1000 + RECORD]),
      ResourceLimitError,
      { limit: "maxStorageBytes" },
    );
    // Storage and config share the budget: 905 + 5 + 100 + 2 RECORD is too much, 920 + 2 RECORD
    // is not.
    await assertRejectsWith(
      () => plugin.callI32("set", [key, keyLen, VALUE, 100]),
      ResourceLimitError,
      { limit: "maxStorageBytes" },
    );
    assert.equal(await plugin.callI32("set", [key, keyLen, VALUE, 10]), 0);
  });

  await t.step("many tiny records cost RECORD bytes each", async () => {
    await using loaded = await kit.loadPlugin(STORAGE_WAT, {
      capabilities: CAPABILITIES,
      resourceLimits: { maxStorageBytes: (4 + RECORD) * 100 },
    }, RUNTIME);
    // 100 records of 4-byte keys and empty values fit, the 101st does not.
    await assertRejectsWith(
      () => loaded.plugin.callI32("flood", [1_000_000, 0]),
      ResourceLimitError,
      { limit: "maxStorageBytes" },
    );
    assert.equal(await loaded.plugin.callI32("flood", [100, 0]), 100);
  });
});

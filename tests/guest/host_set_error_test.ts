/**
 * `env.host_set_error(ptr, len)`: a guest reports that the running call
 * failed, with a message of its own, and the caller gets a `GuestError` once
 * the function has returned (its buffers freed). Each case runs in both
 * isolations, with a plain module and with one whose exports JSPI wraps (it
 * imports an async host function).
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  GuestError,
  MemoryOutOfBoundsError,
  TrapError,
  type WasmPlugin,
} from "../../mod.ts";
import { MAX_GUEST_ERROR_BYTES } from "../../src/host/_env.ts";
import { decodeError, encodeError } from "../../src/worker/_error_codec.ts";
import { assertRejectsWith, bytesOf, testEachIsolation, textOf } from "../_helpers.ts";

/** Where the module keeps its message "negative input" (14 bytes). */
const MESSAGE = 0;
/** Where a test writes a long message. */
const SCRATCH = 4096;

/**
 * A module with a counting bump allocator (`live()` says how many of its
 * buffers are not freed) and exports that report failures; `extraImport`
 * makes it one whose exports JSPI wraps.
 */
function reporterWat(extraImport: string): string {
  return `(module
    (import "env" "host_set_error" (func $set_error (param i32 i32)))
    (import "env" "host_get_config" (func $get_config (param i32 i32 i32 i32) (result i32)))
    ${extraImport}
    (memory (export "memory") 2)
    (global $live (mut i32) (i32.const 0))
    (global $next (mut i32) (i32.const 65536))
    (data (i32.const ${MESSAGE}) "negative input")
    (func $alloc (export "alloc") (param $size i32) (result i32)
      (local $ptr i32)
      (global.set $live (i32.add (global.get $live) (i32.const 1)))
      (local.set $ptr (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get $size)))
      (local.get $ptr))
    (func (export "dealloc") (param i32 i32)
      (global.set $live (i32.sub (global.get $live) (i32.const 1))))
    (func (export "live") (result i32) (global.get $live))
    ;; callBytes: fails with its input as the message, after setting an output of its own.
    (func (export "fail_with_input") (param $ptr i32) (param $len i32) (result i64)
      (call $set_error (local.get $ptr) (local.get $len))
      (i64.or
        (i64.shl (i64.extend_i32_u (call $alloc (i32.const 8))) (i64.const 32))
        (i64.const 8)))
    ;; callBytes: answers its input.
    (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
      (i64.or
        (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
        (i64.extend_i32_u (local.get $len))))
    ;; callWithBytes: fails with its input as the message.
    (func (export "fail_i32") (param $ptr i32) (param $len i32) (result i32)
      (call $set_error (local.get $ptr) (local.get $len))
      (i32.const 7))
    ;; callI32: fails for a negative argument.
    (func (export "check") (param $x i32) (result i32)
      (if (i32.lt_s (local.get $x) (i32.const 0))
        (then (call $set_error (i32.const ${MESSAGE}) (i32.const 14))))
      (local.get $x))
    (func (export "report") (param $ptr i32) (param $len i32) (result i32)
      (call $set_error (local.get $ptr) (local.get $len))
      (i32.const 0))
    (func (export "twice") (result i32)
      (call $set_error (i32.const ${MESSAGE}) (i32.const 8))
      (call $set_error (i32.const ${MESSAGE + 9}) (i32.const 5))
      (i32.const 0))
    (func (export "fail_then_overwrite") (result i32)
      (call $set_error (i32.const ${MESSAGE}) (i32.const 14))
      (memory.fill (i32.const ${MESSAGE}) (i32.const 88) (i32.const 14))
      (i32.const 0))
    (func (export "fail_then_trap") (result i32)
      (call $set_error (i32.const ${MESSAGE}) (i32.const 14))
      unreachable)
    (func (export "fail_then_denied") (result i32)
      (call $set_error (i32.const ${MESSAGE}) (i32.const 14))
      (call $get_config (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))))`;
}

const MODULES = [
  { kind: "a plain module", wat: reporterWat("") },
  {
    kind: "a JSPI-wrapped module",
    wat: reporterWat(`(import "env" "host_sleep_ms" (func $sleep (param i32)))`),
  },
];

/** Writes `text` at {@linkcode SCRATCH} and reports it; resolves to what `report` returned. */
async function report(plugin: WasmPlugin, bytes: Uint8Array): Promise<number> {
  await plugin.writeMemory(SCRATCH, bytes);
  return await plugin.callI32("report", [SCRATCH, bytes.length]);
}

for (const { kind, wat } of MODULES) {
  testEachIsolation(
    `env.host_set_error fails the call with a GuestError, in ${kind}`,
    { permissions: "none" },
    async (t, { loadPlugin }) => {
      await using loaded = await loadPlugin(wat, { name: "reporter" });
      const { plugin } = loaded;
      await plugin.initialize();

      await t.step("callBytes: the message, with both buffers freed", async () => {
        await assertRejectsWith(
          () => plugin.callBytes("fail_with_input", bytesOf("bad input: ü")),
          GuestError,
          { kind: "guest", functionName: "fail_with_input", message: "bad input: ü" },
        );
        assert.equal(await plugin.callI32("live", []), 0);
        assert.equal(textOf(await plugin.callBytes("echo", bytesOf("fine"))), "fine");
      });

      await t.step("callJson and callWithBytes", async () => {
        await assertRejectsWith(() => plugin.callJson("fail_with_input", "x"), GuestError, {
          message: '"x"',
        });
        await assertRejectsWith(
          () => plugin.callWithBytes("fail_i32", bytesOf("no")),
          GuestError,
          { functionName: "fail_i32", message: "no" },
        );
        assert.equal(await plugin.callI32("live", []), 0);
      });

      await t.step("plain calls; the error belongs to its call only", async () => {
        await assertRejectsWith(() => plugin.callI32("check", [-1]), GuestError, {
          functionName: "check",
          message: "negative input",
        });
        assert.equal(await plugin.callI32("check", [5]), 5);
      });

      await t.step("the last message wins, copied when it is reported", async () => {
        await assertRejectsWith(() => plugin.callI32("twice", []), GuestError, {
          message: "input",
        });
        await assertRejectsWith(() => plugin.callI32("fail_then_overwrite", []), GuestError, {
          message: "negative input",
        });
      });

      await t.step("an empty message gets a default one", async () => {
        await assertRejectsWith(() => report(plugin, new Uint8Array()), GuestError, {
          message: 'Plugin function "report" failed without a message',
        });
      });

      await t.step("a message is kept up to 16 KiB, with a note of the rest", async () => {
        const long = new Uint8Array(MAX_GUEST_ERROR_BYTES + 3616).fill(0x61);
        const err = await assertRejectsWith(() => report(plugin, long), GuestError);
        assert.equal(MAX_GUEST_ERROR_BYTES, 16 * 1024);
        assert.equal(err.message, `${"a".repeat(16 * 1024)}… (3616 more bytes dropped)`);
      });

      await t.step("a message outside memory is the host's error", async () => {
        await assertRejectsWith(
          () => plugin.callI32("report", [2 * 65536 - 4, 8]),
          MemoryOutOfBoundsError,
        );
      });

      await t.step("a trap or a host function's error wins over the message", async () => {
        await assertRejectsWith(() => plugin.callI32("fail_then_trap", []), TrapError);
        await assertRejectsWith(
          () => plugin.callI32("fail_then_denied", []),
          CapabilityDeniedError,
          { capability: Capability.ReadConfig },
        );
        assert.equal(await plugin.callI32("check", [1]), 1);
      });

      // Failed calls leave the plugin ready.
      assert.equal(plugin.state, "ready");
    },
  );
}

Deno.test("A GuestError crosses the worker boundary with its message and function", () => {
  const sent = new GuestError('missing "name"', { functionName: "greet" });
  const error = decodeError(encodeError(sent));
  assert.ok(error instanceof GuestError);
  assert.equal(error.kind, "guest");
  assert.equal(error.functionName, "greet");
  assert.equal(error.message, 'missing "name"');
});

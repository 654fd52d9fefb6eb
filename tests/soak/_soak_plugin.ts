/**
 * The plugins a soak runs: one module with an export per normal call and per
 * injected fault, in two flavors. The `sync` flavor imports only
 * `host_get_config`; the `async` flavor also imports `host_sleep_ms` and
 * `host_call_tool`, so its exports run through JSPI and a call can be
 * cancelled while the guest waits on the host.
 *
 * @module
 */

import { PACK_FUNC_WAT, REVERSE_FUNC_WAT } from "../fixtures/wat.ts";

/** Which imports a soak plugin has, and so which call path it takes. */
export type Flavor = "sync" | "async";

/** The config key `whoami` reads with `host_get_config`. */
export const ID_KEY = "id";

/** The host tool the async flavor's `tool` export calls: `{ a, b }` → `{ sum }`. */
export const TOOL_NAME = "mix";

/** Where `lie` claims its output is: far past the end of the one-page memory. */
export const LIE_POINTER = 0xffff_0000;

export { CRASH_SLEEP_MS, STUCK_SLEEP_MS } from "./_fault_sleeps.ts";

/** Returns the WAT of a soak plugin of `flavor`. */
export function soakWat(flavor: Flavor): string {
  const asyncImports = flavor === "async"
    ? `
  (import "env" "host_sleep_ms" (func $sleep (param i32)))
  (import "env" "host_call_tool"
    (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))`
    : "";
  const asyncExports = flavor === "async"
    ? `
  ;; Sleeps on the host (the guest is suspended, the host is not).
  (func (export "nap") (param $ms i32) (call $sleep (local.get $ms)))
  ;; Calls the host tool "${TOOL_NAME}" with the input as its JSON arguments.
  (func (export "tool") (param $ptr i32) (param $len i32) (result i64) (local $out i32)
    (local.set $out (call $alloc (i32.const 256)))
    (call $pack (local.get $out)
      (call $tool (i32.const 16) (i32.const ${TOOL_NAME.length})
        (local.get $ptr) (local.get $len) (local.get $out) (i32.const 256))))`
    : "";
  return `(module
  (import "env" "host_get_config" (func $get_config (param i32 i32 i32 i32) (result i32)))${asyncImports}
  (memory (export "memory") 1)
  (data (i32.const 0) "${ID_KEY}")
  (data (i32.const 16) "${TOOL_NAME}")
  (global $next (mut i32) (i32.const 1024))
  ;; A bump allocator that wraps around: one call runs at a time and its
  ;; buffers are small, so it never needs to free.
  (func $alloc (export "alloc") (param $n i32) (result i32) (local $at i32)
    (if (i32.gt_u (i32.add (global.get $next) (local.get $n)) (i32.const 65536))
      (then (global.set $next (i32.const 1024))))
    (local.set $at (global.get $next))
    (global.set $next (i32.add (local.get $at) (local.get $n)))
    (local.get $at))
  ${PACK_FUNC_WAT}
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  ;; The input reversed, in a new buffer.
  ${REVERSE_FUNC_WAT}
  ;; The input itself (callJson round-trips its argument).
  (func (export "echo") (param i32 i32) (result i64) (call $pack (local.get 0) (local.get 1)))
  ;; The plugin's "${ID_KEY}" config value, read through the host.
  (func (export "whoami") (param i32 i32) (result i64) (local $out i32)
    (local.set $out (call $alloc (i32.const 64)))
    (call $pack (local.get $out)
      (call $get_config (i32.const 0) (i32.const ${ID_KEY.length}) (local.get $out) (i32.const 64))))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "boom") unreachable)
  (func $recurse (export "recurse") (param i32) (result i32)
    (i32.add (i32.const 1) (call $recurse (local.get 0))))
  ;; An output location outside memory.
  (func (export "lie") (param i32 i32) (result i64)
    (call $pack (i32.const ${LIE_POINTER | 0}) (i32.const 64)))${asyncExports})`;
}

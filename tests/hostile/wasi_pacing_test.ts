/**
 * Hostile guests that make the host work outside fuel a little at a time:
 * loops of cheap WASI calls, one `poll_oneoff` of 65 536 subscriptions,
 * paths of megabytes. Each call still ends at its deadline, in both
 * isolations: every WASI call checks it as it begins, `poll_oneoff` between
 * slices of its subscriptions, and paths over 4096 bytes are `ENAMETOOLONG`
 * before they are copied.
 */
import assert from "node:assert/strict";
import { Capability, TimeoutError } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";

const ENAMETOOLONG = 37;
const EINVAL = 28;

/**
 * `write_empty()` loops `fd_write` of 65 536 empty iovecs (a few ms each, no
 * byte moved); `poll(n)` polls `n` zeroed subscriptions (clocks already due);
 * `stat_path(len)` asks `path_filestat_get` about the path of `len` bytes at 1024.
 */
const WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 300)
  (func (export "write_empty")
    (loop $again
      (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 65536) (i32.const 16)))
      (br $again)))
  (func (export "poll") (param $n i32) (result i32)
    (call $poll (i32.const 1024) (i32.add (i32.const 1024) (i32.mul (local.get $n) (i32.const 48)))
      (local.get $n) (i32.const 16)))
  (func (export "stat_path") (param $len i32) (result i32)
    (call $stat (i32.const 3) (i32.const 0) (i32.const 1024) (local.get $len) (i32.const 64))))`;

const dir = await Deno.makeTempDir({ prefix: "wasmplug_wasi_pacing_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

testEachIsolation("Hostile WASI: cheap calls in a loop and one huge poll end at the deadline", {
  permissions: { read: [dir] },
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(WAT, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/data": dir } },
    resourceLimits: { maxMemoryPages: 300, maxFuel: null },
  });
  const { plugin } = loaded;

  await t.step("a loop of fd_write of empty iovecs (3.5-7 s late inline before)", async () => {
    await within(() =>
      assertRejectsWith(() => plugin.callVoid("write_empty", [], { timeoutMs: 100 }), TimeoutError)
    );
  });

  await t.step("one poll_oneoff of 65 536 subscriptions (200 000 took 2.3 s)", async () => {
    await within(() =>
      assertRejectsWith(() => plugin.callI32("poll", [65_536], { timeoutMs: 20 }), TimeoutError)
    );
    assert.equal(await plugin.callI32("poll", [10]), 0);
  });

  await t.step("more subscriptions are EINVAL, read of none (each held host memory)", async () => {
    // 32.7 million of them (a memory full) took 5.2 GB of the host's memory for a minute.
    assert.equal(await plugin.callI32("poll", [65_537], { timeoutMs: 20 }), EINVAL);
    assert.equal(await plugin.callI32("poll", [-1], { timeoutMs: 20 }), EINVAL);
  });

  await t.step("a path over 4096 bytes is ENAMETOOLONG", async () => {
    // "./" again and again: the preopen itself, however long the path.
    await plugin.writeMemory(1024, new TextEncoder().encode("./".repeat(2049)));
    assert.equal(await plugin.callI32("stat_path", [4096]), 0);
    assert.equal(await plugin.callI32("stat_path", [4097]), ENAMETOOLONG);
  });
});

/**
 * Hostile WASI writes: one `fd_write` of 3000 iovecs of 1 MiB each. To a
 * file it ends with the call's `TimeoutError` at the deadline, having
 * written only what fits in that time; to stdout it keeps at most 1 MiB.
 */
import assert from "node:assert/strict";
import { Capability, TimeoutError } from "../../mod.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { within } from "./_within.ts";

const IOVECS = 3000;
const MIB = 1024 * 1024;

/** Fills 3000 iovecs at 0, each the 1 MiB at 65536; `$fd` is where `fd_write` goes. */
function floodWat(body: string): string {
  return `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 20)
  (data (i32.const 24000) "out.bin")
  (func $fill (local $i i32)
    (loop $l
      (i32.store (i32.mul (local.get $i) (i32.const 8)) (i32.const 65536))
      (i32.store offset=4 (i32.mul (local.get $i) (i32.const 8)) (i32.const ${MIB}))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${IOVECS})))))
  ${body}
  (func (export "ok") (result i32) i32.const 1))`;
}

/** `flood()` opens `out.bin` (O_CREAT | O_TRUNC, write) in the preopen and floods it. */
const FLOOD_FILE_WAT = floodWat(`
  (func (export "flood") (result i32) (local $err i32)
    (call $fill)
    (local.set $err (call $open (i32.const 3) (i32.const 0) (i32.const 24000) (i32.const 7)
      (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 24016)))
    (if (local.get $err) (then (return (local.get $err))))
    (call $write (i32.load (i32.const 24016)) (i32.const 0) (i32.const ${IOVECS})
      (i32.const 24020)))`);

/** A command whose `_start` floods stdout. */
const FLOOD_STDOUT_WAT = floodWat(`
  (func (export "_start")
    (call $fill)
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const ${IOVECS}) (i32.const 24020))))`);

const outDir = await Deno.makeTempDir({ prefix: "wasmplug_wasi_write_" });
globalThis.addEventListener("unload", () => Deno.removeSync(outDir, { recursive: true }));

testEachIsolation("Hostile WASI: a 3000 MiB fd_write ends at the deadline or the output cap", {
  permissions: { read: [outDir], write: [outDir] },
}, async (t, { loadPlugin }) => {
  await t.step(
    "to a file: a TimeoutError within the limit, the file far from 3000 MiB",
    async () => {
      await using loaded = await loadPlugin(FLOOD_FILE_WAT, {
        capabilities: [Capability.Wasi, Capability.FileSystem],
        wasi: { preopens: { "/out": outDir } },
        allowedPaths: { write: [outDir] },
        resourceLimits: { maxExecutionTimeMs: 100 },
      });
      const start = performance.now();
      await within(() =>
        assertRejectsWith(() => loaded.plugin.callI32("flood"), TimeoutError, { timeoutMs: 100 })
      );
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 100 + 400, `ended after ${elapsed.toFixed(0)} ms`);
      const { size } = await Deno.stat(`${outDir}/out.bin`);
      assert.ok(size < IOVECS * MIB / 2, `${size / MIB} MiB written`);
      assert.equal(await loaded.plugin.callI32("ok"), 1);
      await Deno.remove(`${outDir}/out.bin`);
    },
  );

  await t.step("to stdout: at most 1 MiB kept, and the call is quick", async () => {
    await using loaded = await loadPlugin(FLOOD_STDOUT_WAT, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxExecutionTimeMs: 1_000 },
    });
    const result = await within(() => loaded.plugin.run());
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.length, MIB);
    assert.equal(result.outputTruncated, true);
    assert.equal(await loaded.plugin.callI32("ok"), 1);
  });

  await t.step("to stdout past the deadline: a TimeoutError, not a hang", async () => {
    await using loaded = await loadPlugin(FLOOD_STDOUT_WAT, {
      capabilities: [Capability.Wasi],
      resourceLimits: { maxExecutionTimeMs: 1 },
    });
    // Filling the iovecs alone may or may not take 1 ms: either way the run is short.
    await within(() => loaded.plugin.run().catch((err) => assert.ok(err instanceof TimeoutError)));
  });
});

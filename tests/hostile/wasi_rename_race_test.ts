/**
 * Hostile WASI renames: a preopen shared by two plugins holds `d/` and a
 * symlink `link` to a directory outside it. One side swaps `link` in for
 * `d` as fast as it can while the other opens `d/secret.txt` thousands of
 * times: every rename of the link is refused, and no read leaves the
 * preopen. (A process outside wasmplug racing the same way is narrowed by
 * the post-open identity check but not excluded: see `src/wasi/_path.ts`.)
 */
import assert from "node:assert/strict";
import { Capability } from "../../mod.ts";
import { RUN_SLOW, SLOW, workerRuntime } from "../_helpers.ts";

const ENOTCAPABLE = 76;

/** `probe(n)` opens and reads `d/secret.txt` n times; returns how often it read "O" (outside). */
const VICTIM_WAT = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "d/secret.txt")
  (global $inside (mut i32) (i32.const 0))
  (func (export "probe") (param $n i32) (result i32) (local $outside i32) (local $fd i32)
    (i32.store (i32.const 32) (i32.const 64))
    (i32.store (i32.const 36) (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (i32.store8 (i32.const 64) (i32.const 0))
      (if (i32.eqz (call $open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 12)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
        (then
          (local.set $fd (i32.load (i32.const 16)))
          (drop (call $read (local.get $fd) (i32.const 32) (i32.const 1) (i32.const 20)))
          (drop (call $close (local.get $fd)))
          (if (i32.eq (i32.load8_u (i32.const 64)) (i32.const 79))
            (then (local.set $outside (i32.add (local.get $outside) (i32.const 1))))
            (else (global.set $inside (i32.add (global.get $inside) (i32.const 1)))))))
      (br $next)))
    (local.get $outside))
  (func (export "inside") (result i32) (global.get $inside)))`;

/**
 * `swap(n)` n times renames d -> d2, link -> d, d -> link, d2 -> d; returns
 * how many renames of the link succeeded, or the errno of the last refusal
 * (negated) when none did.
 */
const ATTACKER_WAT = `(module
  (import "wasi_snapshot_preview1" "path_rename"
    (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "d")
  (data (i32.const 110) "d2")
  (data (i32.const 120) "link")
  (func $mv (param $from i32) (param $fromLen i32) (param $to i32) (param $toLen i32) (result i32)
    (call $rename (i32.const 3) (local.get $from) (local.get $fromLen) (i32.const 3)
      (local.get $to) (local.get $toLen)))
  (func (export "swap") (param $n i32) (result i32) (local $moved i32) (local $err i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (drop (call $mv (i32.const 100) (i32.const 1) (i32.const 110) (i32.const 2)))
      (local.set $err (call $mv (i32.const 120) (i32.const 4) (i32.const 100) (i32.const 1)))
      (if (i32.eqz (local.get $err))
        (then (local.set $moved (i32.add (local.get $moved) (i32.const 1)))))
      (drop (call $mv (i32.const 100) (i32.const 1) (i32.const 120) (i32.const 4)))
      (drop (call $mv (i32.const 110) (i32.const 2) (i32.const 100) (i32.const 1)))
      (br $next)))
    (if (result i32) (local.get $moved)
      (then (local.get $moved))
      (else (i32.sub (i32.const 0) (local.get $err))))))`;

const root = await Deno.makeTempDir({ prefix: "wasmplug_wasi_race_" });
const shared = `${root}/shared`;
await Deno.mkdir(`${root}/outside`);
await Deno.writeTextFile(`${root}/outside/secret.txt`, "OUTSIDE\n");
await Deno.mkdir(`${shared}/d`, { recursive: true });
await Deno.writeTextFile(`${shared}/d/secret.txt`, "inside\n");
await Deno.symlink(`${root}/outside`, `${shared}/link`);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const FILES = {
  capabilities: [Capability.Wasi, Capability.FileSystem],
  wasi: { preopens: { "/shared": shared } },
  allowedPaths: { write: [shared] },
  resourceLimits: { maxExecutionTimeMs: 20_000 },
};

for (const victimIsolation of ["worker", "inline"] as const) {
  Deno.test(
    `${SLOW}Hostile WASI: a plugin cannot move a symlink under another plugin's path (victim ${victimIsolation})`,
    {
      permissions: { read: true, write: [shared] },
      ignore: !RUN_SLOW,
    },
    () => race(victimIsolation),
  );
}

/** An attacker in a worker races a victim in `victimIsolation` (inline: on the host thread). */
async function race(victimIsolation: "worker" | "inline"): Promise<void> {
  await using runtime = workerRuntime();
  const victim = await runtime.createPluginFromWat(VICTIM_WAT, {
    ...FILES,
    isolation: victimIsolation,
  });
  const attacker = await runtime.createPluginFromWat(ATTACKER_WAT, FILES);
  // The attacker's worker starts first: an inline victim then runs on the host thread while the
  // worker swaps (an inline call runs to its end before callI32 returns).
  const swapping = attacker.callI32("swap", [5_000]);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const outside = await victim.callI32("probe", [5_000]);
  const swapped = await swapping;
  assert.equal(swapped, -ENOTCAPABLE, "every rename of the link was refused");
  assert.equal(outside, 0, "reads outside the preopen");
  assert.ok(await victim.callI32("inside") > 0);
  assert.ok(Deno.lstatSync(`${shared}/link`).isSymlink);
  assert.ok(Deno.lstatSync(`${shared}/d`).isDirectory);
}

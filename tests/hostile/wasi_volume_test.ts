/**
 * Hostile WASI guests that would make the host hold a lot for them, each
 * within its own limits: many host files (the process could run out of file
 * descriptors, and Deno 2.9 ends the process when it then starts a worker),
 * output written a byte at a time, and directory listings through many
 * descriptors. Each is bounded: a process-wide budget of guests' host files
 * (`ENFILE` past it), one growable buffer per captured stream, and at most
 * 16 kept listings per instance.
 */
import assert from "node:assert/strict";
import { Capability, WasiPreview1, type WasmPlugin } from "../../mod.ts";
import { resumeAt } from "../../src/wasi/_directory_listing.ts";
import { FdTable, Listing, MAX_KEPT_LISTINGS } from "../../src/wasi/_fd_table.ts";
import { listDirectory } from "../../src/wasi/_directory_listing.ts";
import { guestFiles } from "../../src/wasi/_file_budget.ts";
import { loadPlugin, testEachIsolation } from "../_helpers.ts";

const ENFILE = 41;
const EMFILE = 33;

/** `open_many(n)` opens `f.txt` in the preopen up to `n` times, keeping each open: (count, errno). */
const OPEN_MANY_WAT = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "f.txt")
  (func (export "open_many") (param $n i32) (result i32 i32) (local $count i32) (local $errno i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $count) (local.get $n)))
        (local.set $errno (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 5)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
        (br_if $done (local.get $errno))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $again)))
    (local.get $count) (local.get $errno)))`;

const dir = await Deno.makeTempDir({ prefix: "wasmplug_wasi_volume_" });
await Deno.writeTextFile(`${dir}/f.txt`, "x");
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

testEachIsolation("Hostile WASI: guests together cannot take the host's file descriptors", {
  // Without every permission Deno does not let the process read its limit: the budget is 512.
  permissions: { read: [dir] },
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxInstances: 4 } });
  const compiled = await runtime.compileWat("open_many", OPEN_MANY_WAT);
  const config = {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/data": dir }, maxOpenFiles: 1024 },
  };
  const { budget, held: before } = guestFiles();
  assert.equal(budget, 512);
  const first = await runtime.createPlugin(compiled, config);
  const second = await runtime.createPlugin(compiled, config);

  await t.step("past the budget, path_open answers ENFILE", async () => {
    const [opened, errno] = await first.call("open_many", [400]) as number[];
    const [more, refused] = await second.call("open_many", [400]) as number[];
    assert.equal(opened! + more!, budget - before, `${opened} + ${more}`);
    assert.equal(errno === ENFILE ? errno : refused, ENFILE);
    assert.equal(guestFiles().held, budget);
    // The host itself still opens files.
    Deno.openSync(`${dir}/f.txt`).close();
  });

  await t.step("a stopped plugin's files go back to the budget", async () => {
    await first.stop();
    await second.stop();
    assert.equal(guestFiles().held, before);
  });
});

testEachIsolation("Hostile WASI: a plugin's maxOpenFiles bounds its descriptors", {
  permissions: { read: [dir] },
}, async (_t, { loadPlugin }) => {
  await using loaded = await loadPlugin(OPEN_MANY_WAT, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/data": dir }, maxOpenFiles: 10 },
  });
  // stdio and the preopen take 4 of the 10.
  assert.deepEqual(await loaded.plugin.call("open_many", [100]), [6, EMFILE]);
});

Deno.test("A plugin's wasi.maxOpenFiles leaves room for stdio and its preopens, up to 4096", {
  permissions: "none",
}, async () => {
  for (const maxOpenFiles of [2, 4097, 1.5, "8"]) {
    await assert.rejects(
      () => loadPlugin("(module)", { wasi: { maxOpenFiles: maxOpenFiles as number } }),
      /Cannot use 'wasi.maxOpenFiles': expected an integer from 3 \(stdio and the preopens\) to 4096/,
    );
  }
  await assert.rejects(
    () =>
      loadPlugin("(module)", {
        wasi: { preopens: { "/a": "/a", "/b": "/b" }, maxOpenFiles: 4 },
      }),
    /expected an integer from 5 \(stdio and the preopens\) to 4096, received number 4/,
  );
});

/** `spam(rounds)`: `fd_write`s 65 536 one-byte iovecs to stdout, `rounds` times. */
const SPAM_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 9)
  (func (export "spam") (param $rounds i32) (local $i i32)
    (loop $fill
      (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
      (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3))) (i32.const 1))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
        (i32.const 65536))))
    (loop $again
      (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 65536) (i32.const 16)))
      (br_if $again (local.tee $rounds (i32.sub (local.get $rounds) (i32.const 1)))))))`;

Deno.test("Hostile WASI: output written a byte at a time costs the host about its bytes", {
  permissions: "none",
}, async () => {
  await using loaded = await loadPlugin(SPAM_WAT, { capabilities: [Capability.Wasi] });
  const used = (): number => Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
  const before = used();
  // 1 MiB of output, kept in full: a chunk a write cost about 500 times as much.
  await loaded.plugin.callVoid("spam", [16]);
  const grown = used() - before;
  assert.ok(grown < 64 * 1024 * 1024, `the host grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

Deno.test("A WASI instance keeps the listings of its last 16 directories only", () => {
  const fds = new FdTable(1024);
  const preopen = { guestPath: "/d", host: "/d", real: "/d" };
  const dirs = Array.from({ length: 40 }, () => {
    const dir = { kind: "directory" as const, preopen, rel: [], isPreopen: false, flags: 0 };
    fds.add(dir);
    return dir;
  });
  for (const dir of dirs) {
    Object.assign(dir, { listing: new Listing([]) });
    fds.keepListing(dir);
  }
  const kept = dirs.filter((dir) => "listing" in dir);
  assert.equal(kept.length, MAX_KEPT_LISTINGS);
  assert.deepEqual(kept, dirs.slice(-MAX_KEPT_LISTINGS));
});

Deno.test("A kept listing costs about its names' bytes, and shows the directory as it is", {
  permissions: { read: true, write: true },
}, async () => {
  // As objects an entry took about 250 bytes: sixteen descriptors of one directory of 100 000
  // entries held 400 MB of the host's heap (a 300 MB heap ended the process after twelve).
  // Shared between descriptors while the directory looked unchanged, a listing missed a
  // file made in the same millisecond (62-81 of 300 times), until the next change.
  const root = await Deno.makeTempDir({ prefix: "wasmplug_listing_" });
  try {
    for (let i = 0; i < 10_000; i++) await Deno.writeTextFile(`${root}/file${i}`, "");
    const preopen = { guestPath: "/d", host: root, real: root };
    const dir = { kind: "directory" as const, preopen, rel: [], isPreopen: false, flags: 0 };
    const listing = listDirectory(dir, () => {});
    assert.equal(listing.length, 10_002);
    // "file0".."file9999": 88 890 bytes of names, 13 bytes an entry besides.
    assert.ok(listing.byteLength < 88_890 + 14 * 10_002, `${listing.byteLength} bytes`);
    for (let i = 0; i < 50; i++) {
      await Deno.writeTextFile(`${root}/new${i}`, "");
      assert.equal(listDirectory(dir, () => {}).length, 10_003 + i, "a file made just now");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** A start function that opens `f.txt` 100 times, then traps. */
const OPEN_THEN_TRAP_WAT = OPEN_MANY_WAT.replace(
  '(data (i32.const 100) "f.txt")',
  `(data (i32.const 100) "f.txt")
  (start $start)
  (func $start (local $i i32)
    (loop $again
      (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 5)
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
      (br_if $again (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
        (i32.const 100))))
    unreachable)`,
);

testEachIsolation("Hostile WASI: files a failed start function opened go back to the budget", {
  permissions: { read: [dir] },
}, async (_t, { loadPlugin }) => {
  const { held } = guestFiles();
  await assert.rejects(
    () =>
      loadPlugin(OPEN_THEN_TRAP_WAT, {
        capabilities: [Capability.Wasi, Capability.FileSystem],
        wasi: { preopens: { "/data": dir } },
      }),
    /The start function failed/,
  );
  assert.equal(guestFiles().held, held);
});

Deno.test("fd_readdir resumes a listing taken again by name, whatever changed", () => {
  const entry = (name: string) => ({ name: new TextEncoder().encode(name), ino: 0n, type: 0 });
  const listing = (...names: string[]) => new Listing([".", "..", ...names].map(entry));
  const old = listing("a", "b", "c", "d");
  // The last page wrote \`a\` and \`b\` (from cookie 2): its names start one entry before.
  const page = {
    first: 1,
    names: [1, 2, 3].map((i) => old.name(i)),
    cookie: 2n,
    at: 2n,
    whole: 2,
  };
  // The guest removed what it read; another file came before where it was.
  assert.equal(resumeAt(listing("0", "c", "d"), page, 4n), 3n); // on at "c"
  assert.equal(resumeAt(listing("c", "d"), page, 4n), 2n);
  assert.equal(resumeAt(listing("a", "b", "bb", "c"), page, 3n), 3n); // after "a": "b"
  assert.equal(resumeAt(listing("x"), page, 2n), 2n); // after "..": everything
  // A cookie the page does not cover is kept as an index.
  assert.equal(resumeAt(listing("c", "d"), page, 6n), 6n);
});

/**
 * `open(pathLen, oflags)` opens the path at 2048 (rights: read and write)
 * and answers the errno, keeping what it opened; `opendir(pathLen)` opens
 * it as a directory and answers its fd; `readdir(fd, cookie, len)` reads
 * entries into 4096 and answers the bytes used.
 */
const FILES_WAT = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "open") (param $len i32) (param $oflags i32) (result i32)
    (call $open (i32.const 3) (i32.const 0) (i32.const 2048) (local.get $len)
      (local.get $oflags) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 16)))
  (func (export "opendir") (param $len i32) (result i32)
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 2048) (local.get $len)
      (i32.const 2) (i64.const 0x6000) (i64.const -1) (i32.const 0) (i32.const 16)))
    (i32.load (i32.const 16)))
  (func (export "readdir") (param $fd i32) (param $cookie i64) (param $len i32) (result i32)
    (drop (call $readdir (local.get $fd) (i32.const 4096) (local.get $len) (local.get $cookie)
      (i32.const 20)))
    (i32.load (i32.const 20))))`;

testEachIsolation("Hostile WASI: an open refused for want of room truncates and creates nothing", {
  permissions: { read: [dir], write: [dir] },
}, async (_t, { loadPlugin }) => {
  await Deno.writeTextFile(`${dir}/victim.txt`, "precious\n");
  await using loaded = await loadPlugin(FILES_WAT, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/data": dir }, maxOpenFiles: 5 },
    allowedPaths: { write: [dir] },
  });
  const { plugin } = loaded;
  const open = async (path: string, oflags: number): Promise<number> => {
    const bytes = new TextEncoder().encode(path);
    await plugin.writeMemory(2048, bytes);
    return await plugin.callI32("open", [bytes.length, oflags]);
  };
  assert.equal(await open("f.txt", 0), 0); // stdio, the preopen and this: 5 of 5
  const O_CREAT = 1, O_TRUNC = 8;
  assert.equal(await open("victim.txt", O_TRUNC), EMFILE);
  assert.equal(await Deno.readTextFile(`${dir}/victim.txt`), "precious\n");
  assert.equal(await open("new.txt", O_CREAT), EMFILE);
  await assert.rejects(() => Deno.stat(`${dir}/new.txt`), Deno.errors.NotFound);
});

testEachIsolation(
  "Hostile WASI: a page read again after its listing was taken again repeats nothing",
  {
    permissions: { read: [dir], write: [dir] },
  },
  async (_t, { loadPlugin }) => {
    const tree = await Deno.makeTempDir({ dir, prefix: "tree_" });
    await Deno.mkdir(`${tree}/d`);
    for (const name of ["b", `c_${"x".repeat(40)}`, "e"]) {
      await Deno.writeTextFile(
        `${tree}/d/${name}`,
        "",
      );
    }
    for (let i = 0; i < MAX_KEPT_LISTINGS + 1; i++) await Deno.mkdir(`${tree}/o${i}`);
    await using loaded = await loadPlugin(FILES_WAT, {
      capabilities: [Capability.Wasi, Capability.FileSystem],
      wasi: { preopens: { "/data": tree } },
    });
    const { plugin } = loaded;
    const { opendir, page } = directoryReader(plugin);
    const d = await opendir("d");
    const seen: string[] = [];
    let cookie = 0n;
    for (let i = 0; i < 3; i++) { // ".", "..", "b", one a page
      const { names, next } = await page(d, cookie, 30);
      seen.push(...names);
      cookie = next;
    }
    // The walk goes down into 17 other directories, which drops this one's listing…
    for (let i = 0; i < MAX_KEPT_LISTINGS + 1; i++) await page(await opendir(`o${i}`), 0n, 64);
    // …and new entries come before where it was. The next entry does not fit 30 bytes:
    await Deno.writeTextFile(`${tree}/d/a1`, "");
    const cut = await page(d, cookie, 30);
    assert.deepEqual(cut.names, []);
    // so the guest reads the same page again, with room (as wasi-libc does).
    for (let i = 0; i < 3; i++) {
      const { names, next } = await page(d, cookie, 4096);
      seen.push(...names);
      cookie = next;
    }
    assert.deepEqual(seen, [".", "..", "b", `c_${"x".repeat(40)}`, "e"]);
  },
);

testEachIsolation("Hostile WASI: a walk that deletes as it reads, its listing taken again, ends", {
  permissions: { read: [dir], write: [dir] },
}, async (_t, { loadPlugin }) => {
  const tree = await Deno.makeTempDir({ dir, prefix: "walk_" });
  await Deno.mkdir(`${tree}/d`);
  for (const name of ["a", "b", "c", "d", "e", "f"]) {
    await Deno.writeTextFile(`${tree}/d/${name}`, "");
  }
  for (let i = 0; i < MAX_KEPT_LISTINGS + 1; i++) await Deno.mkdir(`${tree}/o${i}`);
  await using loaded = await loadPlugin(FILES_WAT, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/data": tree } },
  });
  const reader = directoryReader(loaded.plugin);
  const d = await reader.opendir("d");
  const seen: string[] = [];
  let cookie = 0n;
  for (let i = 0; i < 4; i++) { // ".", "..", "a", "b": one a page
    const page = await reader.page(d, cookie, 30);
    seen.push(...page.names);
    cookie = page.next;
  }
  await Deno.remove(`${tree}/d/a`);
  await Deno.remove(`${tree}/d/b`);
  for (let i = 0; i < MAX_KEPT_LISTINGS + 1; i++) {
    await reader.page(await reader.opendir(`o${i}`), 0n, 64);
  }
  // Two whole entries a page from here on; it used to go round "c", "d" for ever.
  for (let i = 0; i < 10; i++) {
    const page = await reader.page(d, cookie, 60);
    if (page.names.length === 0) break;
    seen.push(...page.names);
    cookie = page.next;
  }
  assert.deepEqual(seen, [".", "..", "a", "b", "c", "d", "e", "f"]);
});

/** Opens directories and reads pages of their entries through a plugin of `FILES_WAT`. */
function directoryReader(plugin: WasmPlugin) {
  const opendir = async (path: string): Promise<number> => {
    const bytes = new TextEncoder().encode(path);
    await plugin.writeMemory(2048, bytes);
    return await plugin.callI32("opendir", [bytes.length]);
  };
  /** Reads one page: the names of the whole entries in it, and the cookie after the last. */
  const page = async (fd: number, cookie: bigint, len: number) => {
    // An i64 cookie goes in as a bigint.
    const used = await plugin.callI32("readdir", [fd, cookie, len] as unknown as number[]);
    const bytes = await plugin.readMemory(4096, used);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const names: string[] = [];
    let next = cookie;
    for (let at = 0; at + 24 <= used;) {
      const length = view.getUint32(at + 16, true);
      if (at + 24 + length > used) break; // cut short: the buffer was too small
      names.push(new TextDecoder().decode(bytes.subarray(at + 24, at + 24 + length)));
      next = view.getBigUint64(at, true);
      at += 24 + length;
    }
    return { names, next };
  };
  return { opendir, page };
}

Deno.test("WasiPreview1's maxOpenFiles leaves room for stdio and the preopens", () => {
  assert.throws(
    () =>
      new WasiPreview1({ preopens: { "/a": "/a", "/b": "/b" }, fileSystem: true, maxOpenFiles: 4 }),
    RangeError,
    "at least 5, current value is 4",
  );
});

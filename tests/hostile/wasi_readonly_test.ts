/**
 * Hostile WASI writes to a read-only preopen (one without Deno write
 * permission): every change fails with `EACCES` before Deno is asked, so no
 * permission prompt can come from the plugin, and nothing changes.
 */
import assert from "node:assert/strict";
import { Capability } from "../../mod.ts";
import { RUN_SLOW, SLOW, testEachIsolation } from "../_helpers.ts";

const EACCES = 2;

/** Each export tries one change in the preopen (fd 3) and returns the errno. */
export const READONLY_WAT = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $rmdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times"
    (func $ftimes (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "new.txt")
  (data (i32.const 200) "file.txt")
  (data (i32.const 300) "newdir")
  (data (i32.const 400) "sub")
  (data (i32.const 500) "moved.txt")
  (func $open_file (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64)
    (result i32)
    (call $open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)
      (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 16)))
  (func (export "create") (result i32)
    (call $open_file (i32.const 100) (i32.const 7) (i32.const 1) (i64.const 64)))
  (func (export "truncate") (result i32)
    (call $open_file (i32.const 200) (i32.const 8) (i32.const 8) (i64.const 2)))
  (func (export "open_for_write") (result i32)
    (call $open_file (i32.const 200) (i32.const 8) (i32.const 0) (i64.const 64)))
  (func (export "mkdir") (result i32) (call $mkdir (i32.const 3) (i32.const 300) (i32.const 6)))
  (func (export "rmdir") (result i32) (call $rmdir (i32.const 3) (i32.const 400) (i32.const 3)))
  (func (export "unlink") (result i32) (call $unlink (i32.const 3) (i32.const 200) (i32.const 8)))
  (func (export "rename") (result i32)
    (call $rename (i32.const 3) (i32.const 200) (i32.const 8) (i32.const 3) (i32.const 500)
      (i32.const 9)))
  (func (export "set_times") (result i32)
    (call $times (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 8) (i64.const 0)
      (i64.const 0) (i32.const 10)))
  (func (export "set_dir_times") (result i32)
    (call $ftimes (i32.const 3) (i64.const 0) (i64.const 0) (i32.const 10)))
  (func (export "set_file_times") (result i32) (local $err i32)
    (local.set $err (call $open_file (i32.const 200) (i32.const 8) (i32.const 0) (i64.const 2)))
    (if (local.get $err) (then (return (i32.add (i32.const 1000) (local.get $err)))))
    (call $ftimes (i32.load (i32.const 16)) (i64.const 0) (i64.const 0) (i32.const 10)))
  ;; The preopen's base and inheriting rights, after its errno (0).
  (func (export "preopen_rights") (result i32 i64 i64)
    (call $fdstat (i32.const 3) (i32.const 600))
    (i64.load (i32.const 608))
    (i64.load (i32.const 616)))
  ;; What wasi-libc's open(O_RDWR) does: the rights it wants, masked with the preopen's
  ;; inheriting rights (FD_READ | FD_SEEK | FD_TELL | FD_WRITE | FD_FILESTAT_GET).
  (func (export "libc_open_rdwr") (result i32) (local $err i32)
    (local.set $err (call $fdstat (i32.const 3) (i32.const 600)))
    (if (local.get $err) (then (return (i32.add (i32.const 1000) (local.get $err)))))
    (call $open_file (i32.const 200) (i32.const 8) (i32.const 0)
      (i64.and (i64.const 0x200066) (i64.load (i32.const 616)))))
  (data (i32.const 700) "sub/new.txt")
  (func (export "create_in_sub") (result i32)
    (call $open_file (i32.const 700) (i32.const 11) (i32.const 1) (i64.const 64)))
  ;; The base rights of the directory "sub", opened as a descriptor of its own.
  (func (export "sub_rights") (result i64)
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 400) (i32.const 3) (i32.const 2)
      (i64.const 0x6000) (i64.const -1) (i32.const 0) (i32.const 16)))
    (drop (call $fdstat (i32.load (i32.const 16)) (i32.const 600)))
    (i64.load (i32.const 608)))
  (func (export "read") (result i32)
    (call $open_file (i32.const 200) (i32.const 8) (i32.const 0) (i64.const 2))))`;

const CHANGES = [
  "create",
  "truncate",
  "open_for_write",
  "mkdir",
  "rmdir",
  "unlink",
  "rename",
  "set_times",
  "set_dir_times",
  "set_file_times",
  "libc_open_rdwr",
];

const OLD = new Date("2001-01-01T00:00:00Z");

/** A preopen laid out for the tests (`file.txt`, `sub/`), and a check that it still is. */
async function layOut(): Promise<{ dir: string; unchanged: () => void }> {
  const dir = await Deno.makeTempDir({ prefix: "wasmplug_wasi_ro_" });
  await Deno.writeTextFile(`${dir}/file.txt`, "keep me\n");
  await Deno.mkdir(`${dir}/sub`);
  await Deno.utime(`${dir}/file.txt`, OLD, OLD);
  await Deno.utime(dir, OLD, OLD);
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const unchanged = (): void => {
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["file.txt", "sub"]);
    assert.equal(Deno.readTextFileSync(`${dir}/file.txt`), "keep me\n");
    assert.equal(Deno.statSync(`${dir}/file.txt`).mtime?.getTime(), OLD.getTime());
    assert.equal(Deno.statSync(dir).mtime?.getTime(), OLD.getTime());
  };
  return { dir, unchanged };
}

const { dir, unchanged } = await layOut();
const granted = await layOut();
/** A tree whose `sub/up` leads back to its (read-only) root. */
const linked = await layOut();
// Here: Deno.symlinkSync needs unscoped permissions, which the tests do not get.
Deno.symlinkSync(linked.dir, `${linked.dir}/sub/up`);

testEachIsolation("Hostile WASI: a read-only preopen refuses every change with EACCES", {
  permissions: { read: [dir] },
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(READONLY_WAT, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: { preopens: { "/ro": dir } },
  });
  const { plugin } = loaded;
  for (const change of CHANGES) {
    await t.step(change, async () => {
      assert.equal(await plugin.callI32(change), EACCES);
      unchanged();
    });
  }
  await t.step("fd_fdstat_get reports no right to change entries", async () => {
    const [errno, base, inheriting] = await plugin.call("preopen_rights", []) as [
      number,
      bigint,
      bigint,
    ];
    assert.equal(errno, 0);
    const PATH_OPEN = 1n << 13n;
    const PATH_CREATE_FILE = 1n << 10n;
    const PATH_UNLINK_FILE = 1n << 26n;
    const FD_WRITE = 1n << 6n;
    assert.equal(base & PATH_OPEN, PATH_OPEN);
    assert.equal(base & (PATH_CREATE_FILE | PATH_UNLINK_FILE), 0n);
    // Inherited write rights let a C `open(O_RDWR)` ask for them and fail at open.
    assert.equal(inheriting & FD_WRITE, FD_WRITE);
  });
  await t.step("reading still works", async () => {
    assert.equal(await plugin.callI32("read"), 0);
  });
});

testEachIsolation(
  "Hostile WASI: a preopen outside allowedPaths.write is read-only, whatever the host may",
  {
    permissions: { read: [granted.dir, linked.dir], write: [granted.dir, linked.dir] },
  },
  async (t, { loadPlugin }) => {
    const config = {
      capabilities: [Capability.Wasi, Capability.FileSystem],
      wasi: { preopens: { "/data": granted.dir } },
    };
    await t.step("without allowedPaths.write, every change fails with EACCES", async () => {
      await using loaded = await loadPlugin(READONLY_WAT, config);
      for (const change of CHANGES) {
        assert.equal(await loaded.plugin.callI32(change), EACCES, change);
        granted.unchanged();
      }
    });
    await t.step("allowedPaths.write opens what lies below its paths, and only that", async () => {
      await using loaded = await loadPlugin(READONLY_WAT, {
        ...config,
        allowedPaths: { write: [`${granted.dir}/sub`] },
      });
      assert.equal(await loaded.plugin.callI32("create"), EACCES);
      assert.equal(await loaded.plugin.callI32("create_in_sub"), 0);
      assert.ok(Deno.statSync(`${granted.dir}/sub/new.txt`).isFile);
      Deno.removeSync(`${granted.dir}/sub/new.txt`);
      granted.unchanged();
      // A descriptor of the writable directory says so; the read-only preopen does not.
      const PATH_CREATE_FILE = 1n << 10n;
      assert.equal(
        (await loaded.plugin.callI64("sub_rights")) & PATH_CREATE_FILE,
        PATH_CREATE_FILE,
      );
    });
    await t.step(
      "a symlink inside allowedPaths.write does not carry writes out of it",
      async () => {
        // The preopen is named inside the grant, but leads to the (read-only) root of the tree.
        await using loaded = await loadPlugin(READONLY_WAT, {
          ...config,
          wasi: { preopens: { "/data": `${linked.dir}/sub/up` } },
          allowedPaths: { write: [`${linked.dir}/sub`] },
        });
        for (const change of ["create", "truncate", "unlink", "mkdir", "set_dir_times"]) {
          assert.equal(await loaded.plugin.callI32(change), EACCES, change);
        }
        linked.unchanged();
      },
    );
  },
);

Deno.test(`${SLOW}Hostile WASI: a read-only preopen never makes Deno prompt on a terminal`, {
  ignore: !RUN_SLOW,
  permissions: { run: ["script"], read: true, write: true },
}, async () => {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const scriptFile = await Deno.makeTempFile({ prefix: "wasmplug_wasi_prompt_", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      scriptFile,
      `
      import { Capability, WasmRuntime } from ${JSON.stringify(mod)};
      await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
      const plugin = await runtime.createPluginFromWat(${JSON.stringify(READONLY_WAT)}, {
        capabilities: [Capability.Wasi, Capability.FileSystem],
        wasi: { preopens: { "/ro": ${JSON.stringify(dir)} } },
      });
      const errno = await plugin.callI32("create");
      let created = true;
      try { Deno.statSync(${JSON.stringify(`${dir}/new.txt`)}); } catch { created = false; }
      console.log("RESULT " + JSON.stringify({ errno, created }));
    `,
    );
    // A pseudo-terminal, on which Deno would prompt, and a "y" waiting to grant it.
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const command =
      `${Deno.execPath()} run --config ${config} --allow-read --allow-env ${scriptFile}`;
    const child = new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("y\ny\ny\n"));
    await writer.close();
    // A prompt waits for more than the "y"s: kill it rather than hang the test.
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const { stdout } = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(stdout);
    const line = text.split("\n").find((l) => l.startsWith("RESULT "));
    assert.ok(line !== undefined, text);
    assert.deepEqual(JSON.parse(line.slice(7)), { errno: EACCES, created: false });
    assert.doesNotMatch(text, /access/i, "no prompt was shown");
  } finally {
    await Deno.remove(scriptFile);
  }
  unchanged();
});

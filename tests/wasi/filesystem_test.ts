import assert from "node:assert/strict";
import { WasiPreview1 } from "../../src/wasi/wasi_preview1.ts";
import {
  E,
  FD_READ,
  FD_WRITE,
  FOLLOW,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_TRUNC,
  Scratch,
} from "./_scratch.ts";

const PREOPEN = 3;
const SECRET = "host secret\n";
const TEMP_DIRS = { permissions: { read: true, write: true } } as const;

/**
 * A temp dir laid out as:
 *
 *     outside.txt            the host file nothing may touch
 *     outside/               a host directory nothing may touch
 *     sandbox/               preopened as /sandbox
 *       hello.txt            "hello, sandbox\n"
 *       sub/inner.txt        "inner\n"
 *       link-inside   ->  sub/inner.txt
 *       escape-file   ->  ../outside.txt
 *       escape-dir    ->  <tmp>/outside (absolute)
 */
interface Sandbox extends AsyncDisposable {
  readonly root: string;
  readonly scratch: Scratch;
  readonly wasi: WasiPreview1;
  call(name: string, ...args: (number | bigint)[]): number;
  /** `path_open` at the preopen; returns `[errno, fd]`. */
  open(
    path: string,
    options?: { oflags?: number; rights?: bigint; lookup?: number; fdflags?: number; dir?: number },
  ): [number, number];
  /** Calls a `(fd, path_ptr, path_len)` function. */
  onPath(name: string, path: string, dir?: number): number;
  /** `path_rename` from `from` to `to`, both in the preopen; returns errno. */
  rename(from: string, to: string): number;
  /** Writes `data` to `fd`; returns errno. */
  write(fd: number, data: string): number;
  /** Reads up to `len` bytes from `fd`. */
  read(fd: number, len: number): string;
  /** Whether the host files outside the sandbox are as they were. */
  outsideUntouched(): void;
}

async function sandbox(): Promise<Sandbox> {
  const root = await Deno.makeTempDir({ prefix: "wasmplug_wasi_" });
  await Deno.writeTextFile(`${root}/outside.txt`, SECRET);
  await Deno.mkdir(`${root}/outside`);
  await Deno.writeTextFile(`${root}/outside/secret.txt`, SECRET);
  await Deno.mkdir(`${root}/sandbox/sub`, { recursive: true });
  await Deno.writeTextFile(`${root}/sandbox/hello.txt`, "hello, sandbox\n");
  await Deno.writeTextFile(`${root}/sandbox/sub/inner.txt`, "inner\n");
  await Deno.symlink("sub/inner.txt", `${root}/sandbox/link-inside`);
  await Deno.symlink("../outside.txt", `${root}/sandbox/escape-file`);
  await Deno.symlink(`${root}/outside`, `${root}/sandbox/escape-dir`);

  const scratch = new Scratch();
  const wasi = new WasiPreview1({ preopens: { "/sandbox": `${root}/sandbox` }, fileSystem: true });
  const imports = wasi.imports(() => scratch.memory);
  function call(name: string, ...args: (number | bigint)[]): number {
    const fn = imports[name];
    assert.ok(fn, `no import ${name}`);
    return fn(...args);
  }
  return {
    root,
    scratch,
    wasi,
    call,
    open(path, { oflags = 0, rights = FD_READ, lookup = FOLLOW, fdflags = 0, dir = PREOPEN } = {}) {
      const [ptr, len] = scratch.put(path);
      const fdPtr = scratch.alloc(4);
      const errno = call("path_open", dir, lookup, ptr, len, oflags, rights, 0n, fdflags, fdPtr);
      return [errno, errno === E.SUCCESS ? scratch.u32(fdPtr) : -1];
    },
    onPath(name, path, dir = PREOPEN) {
      return call(name, dir, ...scratch.put(path));
    },
    rename(from, to) {
      return call("path_rename", PREOPEN, ...scratch.put(from), PREOPEN, ...scratch.put(to));
    },
    write(fd, data) {
      return call("fd_write", fd, scratch.iovecs(scratch.put(data)), 1, scratch.alloc(4));
    },
    read(fd, len) {
      const buf = scratch.alloc(len);
      const nread = scratch.alloc(4);
      assert.equal(call("fd_read", fd, scratch.iovecs([buf, len]), 1, nread), E.SUCCESS);
      return scratch.text(buf, scratch.u32(nread));
    },
    outsideUntouched() {
      assert.equal(Deno.readTextFileSync(`${root}/outside.txt`), SECRET);
      assert.deepEqual([...Deno.readDirSync(`${root}/outside`)].map((e) => e.name), ["secret.txt"]);
      assert.equal(Deno.readTextFileSync(`${root}/outside/secret.txt`), SECRET);
      const top = [...Deno.readDirSync(root)].map((e) => e.name).sort();
      assert.deepEqual(top, ["outside", "outside.txt", "sandbox"]);
    },
    async [Symbol.asyncDispose]() {
      wasi.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("WasiPreview1 exposes the preopens to fd_prestat_*", TEMP_DIRS, async () => {
  await using s = await sandbox();
  const prestat = s.scratch.alloc(8);
  assert.equal(s.call("fd_prestat_get", PREOPEN, prestat), E.SUCCESS);
  assert.equal(s.scratch.u8(prestat), 0, "a directory");
  assert.equal(s.scratch.u32(prestat + 4), "/sandbox".length);
  const name = s.scratch.alloc(8);
  assert.equal(s.call("fd_prestat_dir_name", PREOPEN, name, 8), E.SUCCESS);
  assert.equal(s.scratch.text(name, 8), "/sandbox");
  assert.equal(s.call("fd_prestat_dir_name", PREOPEN, name, 3), 37, "ENAMETOOLONG");
  assert.equal(s.call("fd_prestat_get", PREOPEN + 1, prestat), E.BADF, "ends the list");
  const stat = s.scratch.alloc(24);
  assert.equal(s.call("fd_fdstat_get", PREOPEN, stat), E.SUCCESS);
  assert.equal(s.scratch.u8(stat), 3, "directory");
  assert.equal(s.scratch.u64(stat + 16) & (FD_READ | FD_WRITE), FD_READ | FD_WRITE, "inheritable");
});

Deno.test(
  "WasiPreview1 reads, writes, seeks and stats files in a preopen",
  TEMP_DIRS,
  async (t) => {
    await using s = await sandbox();
    const { scratch, call } = s;

    await t.step("read a file, then seek and tell", () => {
      const [errno, fd] = s.open("hello.txt");
      assert.equal(errno, E.SUCCESS);
      assert.equal(s.read(fd, 5), "hello");
      const pos = scratch.alloc(8);
      assert.equal(call("fd_tell", fd, pos), E.SUCCESS);
      assert.equal(scratch.u64(pos), 5n);
      assert.equal(call("fd_seek", fd, -8n, 2, pos), E.SUCCESS, "8 bytes before the end");
      assert.equal(scratch.u64(pos), 7n);
      assert.equal(s.read(fd, 100), "sandbox\n");
      assert.equal(call("fd_seek", fd, -1n, 0, pos), E.INVAL);
      assert.equal(call("fd_seek", fd, 0n, 7, pos), E.INVAL, "bad whence");
      assert.equal(s.write(fd, "x"), E.BADF, "opened read-only");
      const stat = scratch.alloc(64);
      assert.equal(call("fd_filestat_get", fd, stat), E.SUCCESS);
      assert.equal(scratch.u8(stat + 16), 4, "regular file");
      assert.equal(scratch.u64(stat + 32), 15n, "size");
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.equal(call("fd_close", fd), E.BADF);
    });

    await t.step("a read-only file: no right to resize, and poll counts what is left", () => {
      const [, fd] = s.open("hello.txt");
      const stat = scratch.alloc(24);
      assert.equal(call("fd_fdstat_get", fd, stat), E.SUCCESS);
      const FD_FILESTAT_SET_SIZE = 1n << 22n;
      assert.equal(scratch.u64(stat + 8) & (FD_WRITE | FD_FILESTAT_SET_SIZE), 0n);
      assert.equal(call("fd_filestat_set_size", fd, 0n), E.BADF);
      assert.equal(s.read(fd, 5), "hello");
      // One FD_READ subscription on the file: 10 of its 15 bytes are left to read.
      const sub = scratch.alloc(48);
      scratch.view.setBigUint64(sub, 9n, true);
      scratch.view.setUint8(sub + 8, 1);
      scratch.view.setUint32(sub + 16, fd, true);
      const event = scratch.alloc(32);
      const nevents = scratch.alloc(4);
      assert.equal(call("poll_oneoff", sub, event, 1, nevents), E.SUCCESS);
      assert.equal(scratch.u32(nevents), 1);
      assert.equal(scratch.u16(event + 8), E.SUCCESS);
      assert.equal(scratch.u64(event + 16), 10n, "bytes ready");
      assert.equal(call("fd_close", fd), E.SUCCESS);
    });

    await t.step("create, write, append, truncate and read back", () => {
      const [errno, fd] = s.open("new.txt", {
        oflags: O_CREAT | O_EXCL,
        rights: FD_READ | FD_WRITE,
      });
      assert.equal(errno, E.SUCCESS);
      assert.equal(s.write(fd, "one\n"), E.SUCCESS);
      assert.equal(call("fd_fdstat_set_flags", fd, 1), E.SUCCESS, "append");
      assert.equal(call("fd_seek", fd, 0n, 0, scratch.alloc(8)), E.SUCCESS);
      assert.equal(s.write(fd, "two\n"), E.SUCCESS);
      assert.equal(call("fd_sync", fd), E.SUCCESS);
      assert.equal(call("fd_datasync", fd), E.SUCCESS);
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/new.txt`), "one\ntwo\n");
      assert.equal(s.open("new.txt", { oflags: O_CREAT | O_EXCL, rights: FD_WRITE })[0], E.EXIST);

      const [, again] = s.open("new.txt", { oflags: O_TRUNC, rights: FD_WRITE });
      assert.equal(s.write(again, "3"), E.SUCCESS);
      assert.equal(call("fd_close", again), E.SUCCESS);
      assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/new.txt`), "3");
    });

    await t.step("pread and pwrite keep the position", () => {
      const [, fd] = s.open("hello.txt", { rights: FD_READ | FD_WRITE });
      const buf = scratch.alloc(7);
      const n = scratch.alloc(4);
      assert.equal(call("fd_pread", fd, scratch.iovecs([buf, 7]), 1, 7n, n), E.SUCCESS);
      assert.equal(scratch.text(buf, scratch.u32(n)), "sandbox");
      assert.equal(call("fd_pwrite", fd, scratch.iovecs(scratch.put("H")), 1, 0n, n), E.SUCCESS);
      assert.equal(s.read(fd, 5), "Hello", "still at 0");
      assert.equal(call("fd_filestat_set_size", fd, 5n), E.SUCCESS);
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/hello.txt`), "Hello");
    });

    await t.step("pread and pwrite past the largest file: end of file, EFBIG, as on Linux", () => {
      // Where the file system refuses to seek (ext4 past 16 TiB), the call failed with EINVAL;
      // tmpfs seeks that far, and Linux's own answers come through.
      const [, fd] = s.open("hello.txt", { rights: FD_READ | FD_WRITE });
      const buf = scratch.alloc(4);
      const n = scratch.alloc(4);
      const far = 1n << 62n;
      using probe = Deno.openSync(`${s.root}/sandbox/hello.txt`);
      const refusesSeek = (() => {
        try {
          probe.seekSync(far, Deno.SeekMode.Start);
          return false;
        } catch {
          return true;
        }
      })();
      const one = scratch.iovecs(scratch.put("x"));
      if (refusesSeek) {
        assert.equal(call("fd_pread", fd, scratch.iovecs([buf, 4]), 1, far, n), E.SUCCESS);
        assert.equal(scratch.u32(n), 0);
        assert.equal(call("fd_pwrite", fd, one, 1, far, n), 22, "EFBIG");
        // Nothing to write fits anywhere (it was EFBIG).
        assert.equal(call("fd_pwrite", fd, scratch.iovecs([buf, 0]), 1, far, n), E.SUCCESS);
        assert.equal(scratch.u32(n), 0);
      }
      assert.equal(call("fd_pwrite", fd, one, 1, 1n << 63n, n), E.INVAL, "a negative off_t");
      // A range past the largest off_t is EINVAL whatever the file system (it read 0, wrote EFBIG).
      const last = (1n << 63n) - 1n;
      assert.equal(call("fd_pread", fd, scratch.iovecs([buf, 4]), 1, last, n), E.INVAL);
      assert.equal(call("fd_pwrite", fd, one, 1, last, n), E.INVAL);
      assert.equal(s.read(fd, 5), "Hello", "still at 0");
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.equal(Deno.statSync(`${s.root}/sandbox/hello.txt`).size, 5);
    });

    await t.step("pwrite on a file opened to append appends, as on Linux", () => {
      const [, fd] = s.open("log.txt", {
        oflags: O_CREAT,
        rights: FD_READ | FD_WRITE,
        fdflags: 1, // APPEND
      });
      assert.equal(s.write(fd, "hello"), E.SUCCESS);
      const n = scratch.alloc(4);
      // It overwrote the start ("Pello") before.
      assert.equal(call("fd_pwrite", fd, scratch.iovecs(scratch.put("P")), 1, 0n, n), E.SUCCESS);
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/log.txt`), "helloP");
    });

    await t.step("O_CREAT|O_EXCL on a symlink, even a dangling one: EEXIST, as POSIX says", () => {
      // Followed, the dangling link was ENOENT; not followed, ELOOP: lock files failed.
      Deno.symlinkSync("missing-target", `${s.root}/sandbox/lock`);
      try {
        for (const lookup of [FOLLOW, 0]) {
          const exclusive = { oflags: O_CREAT | O_EXCL, rights: FD_WRITE, lookup };
          assert.equal(s.open("lock", exclusive)[0], E.EXIST);
          assert.equal(s.open("link-inside", exclusive)[0], E.EXIST);
        }
        assert.throws(() => Deno.lstatSync(`${s.root}/sandbox/missing-target`));
      } finally {
        Deno.removeSync(`${s.root}/sandbox/lock`);
      }
    });

    await t.step("flags wasmplug does not know are EINVAL, not kept", () => {
      // path_open kept any fdflags (fd_fdstat_get then said 0xffff), and a negative i32
      // passed fd_fdstat_set_flags's check.
      assert.equal(s.open("hello.txt", { fdflags: 0x20 })[0], E.INVAL);
      assert.equal(s.open("hello.txt", { fdflags: 0xffff })[0], E.INVAL);
      assert.equal(s.open("hello.txt", { oflags: 0x10 })[0], E.INVAL);
      const [errno, fd] = s.open("hello.txt");
      assert.equal(errno, E.SUCCESS);
      assert.equal(call("fd_fdstat_set_flags", fd, -1), E.INVAL);
      assert.equal(call("fd_fdstat_set_flags", fd, 0x20), E.INVAL);
      assert.equal(call("fd_close", fd), E.SUCCESS);
    });

    await t.step("O_CREAT of a name ending in / makes no file: EISDIR, as on Linux", () => {
      // It made a regular file "newf" before.
      assert.equal(s.open("newf/", { oflags: O_CREAT, rights: FD_WRITE })[0], E.ISDIR);
      assert.throws(() => Deno.statSync(`${s.root}/sandbox/newf`), Deno.errors.NotFound);
    });

    await t.step("missing files, directories as files, files as directories", () => {
      assert.equal(s.open("missing.txt")[0], E.NOENT);
      assert.equal(s.open("hello.txt", { oflags: O_DIRECTORY })[0], E.NOTDIR);
      assert.equal(s.open("hello.txt/")[0], E.NOTDIR);
      assert.equal(s.open("sub", { rights: FD_WRITE })[0], E.ISDIR);
      const [errno, dir] = s.open("sub", { oflags: O_DIRECTORY });
      assert.equal(errno, E.SUCCESS);
      assert.equal(s.write(dir, "x"), E.ISDIR);
      assert.equal(
        call("fd_read", dir, scratch.iovecs([scratch.alloc(1), 1]), 1, scratch.alloc(4)),
        E.ISDIR,
      );
      const [inner, file] = s.open("inner.txt", { dir });
      assert.equal(inner, E.SUCCESS, "relative to an opened directory");
      assert.equal(s.read(file, 100), "inner\n");
      assert.equal(call("fd_close", file), E.SUCCESS);
      assert.equal(call("fd_close", dir), E.SUCCESS);
    });

    await t.step("a path's leading U+FEFF is part of its name", () => {
      // Dropped as a byte order mark, "\ufeffhello.txt" opened hello.txt.
      assert.equal(s.open("\ufeffhello.txt")[0], E.NOENT);
      const [created, fd] = s.open("\ufeffmarked.txt", { oflags: O_CREAT, rights: FD_WRITE });
      assert.equal(created, E.SUCCESS);
      assert.equal(call("fd_close", fd), E.SUCCESS);
      assert.ok(Deno.statSync(`${s.root}/sandbox/\ufeffmarked.txt`).isFile);
      assert.equal(s.onPath("path_unlink_file", "\ufeffmarked.txt"), E.SUCCESS);
    });

    await t.step("path_filestat_get follows symlinks only when asked", () => {
      const stat = scratch.alloc(64);
      const [ptr, len] = scratch.put("link-inside");
      assert.equal(call("path_filestat_get", PREOPEN, FOLLOW, ptr, len, stat), E.SUCCESS);
      assert.equal(scratch.u8(stat + 16), 4);
      assert.equal(scratch.u64(stat + 32), 6n);
      assert.equal(call("path_filestat_get", PREOPEN, 0, ptr, len, stat), E.SUCCESS);
      assert.equal(scratch.u8(stat + 16), 7, "symbolic link");
      const [missing, missingLen] = scratch.put("nope");
      assert.equal(call("path_filestat_get", PREOPEN, 0, missing, missingLen, stat), E.NOENT);
      const target = scratch.alloc(32);
      const used = scratch.alloc(4);
      assert.equal(call("path_readlink", PREOPEN, ptr, len, target, 32, used), E.SUCCESS);
      assert.equal(scratch.text(target, scratch.u32(used)), "sub/inner.txt");
    });
  },
);

Deno.test("WasiPreview1 creates, lists, renames and removes entries", TEMP_DIRS, async (t) => {
  await using s = await sandbox();
  const { scratch, call } = s;

  await t.step("mkdir, rename, unlink, rmdir", () => {
    assert.equal(s.onPath("path_create_directory", "made"), E.SUCCESS);
    assert.equal(s.onPath("path_create_directory", "made"), E.EXIST);
    assert.ok(Deno.statSync(`${s.root}/sandbox/made`).isDirectory);
    const [from, fromLen] = scratch.put("hello.txt");
    const [to, toLen] = scratch.put("made/moved.txt");
    assert.equal(call("path_rename", PREOPEN, from, fromLen, PREOPEN, to, toLen), E.SUCCESS);
    assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/made/moved.txt`), "hello, sandbox\n");
    assert.equal(s.onPath("path_remove_directory", "made"), E.NOTEMPTY);
    assert.equal(s.onPath("path_unlink_file", "made"), E.ISDIR);
    assert.equal(s.onPath("path_remove_directory", "made/moved.txt"), E.NOTDIR);
    assert.equal(s.onPath("path_unlink_file", "made/moved.txt"), E.SUCCESS);
    assert.equal(s.onPath("path_unlink_file", "made/moved.txt"), E.NOENT);
    assert.equal(s.onPath("path_remove_directory", "made"), E.SUCCESS);
  });

  await t.step("a last component . or .. is never removed or renamed, as on Linux", () => {
    // rmdir("keep/.") removed keep, and s.rename("keep/.", …) moved it: the names resolve there.
    Deno.mkdirSync(`${s.root}/sandbox/keep/inner`, { recursive: true });
    assert.equal(s.onPath("path_remove_directory", "."), E.INVAL, "the preopen itself");
    assert.equal(s.onPath("path_remove_directory", "keep/inner/."), E.INVAL);
    assert.equal(s.onPath("path_remove_directory", "keep/inner/./"), E.INVAL);
    assert.equal(s.onPath("path_remove_directory", "keep/inner/.."), E.NOTEMPTY);
    assert.equal(s.rename("keep/inner/.", "moved"), E.BUSY);
    assert.equal(s.rename("keep/inner", "keep/.."), E.BUSY);
    assert.ok(Deno.statSync(`${s.root}/sandbox/keep/inner`).isDirectory);
    // A last . names the directory before it: never a file, never one to make.
    // unlink("file/.") deleted the file, O_TRUNC emptied it, mkdir("new/.") made new.
    Deno.writeTextFileSync(`${s.root}/sandbox/keep/file`, "kept");
    assert.equal(s.onPath("path_unlink_file", "keep/file/."), E.NOTDIR);
    assert.equal(s.onPath("path_unlink_file", "keep/inner/."), E.ISDIR);
    assert.equal(s.open("keep/file/.", { oflags: O_TRUNC, rights: FD_WRITE })[0], E.NOTDIR);
    assert.equal(s.open("keep/new/.", { oflags: O_CREAT, rights: FD_WRITE })[0], E.NOENT);
    assert.equal(s.onPath("path_create_directory", "keep/new/."), E.NOENT);
    assert.equal(s.onPath("path_create_directory", "keep/file/."), E.NOTDIR);
    assert.equal(s.rename("keep/file", "keep/new/."), E.NOENT);
    // O_CREAT on a directory opens nothing (it opened the directory).
    assert.equal(s.open("keep/inner", { oflags: O_CREAT })[0], E.ISDIR);
    assert.equal(s.open("keep/inner/.", { oflags: O_CREAT })[0], E.ISDIR);
    assert.equal(s.open("keep/inner/", { oflags: O_CREAT | O_EXCL })[0], E.ISDIR);
    assert.equal(s.open("keep/inner", { oflags: O_CREAT | O_EXCL })[0], E.EXIST);
    assert.equal(s.open("keep/inner/.", { oflags: O_CREAT | O_EXCL })[0], E.EXIST);
    assert.equal(s.open("keep/inner", { oflags: O_CREAT | O_DIRECTORY })[0], E.INVAL);
    assert.equal(s.open("keep/file", { oflags: O_CREAT | O_DIRECTORY })[0], E.INVAL);
    assert.equal(s.open("keep/inner/.", { oflags: O_DIRECTORY })[0], E.SUCCESS);
    assert.equal(Deno.readTextFileSync(`${s.root}/sandbox/keep/file`), "kept");
    assert.deepEqual([...Deno.readDirSync(`${s.root}/sandbox/keep`)].map((e) => e.name).sort(), [
      "file",
      "inner",
    ]);
    assert.equal(s.onPath("path_unlink_file", "keep/file"), E.SUCCESS);
    assert.equal(s.onPath("path_remove_directory", "keep/inner"), E.SUCCESS);
    assert.equal(s.onPath("path_remove_directory", "keep"), E.SUCCESS);
  });

  await t.step("a trailing / on a symlink names a directory, not the entry: ENOTDIR", () => {
    // rmdir("link/") removed the directory the link names, s.rename("link/", …) moved it, and
    // s.rename("file", "new/") made a file: Linux refuses all three.
    Deno.mkdirSync(`${s.root}/sandbox/empty`);
    Deno.symlinkSync("empty", `${s.root}/sandbox/to-empty`);
    assert.equal(s.onPath("path_remove_directory", "to-empty/"), E.NOTDIR);
    assert.equal(s.onPath("path_unlink_file", "to-empty/"), E.NOTDIR);
    assert.equal(s.rename("to-empty/", "moved"), E.NOTDIR);
    assert.equal(s.rename("sub/inner.txt", "new/"), E.NOTDIR);
    assert.ok(Deno.statSync(`${s.root}/sandbox/empty`).isDirectory);
    assert.ok(Deno.lstatSync(`${s.root}/sandbox/to-empty`).isSymlink);
    assert.ok(Deno.statSync(`${s.root}/sandbox/sub/inner.txt`).isFile);
    assert.throws(() => Deno.lstatSync(`${s.root}/sandbox/new`), Deno.errors.NotFound);
    // O_CREAT|O_DIRECTORY creates nothing (it said ENOENT).
    assert.equal(s.open("nothing-yet", { oflags: O_CREAT | O_DIRECTORY })[0], E.INVAL);
    // Without the slash, the link itself goes; a directory may move to a name with one.
    assert.equal(s.onPath("path_unlink_file", "to-empty"), E.SUCCESS);
    assert.equal(s.rename("empty", "emptied/"), E.SUCCESS);
    assert.equal(s.onPath("path_remove_directory", "emptied"), E.SUCCESS);
  });

  await t.step("fd_readdir pages through entries with cookies", () => {
    const [, dir] = s.open(".", { oflags: O_DIRECTORY });
    const names: string[] = [];
    const types: number[] = [];
    let cookie = 0n;
    // A buffer too small for two entries forces one call per entry.
    const buf = scratch.alloc(40);
    const used = scratch.alloc(4);
    for (let calls = 0; calls < 20; calls++) {
      assert.equal(call("fd_readdir", dir, buf, 40, cookie, used), E.SUCCESS);
      const n = scratch.u32(used);
      if (n === 0) break;
      const nameLen = scratch.u32(buf + 16);
      if (24 + nameLen <= n) {
        names.push(scratch.text(buf + 24, nameLen));
        types.push(scratch.u8(buf + 20));
      } else {
        assert.equal(n, 40, "a cut entry fills the buffer");
        break;
      }
      cookie = scratch.u64(buf);
    }
    assert.deepEqual(names, [".", "..", "escape-dir", "escape-file", "link-inside", "sub"]);
    assert.deepEqual(types, [3, 3, 7, 7, 7, 3]);
    assert.equal(call("fd_readdir", dir, buf, 40, 1000n, used), E.SUCCESS);
    assert.equal(scratch.u32(used), 0, "past the end");
    assert.equal(call("fd_close", dir), E.SUCCESS);
    assert.equal(call("fd_readdir", 1, buf, 40, 0n, used), E.NOTDIR);
  });
});

Deno.test("WasiPreview1 confines paths to the preopen", TEMP_DIRS, async (t) => {
  await using s = await sandbox();
  const { scratch, call } = s;
  const create = { oflags: O_CREAT | O_TRUNC, rights: FD_READ | FD_WRITE };

  await t.step("`..` out of the preopen", () => {
    assert.equal(s.open("../outside.txt")[0], E.NOTCAPABLE);
    assert.equal(s.open("../outside.txt", create)[0], E.NOTCAPABLE);
    assert.equal(s.open("sub/../../outside.txt", create)[0], E.NOTCAPABLE);
    assert.equal(s.open("..", { oflags: O_DIRECTORY })[0], E.NOTCAPABLE);
    assert.equal(s.onPath("path_unlink_file", "../outside.txt"), E.NOTCAPABLE);
    assert.equal(s.onPath("path_create_directory", "../made"), E.NOTCAPABLE);
    assert.equal(s.onPath("path_remove_directory", "../outside"), E.NOTCAPABLE);
    s.outsideUntouched();
  });

  await t.step("absolute paths", () => {
    assert.equal(s.open(`${s.root}/outside.txt`)[0], E.NOTCAPABLE);
    assert.equal(s.open("/etc/hostname")[0], E.NOTCAPABLE);
  });

  await t.step("`..` inside the preopen resolves lexically", () => {
    const [errno, fd] = s.open("sub/../hello.txt");
    assert.equal(errno, E.SUCCESS);
    assert.equal(s.read(fd, 5), "hello");
    assert.equal(call("fd_close", fd), E.SUCCESS);
  });

  await t.step("an opened directory is a boundary too", () => {
    const [, sub] = s.open("sub", { oflags: O_DIRECTORY });
    assert.equal(s.open("../hello.txt", { dir: sub })[0], E.NOTCAPABLE);
    assert.equal(call("fd_close", sub), E.SUCCESS);
  });

  await t.step("a symlink to a file outside", () => {
    assert.equal(s.open("escape-file")[0], E.NOTCAPABLE);
    assert.equal(s.open("escape-file", create)[0], E.NOTCAPABLE);
    assert.equal(s.open("escape-file", { lookup: 0 })[0], E.LOOP, "O_NOFOLLOW on a link");
    const [ptr, len] = scratch.put("escape-file");
    const stat = scratch.alloc(64);
    assert.equal(call("path_filestat_get", PREOPEN, FOLLOW, ptr, len, stat), E.NOTCAPABLE);
    assert.equal(
      call("path_filestat_set_times", PREOPEN, 0, ptr, len, 0n, 0n, 2 | 8),
      58,
      "ENOTSUP",
    );
    s.outsideUntouched();
  });

  await t.step("a symlink to a directory outside", () => {
    assert.equal(s.open("escape-dir/secret.txt")[0], E.NOTCAPABLE);
    assert.equal(s.open("escape-dir/new.txt", create)[0], E.NOTCAPABLE);
    assert.equal(s.open("escape-dir", { oflags: O_DIRECTORY })[0], E.NOTCAPABLE);
    assert.equal(s.open("escape-dir/", { lookup: 0 })[0], E.NOTCAPABLE, "a trailing / follows");
    assert.equal(s.onPath("path_create_directory", "escape-dir/made"), E.NOTCAPABLE);
    assert.equal(s.onPath("path_unlink_file", "escape-dir/secret.txt"), E.NOTCAPABLE);
    const [from, fromLen] = scratch.put("escape-dir/secret.txt");
    const [to, toLen] = scratch.put("stolen.txt");
    assert.equal(call("path_rename", PREOPEN, from, fromLen, PREOPEN, to, toLen), E.NOTCAPABLE);
    assert.equal(call("path_rename", PREOPEN, to, toLen, PREOPEN, from, fromLen), E.NOENT);
    const [sub, subLen] = scratch.put("sub/inner.txt");
    assert.equal(call("path_rename", PREOPEN, sub, subLen, PREOPEN, from, fromLen), E.NOTCAPABLE);
    s.outsideUntouched();
  });

  await t.step("removing an escaping link removes the link, not its target", () => {
    assert.equal(s.onPath("path_unlink_file", "escape-file"), E.SUCCESS);
    assert.throws(() => Deno.lstatSync(`${s.root}/sandbox/escape-file`), Deno.errors.NotFound);
    s.outsideUntouched();
  });

  await t.step("a symlink to a file inside", () => {
    const [errno, fd] = s.open("link-inside");
    assert.equal(errno, E.SUCCESS);
    assert.equal(s.read(fd, 100), "inner\n");
    assert.equal(call("fd_close", fd), E.SUCCESS);
  });

  await t.step("the preopened directory replaced by a symlink after start", () => {
    Deno.renameSync(`${s.root}/sandbox`, `${s.root}/moved`);
    Deno.symlinkSync(`${s.root}/outside`, `${s.root}/sandbox`);
    try {
      assert.equal(s.open("secret.txt")[0], E.NOTCAPABLE);
    } finally {
      Deno.removeSync(`${s.root}/sandbox`);
      Deno.renameSync(`${s.root}/moved`, `${s.root}/sandbox`);
    }
    s.outsideUntouched();
  });
});

Deno.test(
  "WasiPreview1 without the file system capability exposes no directory",
  TEMP_DIRS,
  async () => {
    await using s = await sandbox();
    using wasi = new WasiPreview1({ preopens: { "/sandbox": `${s.root}/sandbox` } });
    const scratch = new Scratch();
    const imports = wasi.imports(() => scratch.memory);
    assert.equal(imports.fd_prestat_get!(PREOPEN, scratch.alloc(8)), E.BADF);
    const [ptr, len] = scratch.put("hello.txt");
    const fdPtr = scratch.alloc(4);
    assert.equal(imports.path_open!(PREOPEN, 1, ptr, len, 0, FD_READ, 0n, 0, fdPtr), E.BADF);
  },
);

Deno.test("WasiPreview1 checks preopens and limits open descriptors", TEMP_DIRS, async () => {
  await using s = await sandbox();
  assert.throws(
    () => new WasiPreview1({ preopens: { "/x": `${s.root}/outside.txt` }, fileSystem: true }),
    TypeError,
  );
  using wasi = new WasiPreview1({
    preopens: { "/sandbox": `${s.root}/sandbox` },
    fileSystem: true,
    maxOpenFiles: 5,
  });
  const scratch = new Scratch();
  const imports = wasi.imports(() => scratch.memory);
  const [ptr, len] = scratch.put("hello.txt");
  const fdPtr = scratch.alloc(4);
  assert.equal(imports.path_open!(PREOPEN, 1, ptr, len, 0, FD_READ, 0n, 0, fdPtr), E.SUCCESS);
  assert.equal(imports.path_open!(PREOPEN, 1, ptr, len, 0, FD_READ, 0n, 0, fdPtr), E.MFILE);
  // A path_open whose result pointer is bad opens nothing (so leaks nothing).
  assert.equal(imports.fd_close!(4), E.SUCCESS);
  assert.equal(imports.path_open!(PREOPEN, 1, ptr, len, 1, FD_WRITE, 0n, 0, -4), E.FAULT);
  assert.equal(imports.fd_close!(4), E.BADF);
});

// Laid out before the test, so the test itself can run with read/write
// permission for the sandbox only, as a plugin worker does.
const restricted = await sandbox();
globalThis.addEventListener("unload", () => Deno.removeSync(restricted.root, { recursive: true }));

Deno.test(
  "WasiPreview1 works with Deno permissions for exactly the preopen, and escapes still fail",
  {
    permissions: {
      read: [`${restricted.root}/sandbox`],
      write: [`${restricted.root}/sandbox`],
    },
  },
  () => {
    using wasi = new WasiPreview1({
      preopens: { "/sandbox": `${restricted.root}/sandbox` },
      fileSystem: true,
    });
    const scratch = new Scratch();
    const imports = wasi.imports(() => scratch.memory);
    function open(path: string, oflags = 0, rights = FD_READ): number {
      const [ptr, len] = scratch.put(path);
      return imports.path_open!(PREOPEN, FOLLOW, ptr, len, oflags, rights, 0n, 0, scratch.alloc(4));
    }
    assert.equal(open("hello.txt"), E.SUCCESS);
    assert.equal(open("made.txt", O_CREAT, FD_WRITE), E.SUCCESS);
    const used = scratch.alloc(4);
    assert.equal(imports.fd_readdir!(PREOPEN, scratch.alloc(512), 512, 0n, used), E.SUCCESS);
    assert.ok(scratch.u32(used) > 6 * 24);
    assert.equal(open("escape-file"), E.NOTCAPABLE);
    assert.equal(open("escape-dir/secret.txt"), E.NOTCAPABLE);
    assert.equal(open("../outside.txt"), E.NOTCAPABLE);
  },
);

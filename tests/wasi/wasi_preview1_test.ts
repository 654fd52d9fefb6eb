import assert from "node:assert/strict";
import { CapabilityDeniedError } from "../../mod.ts";
import { type WasiOptions, WasiPreview1 } from "../../src/wasi/wasi_preview1.ts";
import { WasiExit } from "../../src/wasi/wasi_exit.ts";
import { E, FD_WRITE, Scratch } from "./_scratch.ts";

type Call = (name: string, ...args: (number | bigint)[]) => number;

interface Setup extends Disposable {
  readonly scratch: Scratch;
  readonly wasi: WasiPreview1;
  readonly call: Call;
}

/** A WASI instance whose imports read and write a scratch memory. */
function setup(options: WasiOptions = {}): Setup {
  const scratch = new Scratch();
  const wasi = new WasiPreview1(options);
  const imports = wasi.imports(() => scratch.memory);
  return {
    scratch,
    wasi,
    call(name, ...args) {
      const fn = imports[name];
      assert.ok(fn, `no import ${name}`);
      return fn(...args);
    },
    [Symbol.dispose]: () => wasi.close(),
  };
}

const utf8 = new TextEncoder();
const text = new TextDecoder();

Deno.test("WasiPreview1.imports() provides every preview 1 function, unsupported ones as ENOSYS", {
  permissions: "none",
}, () => {
  using s = setup();
  const names = Object.keys(s.wasi.imports());
  assert.equal(names.length, 46);
  for (const name of ["path_symlink", "path_link", "proc_raise", "fd_fdstat_set_rights"]) {
    assert.equal(s.call(name, 0, 0, 0, 0, 0), E.NOSYS, name);
  }
  for (const name of ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"]) {
    assert.equal(s.call(name, 1, 0, 0, 0, 0, 0), E.NOSYS, name);
  }
  assert.equal(s.call("sched_yield"), E.SUCCESS);
});

Deno.test("WasiPreview1 passes args and environ", { permissions: "none" }, () => {
  using s = setup({ args: ["prog", "héllo", ""], env: { A: "1", EMPTY: "" } });
  const { scratch, call } = s;
  const sizes = scratch.alloc(8);
  assert.equal(call("args_sizes_get", sizes, sizes + 4), E.SUCCESS);
  assert.equal(scratch.u32(sizes), 3);
  assert.equal(scratch.u32(sizes + 4), "prog\0héllo\0\0".length + 1);
  const argv = scratch.alloc(12);
  const buf = scratch.alloc(scratch.u32(sizes + 4));
  assert.equal(call("args_get", argv, buf), E.SUCCESS);
  assert.equal(scratch.text(buf, scratch.u32(sizes + 4)), "prog\0héllo\0\0");
  assert.equal(scratch.u32(argv + 4), buf + 5);
  assert.equal(scratch.u32(argv + 8), buf + 12);

  assert.equal(call("environ_sizes_get", sizes, sizes + 4), E.SUCCESS);
  assert.equal(scratch.u32(sizes), 2);
  const envBuf = scratch.alloc(scratch.u32(sizes + 4));
  assert.equal(call("environ_get", scratch.alloc(8), envBuf), E.SUCCESS);
  assert.equal(scratch.text(envBuf, scratch.u32(sizes + 4)), "A=1\0EMPTY=\0");
});

Deno.test(
  "WasiPreview1 captures stdout and stderr up to maxOutputBytes",
  { permissions: "none" },
  () => {
    using s = setup({ maxOutputBytes: 8 });
    const { scratch, call, wasi } = s;
    const nwritten = scratch.alloc(4);
    const iovs = scratch.iovecs(scratch.put("hello "), scratch.put("world"));
    assert.equal(call("fd_write", 1, iovs, 2, nwritten), E.SUCCESS);
    assert.equal(scratch.u32(nwritten), 11, "dropped bytes still count as written");
    assert.equal(call("fd_write", 2, scratch.iovecs(scratch.put("oops")), 1, nwritten), E.SUCCESS);
    assert.equal(text.decode(wasi.stdout), "hello wo");
    assert.equal(text.decode(wasi.stderr), "oops");
    assert.equal(wasi.outputTruncated, true);
    assert.equal(call("fd_write", 0, iovs, 1, nwritten), E.BADF, "stdin is not writable");
    assert.equal(call("fd_write", 9, iovs, 1, nwritten), E.BADF);
  },
);

Deno.test("WasiPreview1 reads stdin from the given bytes, then end of file", {
  permissions: "none",
}, () => {
  using s = setup({ stdin: utf8.encode("abcdef") });
  const { scratch, call } = s;
  const nread = scratch.alloc(4);
  const a = scratch.alloc(4);
  const b = scratch.alloc(4);
  assert.equal(call("fd_read", 0, scratch.iovecs([a, 4], [b, 4]), 2, nread), E.SUCCESS);
  assert.equal(scratch.u32(nread), 6);
  assert.equal(scratch.text(a, 4) + scratch.text(b, 2), "abcdef");
  assert.equal(call("fd_read", 0, scratch.iovecs([a, 4]), 1, nread), E.SUCCESS);
  assert.equal(scratch.u32(nread), 0);
  assert.equal(call("fd_read", 1, scratch.iovecs([a, 4]), 1, nread), E.BADF, "stdout");
});

Deno.test("WasiPreview1 describes stdio and refuses to seek it", { permissions: "none" }, () => {
  using s = setup();
  const { scratch, call } = s;
  const stat = scratch.alloc(24);
  // Not a terminal (wasi-libc's isatty() wants a character device): a buffer, of unknown type.
  for (const fd of [0, 1, 2]) {
    assert.equal(call("fd_fdstat_get", fd, stat), E.SUCCESS);
    assert.equal(scratch.u8(stat), 0, `fd ${fd}: unknown filetype`);
  }
  const filestat = scratch.alloc(64);
  assert.equal(call("fd_filestat_get", 0, filestat), E.SUCCESS);
  assert.equal(scratch.u8(filestat + 16), 0, "stdin's filestat: unknown filetype");
  assert.equal(call("fd_fdstat_get", 1, stat), E.SUCCESS);
  assert.equal(scratch.u64(stat + 8) & FD_WRITE, FD_WRITE);
  assert.equal(scratch.u64(stat + 8) & (1n << 2n), 0n, "no FD_SEEK");
  assert.equal(call("fd_fdstat_set_flags", 1, 1), E.SUCCESS);
  assert.equal(call("fd_fdstat_get", 1, stat), E.SUCCESS);
  assert.equal(scratch.u16(stat + 2), 1);
  assert.equal(call("fd_seek", 1, 0n, 0, scratch.alloc(8)), E.SPIPE);
  assert.equal(call("fd_tell", 0, scratch.alloc(8)), E.SPIPE);
  assert.equal(call("fd_filestat_get", 2, scratch.alloc(64)), E.SUCCESS);
  assert.equal(call("fd_prestat_get", 3, scratch.alloc(8)), E.BADF, "no preopens");
  assert.equal(call("fd_close", 2), E.SUCCESS);
  assert.equal(call("fd_close", 2), E.BADF);
});

Deno.test("WasiPreview1 clocks tell the time", { permissions: "none" }, () => {
  using s = setup();
  const { scratch, call } = s;
  const time = scratch.alloc(8);
  assert.equal(call("clock_time_get", 0, 1000n, time), E.SUCCESS);
  const realtimeMs = Number(scratch.u64(time) / 1_000_000n);
  assert.ok(Math.abs(realtimeMs - Date.now()) < 1000, `realtime ${realtimeMs}`);
  assert.equal(call("clock_time_get", 1, 1n, time), E.SUCCESS);
  const first = scratch.u64(time);
  assert.equal(call("clock_time_get", 1, 1n, time), E.SUCCESS);
  assert.ok(scratch.u64(time) >= first, "monotonic");
  assert.equal(call("clock_res_get", 1, time), E.SUCCESS);
  assert.ok(scratch.u64(time) > 0n);
  assert.equal(call("clock_time_get", 2, 1n, time), E.SUCCESS, "process CPU time");
  assert.equal(call("clock_time_get", 9, 1n, time), E.INVAL);
  assert.equal(call("clock_res_get", 9, time), E.INVAL);
});

Deno.test("WasiPreview1 random_get needs the random capability", { permissions: "none" }, () => {
  {
    using s = setup({ random: true });
    const [ptr] = s.scratch.put(new Uint8Array(100_000));
    assert.equal(s.call("random_get", ptr, 100_000), E.SUCCESS);
    const bytes = s.scratch.bytes(ptr, 100_000);
    assert.ok(bytes.subarray(0, 64).some((b) => b !== 0));
    assert.ok(
      bytes.subarray(99_936).some((b) => b !== 0),
      "past the 64 KiB chunk of getRandomValues",
    );
  }
  using s = setup();
  assert.throws(() => s.call("random_get", 1024, 16), (err: unknown) => {
    assert.ok(err instanceof CapabilityDeniedError);
    assert.equal(err.capability, "random");
    return true;
  });
});

Deno.test("WasiPreview1 proc_exit unwinds with WasiExit and records the code", {
  permissions: "none",
}, () => {
  using s = setup();
  assert.throws(
    () => s.call("proc_exit", 7),
    (err: unknown) => err instanceof WasiExit && err.code === 7,
  );
  assert.equal(s.wasi.exitCode, 7);
});

Deno.test("WasiPreview1 poll_oneoff sleeps on clocks and reports ready descriptors", {
  permissions: "none",
}, async (t) => {
  const slept: number[] = [];
  using s = setup({ stdin: utf8.encode("xyz"), sleep: (ms) => void slept.push(ms) });
  const { scratch, call } = s;
  /** Writes subscriptions; clocks are `[userdata, timeoutNs, absolute]`, fds `[userdata, fd]`. */
  function subscriptions(
    ...subs: ({ clock: [bigint, bigint, boolean] } | { read: [bigint, number] })[]
  ) {
    const ptr = scratch.alloc(subs.length * 48);
    subs.forEach((sub, i) => {
      const at = ptr + i * 48;
      if ("clock" in sub) {
        scratch.view.setBigUint64(at, sub.clock[0], true);
        scratch.view.setUint8(at + 8, 0);
        scratch.view.setUint32(at + 16, 1, true); // monotonic
        scratch.view.setBigUint64(at + 24, sub.clock[1], true);
        scratch.view.setUint16(at + 40, sub.clock[2] ? 1 : 0, true);
      } else {
        scratch.view.setBigUint64(at, sub.read[0], true);
        scratch.view.setUint8(at + 8, 1);
        scratch.view.setUint32(at + 16, sub.read[1], true);
      }
    });
    return ptr;
  }
  const events = scratch.alloc(4 * 32);
  const nevents = scratch.alloc(4);

  await t.step("the nearest of two clocks fires after sleeping", () => {
    const subs = subscriptions({ clock: [1n, 50_000_000n, false] }, {
      clock: [2n, 20_000_000n, false],
    });
    assert.equal(call("poll_oneoff", subs, events, 2, nevents), E.SUCCESS);
    assert.deepEqual(slept, [20]);
    assert.equal(scratch.u32(nevents), 1);
    assert.equal(scratch.u64(events), 2n);
    assert.equal(scratch.u8(events + 10), 0, "clock event");
  });

  await t.step("a clock already due and a readable stdin return without sleeping", () => {
    slept.length = 0;
    const subs = subscriptions({ clock: [3n, 1n, true] }, { read: [4n, 0] }, { read: [5n, 42] });
    assert.equal(call("poll_oneoff", subs, events, 3, nevents), E.SUCCESS);
    assert.deepEqual(slept, []);
    assert.equal(scratch.u32(nevents), 3);
    assert.equal(scratch.u64(events + 32), 4n);
    assert.equal(scratch.u64(events + 32 + 16), 3n, "3 bytes of stdin ready");
    assert.equal(scratch.u64(events + 64), 5n);
    assert.equal(scratch.u16(events + 64 + 8), E.BADF);
  });

  await t.step("no subscriptions is EINVAL", () => {
    assert.equal(call("poll_oneoff", events, events, 0, nevents), E.INVAL);
  });
});

Deno.test("WasiPreview1 returns EFAULT for pointers outside memory and does nothing", {
  permissions: "none",
}, async (t) => {
  using s = setup({ stdin: utf8.encode("input"), args: ["a"], random: true });
  const { scratch, call, wasi } = s;
  const end = scratch.size;

  await t.step("an iovec array past the end", () => {
    assert.equal(call("fd_write", 1, end - 4, 1, scratch.alloc(4)), E.FAULT);
  });
  await t.step("an iovec whose buffer is past the end, after a good one", () => {
    const iovs = scratch.iovecs(scratch.put("kept?"), [end - 2, 4]);
    assert.equal(call("fd_write", 1, iovs, 2, scratch.alloc(4)), E.FAULT);
    assert.equal(wasi.stdout.length, 0, "nothing was written");
  });
  await t.step("a result pointer past the end: stdin is not consumed", () => {
    const buf = scratch.alloc(8);
    assert.equal(call("fd_read", 0, scratch.iovecs([buf, 8]), 1, end), E.FAULT);
    const nread = scratch.alloc(4);
    assert.equal(call("fd_read", 0, scratch.iovecs([buf, 8]), 1, nread), E.SUCCESS);
    assert.equal(scratch.text(buf, scratch.u32(nread)), "input");
  });
  await t.step("a negative i32 is a pointer near 4 GiB", () => {
    assert.equal(call("args_sizes_get", -4, scratch.alloc(4)), E.FAULT);
    assert.equal(call("clock_time_get", 0, 0n, -1), E.FAULT);
    assert.equal(call("random_get", -1, 2), E.FAULT);
  });
  await t.step("huge counts", () => {
    assert.equal(call("fd_write", 1, 0, 0x7fff_ffff, scratch.alloc(4)), E.FAULT);
    assert.equal(call("poll_oneoff", 0, 0, 0x1_0000, scratch.alloc(4)), E.FAULT);
    assert.equal(call("args_get", end - 2, 0), E.FAULT);
  });
  await t.step("no memory at all", () => {
    using bare = new WasiPreview1();
    const imports = bare.imports(() => undefined);
    assert.equal(imports.fd_write!(1, 0, 0, 0), E.FAULT);
  });
});

Deno.test("WasiPreview1 validates its options", { permissions: "none" }, () => {
  assert.throws(() => new WasiPreview1({ maxOutputBytes: -1 }), RangeError);
  assert.throws(() => new WasiPreview1({ maxOpenFiles: 2 }), RangeError);
  assert.throws(() => new WasiPreview1({ env: { "A=B": "1" } }), TypeError);
  assert.throws(() => new WasiPreview1({ args: ["a\0b"] }), TypeError);
  // Without the file system capability the preopens are not even looked at.
  using _ = new WasiPreview1({ preopens: { "/data": "/no/such/dir" } });
});

Deno.test(
  "WasiPreview1.start() returns the exit code and needs _start",
  { permissions: "none" },
  async () => {
    // (module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
    //   (memory (export "memory") 1) (func (export "_start") i32.const 9 call 0))
    const command = Uint8Array.from(
      atob(
        "AGFzbQEAAAABCAJgAX8AYAAAAiQBFndhc2lfc25hcHNob3RfcHJldmlldzEJcHJvY19leGl0AAADAgEBBQMBAAEHEwIGbWVtb3J5AgAGX3N0YXJ0AAEKCAEGAEEJEAAL",
      ),
      (c) => c.charCodeAt(0),
    );
    using wasi = new WasiPreview1();
    const { instance } = await WebAssembly.instantiate(command, {
      wasi_snapshot_preview1: wasi.imports(),
    });
    assert.equal(wasi.exitCode, undefined);
    assert.equal(wasi.start(instance), 9);
    assert.equal(wasi.exitCode, 9);
    const reactor = await WebAssembly.instantiate(
      Uint8Array.from(atob("AGFzbQEAAAA="), (c) => c.charCodeAt(0)),
    );
    assert.throws(() => wasi.start(reactor.instance), TypeError);
    wasi.initialize(reactor.instance); // no _initialize: nothing to do
  },
);

Deno.test("WasiPreview1.initialize() runs a reactor's _initialize with the instance's memory", {
  permissions: "none",
}, async () => {
  // (func (export "_initialize") fd_write(1, iovec "init\n"))
  const reactor = Uint8Array.from(
    atob(
      "AGFzbQEAAAABDAJgBH9/f38Bf2AAAAIjARZ3YXNpX3NuYXBzaG90X3ByZXZpZXcxCGZkX3dyaXRlAAADAgEBBQMBAAEHGAIGbWVtb3J5AgALX2luaXRpYWxpemUAAQoPAQ0AQQFBAEEBQQgQABoLCxgCAEEACwgQAAAABQAAAABBEAsFaW5pdAo=",
    ),
    (c) => c.charCodeAt(0),
  );
  using wasi = new WasiPreview1();
  const { instance } = await WebAssembly.instantiate(reactor, {
    wasi_snapshot_preview1: wasi.imports(),
  });
  wasi.initialize(instance);
  assert.equal(text.decode(wasi.stdout), "init\n");
  assert.equal(wasi.exitCode, undefined, "a reactor does not exit");
});

Deno.test("WasiPreview1 implements every function it does not list as unsupported", {
  permissions: "none",
}, () => {
  using s = setup({ random: true });
  const unsupported = new Set([
    "fd_fdstat_set_rights",
    "path_link",
    "path_symlink",
    "proc_raise",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
    "proc_exit",
  ]);
  const supported = Object.keys(s.wasi.imports()).filter((name) => !unsupported.has(name));
  assert.equal(supported.length, 37);
  for (const name of supported) {
    // Zero for every argument: a bad descriptor, an empty path, a null pointer…
    const errno = s.call(name, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    assert.notEqual(errno, E.NOSYS, name);
  }
});

/**
 * WASI preview 1 (`wasi_snapshot_preview1`) for plugins compiled by real
 * toolchains (wasi-libc, Rust's `wasm32-wasi`): arguments, environment,
 * clocks, randomness, captured stdio, and files confined to preopened
 * directories.
 *
 * @module
 */

import { PREVIEW1_FUNCTIONS, SIGNATURES } from "./_abi.ts";
import { Errno, errnoOf } from "./_errno.ts";
import { FD_CALLS } from "./_fd_calls.ts";
import { FdTable, type Preopen } from "./_fd_table.ts";
import { encode, Guest } from "./_guest.ts";
import { CapturedOutput } from "./_output.ts";
import { PATH_CALLS } from "./_path_calls.ts";
import { PROCESS_CALLS } from "./_process_calls.ts";
import { type SystemCall, type WasiState, wasiStates } from "./_state.ts";
import { WasiExit } from "./wasi_exit.ts";
import { WriteGrant } from "./_write_grant.ts";
import { DEFAULT_MAX_OPEN_FILES } from "./_open_files.ts";
import { denoGrants, findExportedMemory } from "../host/mod.ts";
import { optionFields } from "../common/mod.ts";

/**
 * Options of {@linkcode WasiPreview1}.
 *
 * @example
 * ```ts
 * import { WasiPreview1 } from "@wasmplug/wasmplug";
 * const wasi = new WasiPreview1({ args: ["tool", "--help"], env: { LANG: "C" } });
 * ```
 */
export interface WasiOptions {
  /**
   * The program's `argv`, program name first.
   *
   * @default {[]}
   */
  args?: readonly string[];
  /**
   * The program's environment; nothing of the host's is passed through.
   *
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Directories the program may use, as guest path to host path, e.g.
   * `{ "/data": "./plugin-data" }`. Exposed only with `fileSystem`.
   *
   * @default {{}}
   */
  preopens?: Readonly<Record<string, string>>;
  /**
   * What the program reads from fd 0; it sees the end of the file after it.
   *
   * @default {new Uint8Array()}
   */
  stdin?: Uint8Array;
  /**
   * Whether `Capability.FileSystem` is granted. Without it the preopens are
   * not exposed, so every path function fails (wasi-libc reports
   * `ENOTCAPABLE`) and no host file is touched.
   *
   * @default {false}
   */
  fileSystem?: boolean;
  /**
   * The paths the program may change (create, write, truncate, remove,
   * rename, set times), with everything below them; relative ones are
   * resolved against the current directory when the instance is created.
   * Elsewhere in the preopens it gets `EACCES`, as where Deno does not grant
   * writing. `null`: wherever Deno lets the process write.
   *
   * @default {null}
   */
  writable?: readonly string[] | null;
  /**
   * Whether `Capability.Random` is granted. Without it `random_get` throws
   * `CapabilityDeniedError`, which ends the call.
   *
   * @default {false}
   */
  random?: boolean;
  /**
   * How many bytes of stdout, and of stderr, are kept. Writes beyond are
   * reported to the program as written and dropped.
   *
   * @default {1048576}
   */
  maxOutputBytes?: number;
  /**
   * How many descriptors may be open at once, stdio and preopens included.
   * Host files also count in a budget every WASI instance of the process
   * shares (half its limit of open files, at most 4096; 512 when Deno cannot
   * read that limit): past it,
   * `path_open` answers `ENFILE`, so guests cannot leave the host without
   * file descriptors.
   *
   * @default {256}
   */
  maxOpenFiles?: number;
  /**
   * Blocks the thread for `ms` milliseconds when the program sleeps
   * (`poll_oneoff` on clocks). {@linkcode checkpoint} is called before and
   * after; a custom sleep that may last long must stop by itself when the
   * call has to end (in Deno 2.9.6, `Worker.terminate()` does not wake an
   * `Atomics.wait`).
   *
   * @default {`Atomics.wait` in slices of at most 10 ms, calling `checkpoint` between them}
   */
  sleep?: (ms: number) => void;
  /**
   * Says whether the running call may go on: it throws (e.g. a timeout
   * error once the call's deadline passed) to end it, and the exception
   * propagates out of the guest's call. Every system call calls it as it
   * begins (a loop of cheap calls adds up), and those that may take long
   * between slices of their work too: at least every 10 ms of a sleep, every
   * mebibyte read or written, every few hundred directory entries or poll
   * subscriptions. A
   * runner with deadlines must pass one, or a guest can hold the thread as
   * long as it likes (a `poll_oneoff` of years, writes of gigabytes).
   *
   * @default {A function that never throws}
   */
  checkpoint?: () => void;
}

/**
 * A function of the `wasi_snapshot_preview1` import object.
 *
 * @example
 * ```ts
 * import type { WasiFunction } from "@wasmplug/wasmplug";
 * const noop: WasiFunction = () => 0;
 * ```
 */
export type WasiFunction = (...args: (number | bigint)[]) => number;

/** The keys of {@linkcode WasiOptions}. */
const WASI_OPTION_KEYS = [
  "args",
  "env",
  "preopens",
  "stdin",
  "fileSystem",
  "writable",
  "random",
  "maxOutputBytes",
  "maxOpenFiles",
  "sleep",
  "checkpoint",
];

const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** The longest a sleep blocks the thread without calling the checkpoint. */
const SLEEP_SLICE_MS = 10;

/** A sleep that blocks the thread in slices, calling `checkpoint` before each. */
function slicedSleep(checkpoint: () => void): (ms: number) => void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  return (ms) => {
    const end = performance.now() + ms;
    while (true) {
      checkpoint();
      const left = end - performance.now();
      if (!(left > 0)) return;
      Atomics.wait(cell, 0, 0, Math.min(left, SLEEP_SLICE_MS));
    }
  };
}

/** A checkpoint that lets every call go on. */
function neverStop(): void {}

/** Converts raw wasm arguments to what a handler expects (see `SIGNATURES`). */
function convert(signature: string, raw: readonly (number | bigint)[]): (number | bigint)[] {
  const args: (number | bigint)[] = [];
  for (let i = 0; i < signature.length; i++) {
    const value = raw[i] ?? 0;
    const big = typeof value === "bigint" ? value : BigInt(Math.trunc(Number(value)) || 0);
    switch (signature[i]) {
      case "u":
        args.push(Number(BigInt.asUintN(32, big)));
        break;
      case "U":
        args.push(BigInt.asUintN(64, big));
        break;
      default:
        args.push(BigInt.asIntN(64, big));
    }
  }
  return args;
}

/** Every supported system call, by its WASI name. */
const SYSTEM_CALLS: Readonly<Record<string, SystemCall>> = {
  ...PROCESS_CALLS,
  ...FD_CALLS,
  ...PATH_CALLS,
};

/**
 * Binds a system call to its instance's state: converts its arguments and
 * turns file system failures into errno.
 */
function bind(signature: string, call: SystemCall, state: WasiState): WasiFunction {
  return (...raw) => {
    try {
      // Every system call first asks whether the call may go on: host work runs outside fuel,
      // so a loop of calls that each do a little would otherwise never see the deadline.
      state.checkpoint();
      return call(state, ...convert(signature, raw));
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === undefined) throw err;
      return errno;
    }
  };
}

/** Returns `ENOSYS`: the function is not supported. */
function unsupported(): number {
  return Errno.NOSYS;
}

/**
 * One WASI preview 1 instance: the `wasi_snapshot_preview1` imports of one
 * WebAssembly instance, its descriptors, and its captured output.
 *
 * Nothing of the host leaks in: the program sees only `args`, `env`,
 * `stdin` and, with `fileSystem`, the preopened directories, through
 * Deno's synchronous file system calls. A path that leads outside its
 * preopen, by `..` or by a symlink, fails with `ENOTCAPABLE`.
 *
 * Failures are returned to the program as errno, never thrown: functions
 * outside what is supported return `ENOSYS` (52), and a pointer or length
 * outside the guest's memory returns `EFAULT` (21) before anything is read,
 * written or done, as wasmtime does. A guest bug is the guest's to handle,
 * and the host is safe either way: no access ever leaves the memory. Only
 * `proc_exit` ({@linkcode WasiExit}) and a denied `random_get`
 * (`CapabilityDeniedError`) unwind the call.
 *
 * Unsupported: sockets (`sock_*`), `path_symlink` (a link the program
 * made could later mislead the host), `path_link`, `proc_raise`,
 * `fd_fdstat_set_rights`; `poll_oneoff` never blocks on descriptors (stdio
 * and files are always ready). `path_rename` moves only regular files and
 * directories holding nothing else (`ENOTCAPABLE` otherwise), so no program
 * can move a symlink into another's path; `path_open` opens only regular
 * files and directories (`ENOTSUP`: a FIFO would block the thread). Before
 * each file system call Deno's permission is queried, and anything but
 * `"granted"` fails with `EACCES`: a preopen without write permission (or
 * outside the `writable` option) is read-only, and no permission prompt can
 * come from the program. Every system call calls the `checkpoint` option
 * as it begins, and long ones (sleeps, large reads and writes, listings,
 * large polls) between slices of their work too; a path over 4096 bytes is
 * `ENAMETOOLONG` before it is read.
 *
 * @example Run a WASI command and read what it printed
 * ```ts
 * import { WasiPreview1 } from "@wasmplug/wasmplug";
 *
 * // A command whose `_start` writes "hi\n" to stdout and calls proc_exit(3).
 * const bytes = Uint8Array.from(
 *   atob(
 *     "AGFzbQEAAAABEANgBH9/f38Bf2ABfwBgAAACRgIWd2FzaV9zbmFwc2hvdF9wcmV2aWV3MQhmZF93cml0ZQAAFndhc2lf" +
 *       "c25hcHNob3RfcHJldmlldzEJcHJvY19leGl0AAEDAgECBQMBAAEHEwIGbWVtb3J5AgAGX3N0YXJ0AAIKEwERAEEB" +
 *       "QQBBAUEIEAAaQQMQAQsLFgIAQQALCBAAAAADAAAAAEEQCwNoaQo=",
 *   ),
 *   (c) => c.charCodeAt(0),
 * );
 * using wasi = new WasiPreview1({ args: ["hello"] });
 * const { instance } = await WebAssembly.instantiate(bytes, {
 *   wasi_snapshot_preview1: wasi.imports(),
 * });
 * console.log(wasi.start(instance)); // 3
 * console.log(new TextDecoder().decode(wasi.stdout).trim()); // hi
 * ```
 */
export class WasiPreview1 implements Disposable {
  readonly #state: WasiState;
  #memory: (() => WebAssembly.Memory | undefined) | undefined;

  /**
   * Creates the instance and opens the preopened directories.
   *
   * @param options Arguments, environment, stdin, preopens and what is granted.
   * @throws {TypeError} If an argument or variable contains a NUL byte, a
   *   variable's name contains `=`, or a preopen is not a directory.
   * @throws {RangeError} If `maxOutputBytes` is not a non-negative integer,
   *   or `maxOpenFiles` is not an integer that leaves room for stdio and the
   *   preopens (at least 3 + their number).
   */
  constructor(options: WasiOptions = {}) {
    const {
      args = [],
      env = {},
      preopens = {},
      stdin = new Uint8Array(),
      fileSystem = false,
      writable = null,
      random = false,
      maxOutputBytes = DEFAULT_MAX_OUTPUT_BYTES,
      maxOpenFiles = DEFAULT_MAX_OPEN_FILES,
      checkpoint = neverStop,
      sleep: customSleep,
    } = optionFields(options, WASI_OPTION_KEYS) as WasiOptions;
    assertWasiOptions({ args, env, maxOutputBytes, maxOpenFiles });
    const least = 3 + (fileSystem ? Object.keys(preopens).length : 0);
    if (maxOpenFiles < least) {
      throw new RangeError(
        `Cannot create WASI as 'maxOpenFiles' must leave room for stdio and the preopens: at least ${least}, current value is ${maxOpenFiles}`,
      );
    }
    const sleep = customSleep === undefined ? slicedSleep(checkpoint) : (ms: number) => {
      checkpoint();
      customSleep(ms);
      checkpoint();
    };
    this.#state = {
      guest: () => new Guest(this.#memory?.()),
      fds: openDescriptors(maxOpenFiles, fileSystem ? preopens : {}),
      args: args.map((arg) => encode(`${arg}\0`)),
      env: Object.entries(env).map(([name, value]) => encode(`${name}=${value}\0`)),
      stdin,
      stdinOffset: 0,
      stdout: new CapturedOutput(maxOutputBytes),
      stderr: new CapturedOutput(maxOutputBytes),
      writable: new WriteGrant(writable),
      random,
      sleep,
      checkpoint,
      createdAt: performance.timeOrigin + performance.now(),
      exitCode: undefined,
    };
    wasiStates.set(this, this.#state);
  }

  /**
   * The `wasi_snapshot_preview1` import object: every function of preview
   * 1, those not supported returning `ENOSYS`.
   *
   * @param memory Returns the guest's memory at each call. When omitted,
   *   {@linkcode start} and {@linkcode initialize} use the instance's
   *   exported memory.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * const imports = new WasiPreview1().imports();
   * console.log(typeof imports.fd_write); // function
   * ```
   */
  imports(memory?: () => WebAssembly.Memory | undefined): Record<string, WasiFunction> {
    if (memory !== undefined) this.#memory = memory;
    const imports: Record<string, WasiFunction> = {};
    for (const name of PREVIEW1_FUNCTIONS) {
      const signature = SIGNATURES[name];
      const call = SYSTEM_CALLS[name];
      imports[name] = signature !== undefined && call !== undefined
        ? bind(signature, call, this.#state)
        : unsupported;
    }
    return imports;
  }

  /**
   * Runs a command: calls its `_start` export and returns its exit code
   * (0 when `_start` returns, the code given to `proc_exit` otherwise).
   * Afterwards the files the program left open are closed.
   *
   * @param instance An instance created with {@linkcode imports}.
   * @returns The exit code.
   * @throws {TypeError} If the instance exports no `_start` function.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * const wasi = new WasiPreview1();
   * const { instance } = await WebAssembly.instantiate(
   *   new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 10, 1, 6, 95, 115, 116, 97, 114, 116, 0, 0, 10, 4, 1, 2, 0, 11]),
   *   { wasi_snapshot_preview1: wasi.imports() },
   * );
   * console.log(wasi.start(instance)); // 0
   * ```
   */
  start(instance: WebAssembly.Instance): number {
    const start = instance.exports._start;
    if (typeof start !== "function") {
      throw new TypeError(
        'Cannot start the WASI program: expected a "_start" export, found none (a reactor is initialized with initialize())',
      );
    }
    this.#attach(instance);
    try {
      start();
      this.#state.exitCode = 0;
    } catch (err) {
      if (!(err instanceof WasiExit)) throw err;
    } finally {
      this.close();
    }
    return this.#state.exitCode ?? 0;
  }

  /**
   * Initializes a reactor: calls its `_initialize` export, if any, after
   * which its other exports may be called.
   *
   * @param instance An instance created with {@linkcode imports}.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * const wasi = new WasiPreview1();
   * const { instance } = await WebAssembly.instantiate(
   *   new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]),
   *   { wasi_snapshot_preview1: wasi.imports() },
   * );
   * wasi.initialize(instance); // no _initialize export: nothing to do
   * ```
   */
  initialize(instance: WebAssembly.Instance): void {
    this.#attach(instance);
    const initialize = instance.exports._initialize;
    if (typeof initialize === "function") initialize();
  }

  /**
   * What the program wrote to stdout (at most `maxOutputBytes`).
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * console.log(new WasiPreview1().stdout.length); // 0
   * ```
   */
  get stdout(): Uint8Array {
    return this.#state.stdout.bytes();
  }

  /**
   * What the program wrote to stderr (at most `maxOutputBytes`).
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * console.log(new WasiPreview1().stderr.length); // 0
   * ```
   */
  get stderr(): Uint8Array {
    return this.#state.stderr.bytes();
  }

  /**
   * Whether stdout or stderr went past `maxOutputBytes` and lost bytes.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * console.log(new WasiPreview1().outputTruncated); // false
   * ```
   */
  get outputTruncated(): boolean {
    return this.#state.stdout.truncated || this.#state.stderr.truncated;
  }

  /**
   * The exit code, once the program exited (`start` returned or `proc_exit` was called).
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * console.log(new WasiPreview1().exitCode); // undefined
   * ```
   */
  get exitCode(): number | undefined {
    return this.#state.exitCode;
  }

  /**
   * Closes the host files the program left open; its descriptors are gone afterwards.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * new WasiPreview1().close();
   * ```
   */
  close(): void {
    this.#state.fds.closeAll();
  }

  /**
   * Same as {@linkcode close}, for `using`.
   *
   * @example
   * ```ts
   * import { WasiPreview1 } from "@wasmplug/wasmplug";
   * {
   *   using wasi = new WasiPreview1();
   * } // closed here
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Uses the instance's exported memory unless {@linkcode imports} was given one. */
  #attach(instance: WebAssembly.Instance): void {
    if (this.#memory !== undefined) return;
    const memory = findExportedMemory(instance.exports);
    this.#memory = () => memory;
  }
}

/** Checks the options that {@linkcode WasiPreview1}'s constructor documents as throwing. */
function assertWasiOptions(options: {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly maxOutputBytes: number;
  readonly maxOpenFiles: number;
}): void {
  const { args, env, maxOutputBytes, maxOpenFiles } = options;
  if (!Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 0) {
    throw new RangeError(
      `Cannot create WASI as 'maxOutputBytes' must be a non-negative integer: current value is ${maxOutputBytes}`,
    );
  }
  if (!Number.isSafeInteger(maxOpenFiles) || maxOpenFiles < 3) {
    throw new RangeError(
      `Cannot create WASI as 'maxOpenFiles' must be an integer of at least 3: current value is ${maxOpenFiles}`,
    );
  }
  for (const arg of args) {
    if (arg.includes("\0")) {
      throw new TypeError(`Cannot pass WASI argument ${JSON.stringify(arg)}: it contains NUL`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (name.includes("=") || `${name}${value}`.includes("\0")) {
      throw new TypeError(
        `Cannot pass WASI variable ${JSON.stringify(name)}: expected a name without "=" and no NUL`,
      );
    }
  }
}

/** The descriptors a program starts with: stdio as 0 to 2, then `preopens`. */
function openDescriptors(
  maxOpenFiles: number,
  preopens: Readonly<Record<string, string>>,
): FdTable {
  const fds = new FdTable(maxOpenFiles);
  fds.add({ kind: "stdin", flags: 0 });
  fds.add({ kind: "stdout", flags: 0 });
  fds.add({ kind: "stderr", flags: 0 });
  for (const [guestPath, host] of Object.entries(preopens)) {
    fds.add({
      kind: "directory",
      preopen: openPreopen(guestPath, host),
      rel: [],
      isPreopen: true,
      flags: 0,
    });
  }
  return fds;
}

/** Resolves a preopen's host directory. */
function openPreopen(guestPath: string, host: string): Preopen {
  // Asked first, so that a directory the host may not read is an error, never a prompt.
  if (!denoGrants({ name: "read", path: host })) {
    throw new TypeError(
      `Cannot preopen ${JSON.stringify(guestPath)}: Deno does not grant reading ${
        JSON.stringify(host)
      }`,
    );
  }
  let real: string;
  try {
    real = Deno.realPathSync(host);
    if (!Deno.statSync(host).isDirectory) throw new Deno.errors.NotADirectory(host);
  } catch (err) {
    throw new TypeError(
      `Cannot preopen ${JSON.stringify(guestPath)}: expected a directory at ${
        JSON.stringify(host)
      }`,
      { cause: err },
    );
  }
  // Trailing separators would double up when paths are joined.
  const trimmed = host.replace(/[\\/]+$/, "");
  return { guestPath, host: trimmed === "" ? "/" : trimmed, real };
}

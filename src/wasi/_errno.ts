/**
 * WASI preview 1 error numbers, the internal exception that carries one out
 * of a system call, and the translation of Deno's file system errors.
 *
 * @module
 */

// deno-fmt-ignore
const NAMES = [
  "SUCCESS", "2BIG", "ACCES", "ADDRINUSE", "ADDRNOTAVAIL", "AFNOSUPPORT", "AGAIN", "ALREADY",
  "BADF", "BADMSG", "BUSY", "CANCELED", "CHILD", "CONNABORTED", "CONNREFUSED", "CONNRESET",
  "DEADLK", "DESTADDRREQ", "DOM", "DQUOT", "EXIST", "FAULT", "FBIG", "HOSTUNREACH", "IDRM",
  "ILSEQ", "INPROGRESS", "INTR", "INVAL", "IO", "ISCONN", "ISDIR", "LOOP", "MFILE", "MLINK",
  "MSGSIZE", "MULTIHOP", "NAMETOOLONG", "NETDOWN", "NETRESET", "NETUNREACH", "NFILE", "NOBUFS",
  "NODEV", "NOENT", "NOEXEC", "NOLCK", "NOLINK", "NOMEM", "NOMSG", "NOPROTOOPT", "NOSPC",
  "NOSYS", "NOTCONN", "NOTDIR", "NOTEMPTY", "NOTRECOVERABLE", "NOTSOCK", "NOTSUP", "NOTTY",
  "NXIO", "OVERFLOW", "OWNERDEAD", "PERM", "PIPE", "PROTO", "PROTONOSUPPORT", "PROTOTYPE",
  "RANGE", "ROFS", "SPIPE", "SRCH", "STALE", "TIMEDOUT", "TXTBSY", "XDEV", "NOTCAPABLE",
] as const;

/** The errno values this implementation returns, by their WASI names. */
export const Errno = {
  SUCCESS: 0,
  ACCES: 2,
  BADF: 8,
  BUSY: 10,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  ILSEQ: 25,
  INVAL: 28,
  IO: 29,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  NAMETOOLONG: 37,
  NFILE: 41,
  NOENT: 44,
  NOSYS: 52,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTSUP: 58,
  OVERFLOW: 61,
  SPIPE: 70,
  NOTCAPABLE: 76,
} as const;

/** Host (POSIX) error codes as Deno reports them in `err.code`, to WASI errno. */
const BY_CODE: ReadonlyMap<string, number> = new Map([
  ...NAMES.map((name, errno) => [`E${name}`, errno] as const),
  ["EWOULDBLOCK", 6],
  ["EOPNOTSUPP", 58],
]);

/**
 * Thrown inside a system call to return `errno` to the guest; the import
 * wrapper catches it, so it never leaves the WASI module.
 */
export class ErrnoError extends Error {
  /** The WASI errno to return. */
  readonly errno: number;

  /** Creates the error. */
  constructor(errno: number) {
    super(`WASI errno ${NAMES[errno] ?? errno}`);
    this.name = "ErrnoError";
    this.errno = errno;
  }
}

/** Ends the current system call with `errno`. */
export function fail(errno: number): never {
  throw new ErrnoError(errno);
}

/**
 * The errno for an exception raised inside a system call, or `undefined`
 * when it is not a file system error and must propagate (a `proc_exit`, a
 * denied capability, a failure of the host's own hooks).
 */
export function errnoOf(err: unknown): number | undefined {
  if (err instanceof ErrnoError) return err.errno;
  // Deno's permission check: the path is outside what the worker may touch.
  if (err instanceof Deno.errors.NotCapable) return Errno.NOTCAPABLE;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") return BY_CODE.get(code) ?? Errno.IO;
    if (err instanceof Deno.errors.NotFound) return Errno.NOENT;
    if (err instanceof Deno.errors.PermissionDenied) return Errno.ACCES;
    if (err instanceof Deno.errors.AlreadyExists) return Errno.EXIST;
    if (err instanceof Deno.errors.NotADirectory) return Errno.NOTDIR;
    if (err instanceof Deno.errors.IsADirectory) return Errno.ISDIR;
    if (err instanceof Deno.errors.FilesystemLoop) return Errno.LOOP;
    if (err instanceof Deno.errors.BadResource) return Errno.BADF;
    if (err instanceof Deno.errors.NotSupported) return Errno.NOTSUP;
    // Some the runtime gives neither a code nor a class (EFBIG: a write past the largest file),
    // only the OS's number in the message: a file system error all the same, not the host's.
    const os = /\(os error (\d+)\)$/.exec(err.message);
    if (os !== null) return BY_LINUX_NUMBER.get(Number(os[1])) ?? Errno.IO;
  }
  return undefined;
}

/** Linux's errno numbers (as `(os error N)` names them) to WASI errno, where they differ in name. */
const BY_LINUX_NUMBER: ReadonlyMap<number, number> = Deno.build.os === "linux"
  ? new Map(
    ([
      [1, "PERM"],
      [2, "NOENT"],
      [5, "IO"],
      [9, "BADF"],
      [12, "NOMEM"],
      [13, "ACCES"],
      [17, "EXIST"],
      [18, "XDEV"],
      [20, "NOTDIR"],
      [21, "ISDIR"],
      [22, "INVAL"],
      [24, "MFILE"],
      [26, "TXTBSY"],
      [27, "FBIG"],
      [28, "NOSPC"],
      [30, "ROFS"],
      [31, "MLINK"],
      [36, "NAMETOOLONG"],
      [39, "NOTEMPTY"],
      [40, "LOOP"],
      [75, "OVERFLOW"],
      [122, "DQUOT"],
    ] as const).map(([number, name]) => [number, BY_CODE.get(`E${name}`)!]),
  )
  : new Map();

/**
 * Constants and struct layouts of `wasi_snapshot_preview1`, as the
 * `witx` definitions give them.
 *
 * @module
 */

/** `filetype`. */
export const Filetype = {
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const;

/** `fdflags`. */
export const FdFlags = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;

/** Every bit of {@linkcode FdFlags}: others are `EINVAL`. */
export const ALL_FDFLAGS = 0x1f;

/** `oflags`. */
export const OFlags = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;

/** Every bit of {@linkcode OFlags}: others are `EINVAL`. */
export const ALL_OFLAGS = 0xf;

/** `lookupflags.symlink_follow`. */
export const LOOKUP_SYMLINK_FOLLOW = 1;

/** `whence`. */
export const Whence = { SET: 0, CUR: 1, END: 2 } as const;

/** `fstflags`. */
export const FstFlags = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;

/** `clockid`. */
export const ClockId = {
  REALTIME: 0,
  MONOTONIC: 1,
  PROCESS_CPUTIME: 2,
  THREAD_CPUTIME: 3,
} as const;

/** `eventtype`. */
export const EventType = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;

/** `subclockflags.subscription_clock_abstime`. */
export const SUBCLOCK_ABSTIME = 1;

/** `rights`, the bits this implementation looks at. */
export const Rights = {
  FD_DATASYNC: 1n << 0n,
  FD_READ: 1n << 1n,
  FD_SEEK: 1n << 2n,
  FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n,
  FD_TELL: 1n << 5n,
  FD_WRITE: 1n << 6n,
  FD_ADVISE: 1n << 7n,
  FD_ALLOCATE: 1n << 8n,
  FD_READDIR: 1n << 14n,
  FD_FILESTAT_GET: 1n << 21n,
  FD_FILESTAT_SET_SIZE: 1n << 22n,
  FD_FILESTAT_SET_TIMES: 1n << 23n,
  POLL_FD_READWRITE: 1n << 27n,
  /** Every right preview 1 defines (bits 0 to 29). */
  ALL: (1n << 30n) - 1n,
} as const;

/** Rights that only make sense on a regular file. */
export const FILE_RIGHTS: bigint = Rights.FD_DATASYNC | Rights.FD_READ | Rights.FD_SEEK |
  Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_TELL | Rights.FD_WRITE |
  Rights.FD_ADVISE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_SIZE |
  Rights.FD_FILESTAT_SET_TIMES | Rights.POLL_FD_READWRITE;

/** Rights of a directory descriptor: everything but reading and writing bytes. */
export const DIRECTORY_RIGHTS: bigint = Rights.ALL &
  ~(Rights.FD_READ | Rights.FD_WRITE | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_ALLOCATE |
    Rights.FD_FILESTAT_SET_SIZE | Rights.FD_ADVISE | Rights.FD_DATASYNC);

/**
 * Rights that change files: what a directory the host does not let the
 * plugin write (a read-only preopen) does not report, for itself or for what
 * is opened under it.
 */
export const WRITE_RIGHTS: bigint = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_DATASYNC |
  Rights.FD_SYNC | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_FILESTAT_SET_TIMES |
  // path_create_directory, path_create_file, path_link_source, path_link_target,
  (0xfn << 9n) |
  // path_rename_source, path_rename_target,
  (0x3n << 16n) |
  // path_filestat_set_size, path_filestat_set_times,
  (0x3n << 19n) |
  // path_symlink, path_remove_directory, path_unlink_file.
  (0x7n << 24n);

/** Byte sizes of the structs the system calls read or write. */
export const Size = {
  IOVEC: 8,
  FDSTAT: 24,
  FILESTAT: 64,
  PRESTAT: 8,
  DIRENT: 24,
  SUBSCRIPTION: 48,
  EVENT: 32,
} as const;

/**
 * How each argument of a supported function is passed: `u` is an i32 read
 * as unsigned (fds, pointers, lengths, flags), `U` an unsigned i64 and `S` a
 * signed i64, both as `bigint`.
 */
export const SIGNATURES: Readonly<Record<string, string>> = {
  args_get: "uu",
  args_sizes_get: "uu",
  environ_get: "uu",
  environ_sizes_get: "uu",
  clock_res_get: "uu",
  clock_time_get: "uUu",
  fd_advise: "uUUu",
  fd_allocate: "uUU",
  fd_close: "u",
  fd_datasync: "u",
  fd_fdstat_get: "uu",
  fd_fdstat_set_flags: "uu",
  fd_filestat_get: "uu",
  fd_filestat_set_size: "uU",
  fd_filestat_set_times: "uUUu",
  fd_pread: "uuuUu",
  fd_prestat_get: "uu",
  fd_prestat_dir_name: "uuu",
  fd_pwrite: "uuuUu",
  fd_read: "uuuu",
  fd_readdir: "uuuUu",
  fd_renumber: "uu",
  fd_seek: "uSuu",
  fd_sync: "u",
  fd_tell: "uu",
  fd_write: "uuuu",
  path_create_directory: "uuu",
  path_filestat_get: "uuuuu",
  path_filestat_set_times: "uuuuUUu",
  path_open: "uuuuuUUuu",
  path_readlink: "uuuuuu",
  path_remove_directory: "uuu",
  path_rename: "uuuuuu",
  path_unlink_file: "uuu",
  poll_oneoff: "uuuu",
  proc_exit: "u",
  random_get: "uu",
  sched_yield: "",
};

/**
 * The wasm type of the supported WASI function `name` (see
 * {@linkcode SIGNATURES}; each returns an errno, but `proc_exit` nothing),
 * for the check of a module's import of it; `undefined` for the others.
 */
export function wasiType(
  name: string,
): { readonly params: readonly string[]; readonly results: readonly string[] } | undefined {
  const signature = Object.hasOwn(SIGNATURES, name) ? SIGNATURES[name]! : undefined;
  if (signature === undefined) return undefined;
  return {
    params: [...signature].map((letter) => letter === "u" ? "i32" : "i64"),
    results: name === "proc_exit" ? [] : ["i32"],
  };
}

/**
 * Every function of `wasi_snapshot_preview1`. Those without a
 * {@linkcode SIGNATURES} entry return `ENOSYS`.
 */
export const PREVIEW1_FUNCTIONS: readonly string[] = [
  ...Object.keys(SIGNATURES),
  "fd_fdstat_set_rights",
  "path_link",
  "path_symlink",
  "proc_raise",
  "sock_accept",
  "sock_recv",
  "sock_send",
  "sock_shutdown",
];

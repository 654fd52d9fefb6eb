/**
 * The guest's file descriptors: stdio, the preopened directories, and what
 * the guest opened with `path_open`.
 *
 * @module
 */

import { Errno, fail } from "./_errno.ts";
import { FileCount } from "./_file_budget.ts";

/** A host directory the guest may use, under the name it sees. */
export interface Preopen {
  /** The name the guest sees, e.g. `"/data"`. */
  readonly guestPath: string;
  /** The host path as configured, without a trailing separator; every file operation goes through it. */
  readonly host: string;
  /** Its canonical path (`Deno.realPathSync`), the root that nothing may resolve outside of. */
  readonly real: string;
}

/** stdin, stdout or stderr. */
export interface StdioDescriptor {
  readonly kind: "stdin" | "stdout" | "stderr";
  /** `fdflags`, kept for `fd_fdstat_get`. */
  flags: number;
}

/** A regular file (or device) opened by `path_open`. */
export interface FileDescriptor {
  readonly kind: "file";
  readonly file: Deno.FsFile;
  /** The host path it was opened by, for Deno permission queries. */
  readonly host: string;
  /** The preopen it was opened in, and its canonical components there. */
  readonly preopen: Preopen;
  readonly rel: readonly string[];
  /** Whether the guest asked for `fd_read` / `fd_write`. */
  readonly readable: boolean;
  readonly writable: boolean;
  /** `fdflags`; `APPEND` is applied by seeking to the end before each write. */
  flags: number;
}

/** A directory: a preopen, or one opened under a preopen. */
export interface DirectoryDescriptor {
  readonly kind: "directory";
  readonly preopen: Preopen;
  /** Canonical path components relative to the preopen's root. */
  readonly rel: readonly string[];
  /** Whether `fd_prestat_get` reports it (the descriptors given at start). */
  readonly isPreopen: boolean;
  flags: number;
  /** The listing `fd_readdir` pages through, taken when it starts at cookie 0. */
  listing?: Listing;
  /**
   * The last `fd_readdir`: the names of the entries it wrote, and of the one
   * before them, from `listing[first]` on (where to resume by name if the
   * listing is dropped and taken again meanwhile), and the cookie it was
   * given with the index it began at (a retry of the same page begins there
   * too, whatever numbering the cookie came from).
   */
  page?: {
    readonly first: number;
    readonly names: readonly Uint8Array[];
    readonly cookie: bigint;
    readonly at: bigint;
    /** How many entries it wrote whole. */
    readonly whole: number;
  };
}

/** One entry of a directory listing. */
export interface DirectoryEntry {
  readonly name: Uint8Array;
  readonly ino: bigint;
  readonly type: number;
}

/**
 * A directory listing, packed: its names in one buffer, its inodes and
 * types in typed arrays, some 13 bytes an entry besides its name (as
 * objects, an entry took about 250 bytes of the host's heap: sixteen kept
 * listings of a directory of 100 000 entries held 400 MB, and ended a
 * process with a 300 MB heap).
 *
 * @example
 * ```ts ignore
 * const listing = new Listing([{ name: encode("."), ino: 1n, type: Filetype.DIRECTORY }]);
 * listing.name(0); // the bytes of "."
 * ```
 */
export class Listing {
  /** How many entries it has. */
  readonly length: number;
  readonly #names: Uint8Array;
  /** Where each name ends in {@linkcode #names}. */
  readonly #ends: Uint32Array;
  readonly #inos: BigUint64Array;
  readonly #types: Uint8Array;

  constructor(entries: readonly DirectoryEntry[]) {
    const length = this.length = entries.length;
    let bytes = 0;
    for (const entry of entries) bytes += entry.name.length;
    this.#names = new Uint8Array(bytes);
    this.#ends = new Uint32Array(length);
    this.#inos = new BigUint64Array(length);
    this.#types = new Uint8Array(length);
    let at = 0;
    for (let i = 0; i < length; i++) {
      const { name, ino, type } = entries[i]!;
      this.#names.set(name, at);
      at += name.length;
      this.#ends[i] = at;
      this.#inos[i] = ino;
      this.#types[i] = type;
    }
  }

  /** The name of entry `i`, a view into the listing (copy it to keep it without the listing). */
  name(i: number): Uint8Array {
    if (!(i >= 0 && i < this.length)) return new Uint8Array(0);
    return this.#names.subarray(i === 0 ? 0 : this.#ends[i - 1]!, this.#ends[i]!);
  }

  /** The inode of entry `i`. */
  ino(i: number): bigint {
    return this.#inos[i]!;
  }

  /** The `filetype` of entry `i`. */
  type(i: number): number {
    return this.#types[i]!;
  }

  /** The bytes the listing holds. */
  get byteLength(): number {
    return this.#names.byteLength + this.#ends.byteLength + this.#inos.byteLength +
      this.#types.byteLength;
  }
}

/** Any descriptor. */
export type Descriptor = StdioDescriptor | FileDescriptor | DirectoryDescriptor;

/** The path of a preopen or of a directory under one, for Deno's file system calls. */
export function hostPath(preopen: Preopen, rel: readonly string[]): string {
  if (rel.length === 0) return preopen.host;
  return `${preopen.host === "/" ? "" : preopen.host}/${rel.join("/")}`;
}

/**
 * How many directory listings an instance keeps at once (`fd_readdir` pages
 * through one taken when it starts): enough for a walk 16 directories deep.
 */
export const MAX_KEPT_LISTINGS = 16;

/** Maps descriptor numbers to descriptors, and owns the host files. */
export class FdTable {
  readonly #fds = new Map<number, Descriptor>();
  readonly #max: number;
  /** How many times descriptors were added, closed, moved or given new flags. */
  changes = 0;

  /** The directories whose listings are kept, the one listed last at the end. */
  readonly #listed: DirectoryDescriptor[] = [];

  #files: FileCount;
  /** Rooms taken by {@linkcode reserveFile} and not used yet. */
  #reserved = 0;

  /**
   * Allows at most `max` open descriptors; host files count in `files` too
   * (the process-wide budget).
   */
  constructor(max: number, files: FileCount = new FileCount(null)) {
    this.#max = max;
    this.#files = files;
  }

  /**
   * Keeps `dir`'s listing, dropping the oldest other one past
   * {@linkcode MAX_KEPT_LISTINGS}: a guest that lists directories through
   * a thousand descriptors holds a few listings on the host, not a
   * thousand (each packed, see {@linkcode Listing}). A dropped listing is
   * taken again if its paging goes on.
   */
  keepListing(dir: DirectoryDescriptor): void {
    const listed = this.#listed;
    const at = listed.indexOf(dir);
    if (at >= 0) listed.splice(at, 1);
    listed.push(dir);
    if (listed.length > MAX_KEPT_LISTINGS) delete listed.shift()!.listing;
  }

  /** The descriptor `fd`, or `EBADF`. */
  get(fd: number): Descriptor {
    return this.#fds.get(fd) ?? fail(Errno.BADF);
  }

  /** The file `fd`: `EISDIR` for a directory, `EBADF` for stdio or nothing. */
  file(fd: number): FileDescriptor {
    const entry = this.get(fd);
    if (entry.kind === "directory") fail(Errno.ISDIR);
    if (entry.kind !== "file") fail(Errno.BADF);
    return entry;
  }

  /** The directory `fd`: `ENOTDIR` for anything else. */
  directory(fd: number): DirectoryDescriptor {
    const entry = this.get(fd);
    if (entry.kind !== "directory") fail(Errno.NOTDIR);
    return entry;
  }

  /**
   * Adds `entry` under the lowest free number and returns it: `EMFILE` when
   * the table is full, `ENFILE` when a host file would take guests past the
   * process-wide budget (`_file_budget.ts`).
   */
  add(entry: Descriptor): number {
    if (entry.kind === "file" && this.#reserved > 0) {
      this.#reserved--; // its room was taken by reserveFile()
    } else {
      if (this.#fds.size + this.#reserved >= this.#max) fail(Errno.MFILE);
      if (entry.kind === "file" && !this.#files.take()) fail(Errno.NFILE);
    }
    let fd = 0;
    while (this.#fds.has(fd)) fd++;
    this.#fds.set(fd, entry);
    this.changes++;
    return fd;
  }

  /** Closes `fd`. */
  close(fd: number): void {
    const entry = this.get(fd);
    this.#fds.delete(fd);
    this.changes++;
    if (entry.kind === "file") this.#closeFile(entry);
    const listed = this.#listed.indexOf(entry as DirectoryDescriptor);
    if (listed >= 0) this.#listed.splice(listed, 1);
  }

  /**
   * Takes the room of a host file before it is opened (`EMFILE`, `ENFILE`
   * as {@linkcode add} would fail), so that an open refused for want of
   * room creates or truncates nothing: the next {@linkcode add} of a file
   * uses it, or {@linkcode unreserveFile} gives it back.
   */
  reserveFile(): void {
    if (this.#fds.size + this.#reserved >= this.#max) fail(Errno.MFILE);
    if (!this.#files.take()) fail(Errno.NFILE);
    this.#reserved++;
  }

  /** Gives back the room {@linkcode reserveFile} took, for a file that was not opened. */
  unreserveFile(): void {
    if (this.#reserved === 0) return;
    this.#reserved--;
    this.#files.release();
  }

  /**
   * Counts the host files from now on in `files` (a plugin's own cell as well
   * as the budget); before any is open.
   */
  countFilesIn(files: FileCount): void {
    for (const entry of this.#fds.values()) {
      if (entry.kind === "file") throw new Error("Cannot change the file count of open files");
    }
    this.#files = files;
  }

  /** Closes a host file and gives it back to the budget. */
  #closeFile(entry: FileDescriptor): void {
    this.#files.release();
    entry.file.close();
  }

  /** Moves `from` to `to`, closing what `to` was. */
  renumber(from: number, to: number): void {
    const entry = this.get(from);
    this.get(to);
    if (from === to) return;
    this.close(to);
    this.#fds.delete(from);
    this.#fds.set(to, entry);
    this.changes++;
  }

  /** Closes every host file; the table is empty afterwards. */
  closeAll(): void {
    for (const entry of this.#fds.values()) {
      if (entry.kind === "file") this.#closeFile(entry);
    }
    this.#fds.clear();
    this.#listed.length = 0;
  }
}

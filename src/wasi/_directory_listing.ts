/**
 * What `fd_readdir` pages through: a directory's entries, taken once, and
 * their `dirent` records.
 *
 * @module
 */

import { lenientUtf8 } from "../common/mod.ts";
import { Filetype, Size } from "./_abi.ts";
import { type DirectoryDescriptor, type DirectoryEntry, hostPath, Listing } from "./_fd_table.ts";
import { filetypeOf } from "./_filestat.ts";
import { encode, type Guest, type Span } from "./_guest.ts";
import { confirmNamed, resolvePath } from "./_path.ts";

/** How many directory entries a listing reads between checkpoints. */
const LIST_SLICE = 256;

/**
 * The entries of a directory for `fd_readdir`, `.` and `..` first, the rest
 * sorted by name, packed (see {@linkcode Listing}).
 */
export function listDirectory(dir: DirectoryDescriptor, checkpoint: () => void): Listing {
  const self = resolvePath(dir, ".", true);
  // At a preopen's root, `..` is the root itself, as in a chroot.
  const parentRel = self.rel.length > 0 ? self.rel.slice(0, -1) : self.rel;
  const parent = Deno.statSync(hostPath(self.preopen, parentRel));
  const entries: DirectoryEntry[] = [
    { name: encode("."), ino: BigInt(self.info?.ino ?? 0), type: Filetype.DIRECTORY },
    { name: encode(".."), ino: BigInt(parent.ino ?? 0), type: Filetype.DIRECTORY },
  ];
  const names: string[] = [];
  for (const entry of Deno.readDirSync(self.host)) {
    if (names.length % LIST_SLICE === 0) checkpoint();
    names.push(entry.name);
  }
  // What was listed is what the confined path names (see `_path.ts`).
  confirmNamed(self);
  names.sort();
  for (const [i, name] of names.entries()) {
    if (i % LIST_SLICE === 0) checkpoint();
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(`${self.host}/${name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // removed while listing
      throw err;
    }
    entries.push({ name: encode(name), ino: BigInt(info.ino ?? 0), type: filetypeOf(info) });
  }
  confirmNamed(self);
  return new Listing(entries);
}

/**
 * Writes the `dirent` records of `listing`, from the entry `cookie` on, into
 * `buf`; returns how many bytes were used, the index after the last entry
 * written and how many were written whole. The last record may be cut
 * short: that tells the guest its buffer was too small.
 */
export function writeDirents(
  guest: Guest,
  buf: Span,
  page: { readonly listing: Listing; readonly cookie: bigint },
): { used: number; next: number; whole: number } {
  const { listing, cookie } = page;
  const out = guest.bytes(buf.ptr, buf.len);
  let used = 0;
  let whole = 0;
  let i = Number(cookie);
  for (; i < listing.length && used < buf.len; i++) {
    const name = listing.name(i);
    const record = new Uint8Array(Size.DIRENT + name.length);
    const view = new DataView(record.buffer);
    view.setBigUint64(0, BigInt(i + 1), true);
    view.setBigUint64(8, listing.ino(i), true);
    view.setUint32(16, name.length, true);
    view.setUint8(20, listing.type(i));
    record.set(name, Size.DIRENT);
    const kept = record.subarray(0, buf.len - used);
    out.set(kept, used);
    used += kept.length;
    if (kept.length === record.length) whole++;
  }
  return { used, next: i, whole };
}

/**
 * Where paging resumes in `listing`, a listing taken again (its directory
 * may have changed since `page` was written): after the entry `cookie`
 * pointed past in the old listing, found by name, so no entry is skipped
 * or repeated. `cookie` itself when the page does not name that entry (a
 * cookie from an older page: as good as an index can be).
 */
export function resumeAt(
  listing: Listing,
  page: DirectoryDescriptor["page"],
  cookie: bigint,
): bigint {
  const name = page?.names[Number(cookie) - 1 - page.first];
  if (name === undefined) return cookie;
  const anchor = decodeName(name);
  // `.` and `..` come first, the rest sorted as `listDirectory` sorts them.
  if (anchor === ".") return 1n;
  if (anchor === "..") return 2n;
  let at = 2;
  while (at < listing.length && decodeName(listing.name(at)) <= anchor) at++;
  return BigInt(at);
}

function decodeName(name: Uint8Array): string {
  return lenientUtf8.decode(name);
}

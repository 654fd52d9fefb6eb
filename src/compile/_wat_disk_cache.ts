/**
 * An on-disk cache of the binaries compiled from WAT, keyed by the SHA-256 of
 * the text, so that later runs skip the WAT compiler.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const logger = getLogger(["wasmplug", "cache"]);

/** How long a read of a cache entry may take (a few MB from a local disk: milliseconds). */
const CACHE_READ_MS = 2000;

/**
 * Reads the cached binary for `key`, or `undefined`: a miss, an unreadable
 * cache, or an entry that is not a valid module (cut short by a full disk,
 * say), which the caller then compiles again and overwrites. An entry that
 * is not a regular file (a FIFO would block the read for ever, a link to
 * `/dev/zero` never end it) or is larger than `maxBytes` is not read, and a
 * read is given up after {@linkcode CACHE_READ_MS} (an entry swapped for a
 * FIFO after the check).
 *
 * @param maxBytes The most bytes the module may have (its text bounds it).
 */
export async function readCachedBinary(
  dir: string,
  key: string,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const path = `${dir}/${key}.wasm`;
  try {
    const entry = await Deno.stat(path);
    const bytes = entry.isFile && entry.size <= maxBytes
      ? await readAtMost(path, maxBytes)
      : undefined;
    if (bytes === undefined) {
      logger.warn("Ignoring the module cache entry {path}: it is not a file of a module", { path });
      return undefined;
    }
    if (WebAssembly.validate(bytes)) return bytes;
    logger.warn("Ignoring the module cache entry {path}: it is not a valid module", { path });
    return undefined;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      logger.warn("Cannot read the module cache at {dir}: {error}", { dir, error: String(err) });
    }
    return undefined;
  }
}

/**
 * The bytes of the file at `path` if there are at most `maxBytes` of them
 * (read through one handle: a file that says it is empty, `/proc/self/pagemap`,
 * may have no end), else `undefined`; a read that takes longer than
 * {@linkcode CACHE_READ_MS} is given up (`undefined`).
 */
async function readAtMost(
  path: string,
  maxBytes: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const late = timeLeft(performance.now() + CACHE_READ_MS);
  const opening = Deno.open(path);
  const file = await Promise.race([opening, late]);
  if (file === undefined) {
    // A FIFO swapped in after the check: its open waits for a writer. Closed if one comes.
    opening.then((late) => late.close(), () => {});
    return undefined;
  }
  try {
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    while (length <= maxBytes) {
      const read = await Promise.race([file.read(buffer.subarray(length)), late]);
      if (read === undefined) return undefined;
      if (read === null) return buffer.slice(0, length);
      length += read;
    }
    return undefined; // longer than it may be
  } finally {
    file.close();
  }
}

/** Resolves to `undefined` at `deadline` (a timer that keeps no process alive). */
function timeLeft(deadline: number): Promise<undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - performance.now()));
    Deno.unrefTimer(timer);
  });
}

/** Stores a binary under `key`; a failure only logs a warning. */
export async function writeCachedBinary(
  dir: string,
  key: string,
  bytes: Uint8Array,
): Promise<void> {
  const path = `${dir}/${key}.wasm`;
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (err) {
    logger.warn("Cannot write the module cache at {dir}: {error}", { dir, error: String(err) });
    await Deno.remove(temporary).catch(() => {});
  }
}

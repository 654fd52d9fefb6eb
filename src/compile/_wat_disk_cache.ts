/**
 * An on-disk cache of the binaries compiled from WAT, keyed by the SHA-256 of
 * the text, so that later runs skip the WAT compiler.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const logger = getLogger(["wasmplug", "cache"]);

/**
 * Reads the cached binary for `key`, or `undefined`: a miss, an unreadable
 * cache, or an entry that is not a valid module (cut short by a full disk,
 * say), which the caller then compiles again and overwrites.
 */
export async function readCachedBinary(dir: string, key: string): Promise<Uint8Array | undefined> {
  const path = `${dir}/${key}.wasm`;
  try {
    const bytes = await Deno.readFile(path);
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

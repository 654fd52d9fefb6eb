/**
 * Reading a plugin's module from a path or URL for `PluginManager.loadFile`:
 * bounded, cancellable, and named after the file.
 *
 * @module
 */

import { CompilationError } from "./errors.ts";

/**
 * The most bytes a module file may have: as much as WAT may (the WAT
 * compiler's bound) and the module cache holds by default. A larger body is
 * not read on: a server that streamed 300 MB had the host buffer it whole.
 */
export const MAX_MODULE_FILE_BYTES = 256 * 1024 * 1024;

/**
 * Reads the module at `path`: an `http:` or `https:` URL (a `URL`, or text
 * that starts so) is fetched, a path or `file:` URL read, with the caller's
 * permissions. Only a regular file is read (a FIFO or a device would block,
 * or never end; one swapped in between the check and the open still
 * blocks the open: a folder the application owns holds its plugins), and at most
 * `maxBytes` ({@linkcode MAX_MODULE_FILE_BYTES}); `signal` ends the read.
 *
 * @example
 * ```ts ignore
 * const bytes = await readModuleFile("plugins/math.wasm", AbortSignal.timeout(10_000));
 * ```
 *
 * @throws {CompilationError} If the file or body is larger than the bound.
 * @throws {Deno.errors.NotFound} If there is no such file.
 * @throws {TypeError} If it is not a regular file, the server answered an
 * error, or the URL's scheme is neither `file:`, `http:` nor `https:`.
 */
export async function readModuleFile(
  path: string | URL,
  signal: AbortSignal,
  maxBytes: number = MAX_MODULE_FILE_BYTES,
): Promise<Uint8Array> {
  signal.throwIfAborted();
  path = asUrl(path);
  if (path instanceof URL && (path.protocol === "http:" || path.protocol === "https:")) {
    const response = await fetch(path, { signal });
    if (!response.ok) {
      await response.body?.cancel();
      throw new TypeError(`Cannot load ${path}: the server answered ${response.status}`);
    }
    const declared = Number(response.headers.get("content-length") ?? 0);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw tooLarge(path, declared, maxBytes);
    }
    return await readAtMost(response.body, { path, signal, maxBytes });
  }
  if (path instanceof URL && path.protocol !== "file:") {
    throw new TypeError(`Cannot load ${path}: only file:, http: and https: URLs are read`);
  }
  const info = await Deno.stat(path);
  if (!info.isFile) throw new TypeError(`Cannot load ${path}: it is not a regular file`);
  if (info.size > maxBytes) throw tooLarge(path, info.size, maxBytes);
  const file = await Deno.open(path);
  // The stream closes the file when it ends, fails or is cancelled (a close that came while it
  // was opened too).
  return await readAtMost(file.readable, { path, signal, maxBytes });
}

/**
 * The plugin name a module file gives: its file name without `.wasm` or
 * `.wat`, a URL's decoded (no query, no fragment).
 *
 * @example
 * ```ts ignore
 * moduleFileName(new URL("https://example.com/my%20plugin.wasm?v=2")); // "my plugin"
 * ```
 *
 * @throws {TypeError} If that leaves no name: pass one in the config.
 */
export function moduleFileName(path: string | URL): string {
  path = asUrl(path);
  const text = path instanceof URL ? decodedPath(path) : path;
  const name = text.split(/[\\/]/).pop()!.replace(/\.(wasm|wat)$/, "");
  if (name === "") {
    throw new TypeError(`Cannot name a plugin after ${String(path)}: give it a name in its config`);
  }
  return name;
}

/** `path` as a URL when it is one written as text (`https://…`, `file:…`), else as it is. */
function asUrl(path: string | URL): string | URL {
  return typeof path === "string" && /^(https?|file):/i.test(path) ? new URL(path) : path;
}

/** Whether the module at `path` is named as WAT (`.wat`). */
export function namedAsWat(path: string | URL): boolean {
  path = asUrl(path);
  return (path instanceof URL ? path.pathname : path).endsWith(".wat");
}

function decodedPath(url: URL): string {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    return url.pathname; // a stray `%`: the name as written
  }
}

/** Reads `body` whole, failing once it passes `maxBytes`. */
async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  { path, signal, maxBytes }: {
    readonly path: string | URL;
    readonly signal: AbortSignal;
    readonly maxBytes: number;
  },
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const cancel = (): void => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (true) {
      signal.throwIfAborted();
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) break;
      length += value.length;
      if (length > maxBytes) throw tooLarge(path, length, maxBytes, "at least ");
      chunks.push(value);
    }
  } catch (err) {
    // Whatever ended the read (an abort before it began too) closes what it read from.
    await reader.cancel().catch(() => {});
    throw err;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function tooLarge(
  path: string | URL,
  size: number,
  maxBytes: number,
  atLeast = "",
): CompilationError {
  return new CompilationError(
    `Cannot load ${String(path)}: ${atLeast}${size} bytes, more than ${maxBytes}`,
  );
}

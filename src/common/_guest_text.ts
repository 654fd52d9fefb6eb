/**
 * The decoders of text a guest gives (names, keys, paths, log records,
 * strings crossing a worker's channel). A leading U+FEFF is the text's, not a
 * byte order mark to drop: decoders drop it by default, and `"\ufeffname"`
 * read as `"name"` (an export that could not be called, an import that passed
 * for another).
 *
 * @module
 */

/**
 * Decodes UTF-8 with U+FFFD for invalid bytes, keeping a leading U+FEFF.
 *
 * @example
 * ```ts ignore
 * lenientUtf8.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])); // "\ufeffa"
 * ```
 */
export const lenientUtf8: TextDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decodes UTF-8, throwing on invalid bytes, keeping a leading U+FEFF.
 *
 * @example
 * ```ts ignore
 * strictUtf8.decode(new Uint8Array([0xff])); // throws a TypeError
 * ```
 */
export const strictUtf8: TextDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

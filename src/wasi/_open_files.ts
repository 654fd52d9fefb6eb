/**
 * How many descriptors a WASI instance may have open at once, stdio and
 * preopens included: by default, and at most for a plugin
 * (`wasi.maxOpenFiles`).
 *
 * @module
 */

/** The default of `maxOpenFiles`. */
export const DEFAULT_MAX_OPEN_FILES = 256;

/** The largest `wasi.maxOpenFiles` a plugin config may ask for. */
export const MAX_OPEN_FILES = 4096;

/**
 * Entry module of `src/common/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * Small helpers every folder shares: describing a value in an error
 * message and checking an options object for unknown keys.
 *
 * @module
 */

export { describeValue } from "./_format.ts";
export { assertKnownKeys } from "./_known_keys.ts";

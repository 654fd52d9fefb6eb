/**
 * The shared words of `crowd_floor.ts` and its worker (`_ring_worker.ts`):
 * a ring of requests per worker, and one bell for the host.
 *
 * @module
 */

/** Index of the count of requests the host wrote. */
export const RING_SENT = 0;
/** Index of the count of requests the worker answered. */
export const RING_DONE = 1;
/** Index of the word set while the worker sleeps. */
export const RING_SLEEPS = 2;
/** Index of the word the host sets to end the worker. */
export const RING_CLOSE = 3;
/** The ring's slots (a power of two). */
export const RING_SLOTS = 8;
/** Index of the first request slot. */
export const RING_REQUESTS = 16;
/** Index of the first answer slot. */
export const RING_ANSWERS = RING_REQUESTS + RING_SLOTS;
/** Index in the bell of the count the workers bump, and of the word set while the host sleeps. */
export const BELL_RUNG = 0;
/** Index in the bell of the word set while the host sleeps on it. */
export const BELL_SLEEPS = 1;

/** What the host sends the worker at the start. */
export interface RingSetup {
  readonly block: SharedArrayBuffer;
  readonly bell: SharedArrayBuffer;
  readonly module: WebAssembly.Module;
}

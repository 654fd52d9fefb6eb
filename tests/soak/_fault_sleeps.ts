/**
 * The sleep lengths that make the soak's worker entry (`_faulty_worker.ts`)
 * misbehave. A module of their own, so that the worker's module graph stays
 * inside `tests/soak/` (the soak grants workers read access to it only).
 *
 * @module
 */

/**
 * Sleeping exactly this long crashes the plugin's worker when it runs the
 * soak's worker entry (`_faulty_worker.ts`); elsewhere it is a long sleep.
 */
export const CRASH_SLEEP_MS = 1_000_003;

/**
 * Sleeping exactly this long makes the soak's worker entry spin for 10 s,
 * deaf to interrupts, so the host has to terminate it.
 */
export const STUCK_SLEEP_MS = 1_000_033;

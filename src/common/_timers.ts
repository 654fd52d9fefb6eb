/**
 * The longest delay `setTimeout` takes as it is: 2^31 - 1 ms (about 24.8
 * days). A longer one fires at once, so every timer of a limit, an idle
 * time or a boot bound is clamped to it (and re-armed where it must wait
 * longer).
 *
 * @example
 * ```ts ignore
 * setTimeout(onIdle, Math.min(idleTimeoutMs, MAX_TIMER_MS));
 * ```
 *
 * @module
 */

/** Largest delay `setTimeout` takes as is (a larger one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

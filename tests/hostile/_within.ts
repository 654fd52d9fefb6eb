/**
 * The wall-clock bound of the hostile-plugin tests.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Generous upper bound for any single hostile call, in milliseconds. */
export const BOUND_MS = 2_000;

/** Runs `fn` and asserts it settled (either way) within {@linkcode BOUND_MS}. */
export async function within<T>(fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    const elapsed = performance.now() - start;
    assert.ok(elapsed < BOUND_MS, `took ${elapsed.toFixed(0)} ms, expected under ${BOUND_MS} ms`);
  }
}

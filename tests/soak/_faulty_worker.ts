/**
 * The plugin worker of a soak: the real worker entry, with the worker's
 * `setTimeout` (which `host_sleep_ms` sleeps with, in the worker) taking two
 * sleep lengths as orders to fail in ways a guest cannot:
 *
 * - {@linkcode CRASH_SLEEP_MS}: an uncaught exception ends the worker;
 * - {@linkcode STUCK_SLEEP_MS}: the worker's thread spins for 10 s, deaf to
 *   interrupts, until the host terminates it.
 *
 * Every other timer is left alone. Unlike `tests/worker/fixtures/faulty_worker.ts`
 * this needs no network permission: `Capability.Timer` grants the worker none.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import "../../src/worker/_worker_main.ts";
import { CRASH_SLEEP_MS, STUCK_SLEEP_MS } from "./_fault_sleeps.ts";

type SetTimeout = (handler: () => void, ms?: number, ...args: unknown[]) => number;

const timers = globalThis as unknown as { setTimeout: SetTimeout };
const realSetTimeout = timers.setTimeout;

timers.setTimeout = (handler, ms, ...args) => {
  if (ms === CRASH_SLEEP_MS) {
    realSetTimeout(() => {
      throw new Error("The soak's worker crashed on purpose");
    });
  } else if (ms === STUCK_SLEEP_MS) {
    const end = performance.now() + 10_000;
    while (performance.now() < end) {
      // deaf to everything
    }
  }
  return realSetTimeout(handler, ms, ...args);
};

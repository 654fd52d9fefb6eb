/**
 * Helpers of the red-team suites (`redteam_*_test.ts`): a test per isolation
 * that can be ignored in one isolation only (a known break), settled outcomes
 * of calls, and a probe of the host's event-loop lag.
 *
 * @module
 */

import { type Isolation, WasmError } from "../../mod.ts";
import {
  allowingWorkers,
  type IsolationKit,
  isolationKit,
  ISOLATIONS,
  RUN_SLOW,
  SLOW,
} from "../_helpers.ts";

/** Options of {@linkcode redteamTest}. */
export interface RedteamOptions {
  /** Isolations in which the test is a known, not yet fixed, break (`ignore: true`). */
  readonly ignore?: readonly Isolation[];
  /** Only these isolations (both by default). */
  readonly only?: readonly Isolation[];
  /** A long run, for `deno task test:slow` (see {@linkcode SLOW}). */
  readonly slow?: boolean;
}

/** Registers `<name> (<isolation>)` for each isolation, with no permissions but the worker's sources. */
export function redteamTest(
  name: string,
  options: RedteamOptions,
  fn: (t: Deno.TestContext, kit: IsolationKit) => Promise<void>,
): void {
  for (const isolation of options.only ?? ISOLATIONS) {
    const slow = options.slow === true;
    Deno.test({
      name: `${slow ? SLOW : ""}${name} (${isolation})`,
      ignore: (options.ignore?.includes(isolation) ?? false) || (slow && !RUN_SLOW),
      permissions: isolation === "worker" ? allowingWorkers("none") : "none",
      fn: (t) => fn(t, isolationKit(isolation)),
    });
  }
}

/** How a promise settled, and when (ms after `t0`). */
export interface Outcome {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: unknown;
  readonly ms: number;
}

/** Waits for `promise` and records how it settled, never rejecting. */
export async function outcome(promise: Promise<unknown>, t0 = performance.now()): Promise<Outcome> {
  try {
    const value = await promise;
    return { ok: true, value, ms: performance.now() - t0 };
  } catch (error) {
    return { ok: false, error, ms: performance.now() - t0 };
  }
}

/** A readable description of an outcome, for assertion messages. */
export function describe(o: Outcome): string {
  if (o.ok) return `resolved with ${String(o.value)} after ${o.ms.toFixed(0)} ms`;
  const e = o.error;
  const kind = e instanceof WasmError ? ` (${e.kind})` : "";
  return `rejected with ${
    e instanceof Error ? `${e.name}${kind}: ${e.message}` : String(e)
  } after ${o.ms.toFixed(0)} ms`;
}

/** Measures the longest gap between 5 ms timer ticks until stopped. */
export function lagProbe(): () => number {
  let max = 0;
  let last = performance.now();
  const id = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 5);
  return () => {
    clearInterval(id);
    const now = performance.now();
    return Math.max(max, now - last);
  };
}

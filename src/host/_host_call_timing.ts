/**
 * Slow host calls, kept for the OpenTelemetry span of the plugin call they
 * ran in. Free of the OpenTelemetry API, so that the host functions that
 * also load in a plugin's worker can use it: the check whether a tracer is
 * registered is installed by `_otel.ts`, which only the host thread loads.
 *
 * @module
 */

import { currentHostCallOwner } from "./_host_call_scope.ts";

/** Host calls at least this long become events of the call's span. */
export const SLOW_HOST_CALL_MS = 1;
/** Slow host calls kept for spans not yet ended (the oldest go first). */
const MAX_PENDING_HOST_CALLS = 256;

/** One slow host call. */
export interface PendingHostCall {
  /** The host-call scope owner, or `undefined` for an inline linker function (no scope). */
  readonly owner: object | undefined;
  readonly label: string;
  readonly startMs: number;
  readonly endMs: number;
}

let pendingHostCalls: PendingHostCall[] = [];
let tracing: () => boolean = () => false;

/** Installs the check whether a tracer is registered (by `_otel.ts`). */
export function setTracingCheck(check: () => boolean): void {
  tracing = check;
}

/**
 * `performance.now()` when a host call starts and a tracer is registered,
 * else -1: the host call then skips {@linkcode hostCallEnded}.
 */
export function hostCallStarted(): number {
  return tracing() ? performance.now() : -1;
}

/**
 * Keeps a host call that took at least {@linkcode SLOW_HOST_CALL_MS} for the
 * span of the plugin call it ran in.
 *
 * @param owner The plugin's host-call owner, when known.
 * @param label What was called (`"env.slow_lookup"`, `"tool search"`).
 * @param startMs What {@linkcode hostCallStarted} returned.
 */
export function hostCallEnded(owner: object | undefined, label: string, startMs: number): void {
  const endMs = performance.now();
  if (endMs - startMs < SLOW_HOST_CALL_MS) return;
  if (pendingHostCalls.length >= MAX_PENDING_HOST_CALLS) pendingHostCalls.shift();
  pendingHostCalls.push({ owner, label, startMs, endMs });
}

/**
 * Wraps an application's linker function so that, while a tracer is
 * registered, a call of it that takes long becomes an event of the plugin
 * call's span. Without one it costs a lookup per host call.
 *
 * @param label What the event names (`"env.lookup"`).
 */
export function timedHostFunction<A extends unknown[], R>(
  label: string,
  fn: (...args: A) => R,
): (...args: A) => R {
  return (...args) => {
    const startMs = hostCallStarted();
    if (startMs < 0) return fn(...args);
    // A worker's linker calls run in the plugin's host-call scope; inline ones in none.
    const owner = currentHostCallOwner();
    let value: R;
    try {
      value = fn(...args);
    } catch (err) {
      // A slow host function that failed is the one to see in the call's span.
      hostCallEnded(owner, label, startMs);
      throw err;
    }
    if (value instanceof Promise) {
      return value.finally(() => hostCallEnded(owner, label, startMs)) as R;
    }
    hostCallEnded(owner, label, startMs);
    return value;
  };
}

const NONE: readonly PendingHostCall[] = [];

/**
 * The slow host calls of one plugin call, taken from the pending list: those
 * of its host-call owner, and, inline, the owner-less ones (inline linker
 * functions) that ran during the call. Others stay for the calls still
 * running; what no span takes (telemetry turned off meanwhile) is pushed out
 * by newer entries.
 */
export function takeHostCalls(
  owner: object,
  inline: boolean,
  startMs: number,
  endMs: number,
): readonly PendingHostCall[] {
  if (pendingHostCalls.length === 0) return NONE;
  const mine: PendingHostCall[] = [];
  const kept: PendingHostCall[] = [];
  for (const host of pendingHostCalls) {
    const during = host.startMs >= startMs && host.endMs <= endMs;
    if (during && (host.owner === owner || (inline && host.owner === undefined))) {
      mine.push(host);
    } else {
      kept.push(host);
    }
  }
  pendingHostCalls = kept;
  return mine;
}

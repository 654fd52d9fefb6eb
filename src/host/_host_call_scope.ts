/**
 * Which plugins' host functions the current code runs inside of, so that a
 * host function (or a tool) that calls back into its own plugin fails at
 * once with a `PluginStateError` instead of waiting for a call that waits
 * for it — a deadlock that only the call's deadline would end.
 *
 * The scope follows the host function through its `await`s (Deno's
 * `AsyncLocalStorage`); entering one costs about 0.2 µs, so only the host
 * calls that can wait enter it: tools, and every host call of a worker.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { PluginStateError } from "../errors.ts";

interface Scope {
  readonly owner: object;
  readonly outer: Scope | undefined;
}

const scopes = new AsyncLocalStorage<Scope>();

/** Runs `fn(...args)` as a host call of `owner` (a plugin's host environment). */
export function runInHostCall<A extends unknown[], R>(
  owner: object,
  fn: (...args: A) => R,
  ...args: A
): R {
  return scopes.run({ owner, outer: scopes.getStore() }, fn, ...args);
}

/**
 * Throws a `PluginStateError` when the current code runs inside a host call
 * of `owner`: `action` (e.g. `Cannot call "f" on plugin "p"`) would wait for
 * `waiter`, which waits for that host call.
 */
export function assertNotInHostCallOf(owner: object, action: string, waiter: string): void {
  if (!isInHostCallOf(owner)) return;
  throw new PluginStateError(
    `${action} from one of its own host functions: ${waiter} is waiting for that host function to return`,
    { state: "running" },
  );
}

/** The owner of the innermost host call the current code runs inside of, if any. */
export function currentHostCallOwner(): object | undefined {
  return scopes.getStore()?.owner;
}

/** True when the current code runs inside a host call of `owner`, at any depth. */
export function isInHostCallOf(owner: object): boolean {
  for (let scope = scopes.getStore(); scope !== undefined; scope = scope.outer) {
    if (scope.owner === owner) return true;
  }
  return false;
}

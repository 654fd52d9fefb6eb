/**
 * Calls posted ahead of their turn: while a worker plugin's call runs, the
 * calls waiting behind it are posted to its worker already (see
 * `PluginBackend.invokeAhead`), so the worker goes from one to the next
 * without a round trip to the host between them. Each still takes its turn
 * on the host as it would have: its state changes, events, metrics and
 * result come in line.
 *
 * @module
 */

import type { AheadCall } from "./backend/mod.ts";

/**
 * A call waiting for its plugin's turn (the tag it waits with in the
 * plugin's `CallQueue`), which may be posted ahead.
 *
 * @example
 * ```ts ignore
 * const waiting = new WaitingCall(() => backend.invokeAhead(name, args, budget));
 * const taken = queue.take(waiting);
 * postWaitingAhead(queue.waitingTags());
 * ```
 */
export class WaitingCall {
  /** The call as posted ahead, until it runs or is taken back. */
  ahead: AheadCall | undefined;
  /** Whether posting was tried and settled (posted, or refused for good). */
  #settled = false;
  readonly #post: () => AheadCall | null | undefined;

  /**
   * `post` posts the call ahead and returns it; `null` when the call cannot
   * run at all (its checks fail again at its turn, and it runs nothing);
   * `undefined` when the backend cannot take it now.
   */
  constructor(post: () => AheadCall | null | undefined) {
    this.#post = post;
  }

  /** Marks the call as never to be posted (it left the line), unless it was. */
  withdraw(): void {
    this.#settled = true;
    this.ahead = undefined;
  }

  /** Posts the call unless it was; returns whether the calls behind it may be posted. */
  tryPost(): boolean {
    if (this.#settled) return true;
    const ahead = this.#post();
    if (ahead === undefined) return false;
    this.#settled = true;
    if (ahead !== null) this.ahead = ahead;
    return true;
  }
}

/**
 * Posts the calls at the front of a plugin's line ahead, in order, as far
 * as the backend takes them; stops at anything else in line (a pause, an
 * initializer, a stop), which nothing passes.
 *
 * @example
 * ```ts ignore
 * postWaitingAhead(queue.waitingTags());
 * ```
 */
export function postWaitingAhead(line: readonly unknown[]): void {
  for (const waiting of line) {
    if (!(waiting instanceof WaitingCall) || !waiting.tryPost()) return;
  }
}

/**
 * Takes back the calls of a plugin's line posted ahead, last first, as far
 * as the worker has not begun them: those run when their turn comes as if
 * never posted (a stopping plugin refuses them), the others run as posted.
 *
 * @example
 * ```ts ignore
 * retractWaitingAhead(queue.waitingTags()); // stop() was called
 * ```
 */
export function retractWaitingAhead(line: readonly unknown[]): void {
  for (let i = line.length - 1; i >= 0; i--) {
    const waiting = line[i];
    if (!(waiting instanceof WaitingCall) || waiting.ahead === undefined) continue;
    if (!waiting.ahead.retract()) return;
    waiting.ahead = undefined;
  }
}

/**
 * The soak's book of calls: every call is entered when it is issued and
 * struck off when it settles, so a call that never settles (lost) shows up in
 * the counts. (A promise cannot settle twice; that the runtime reports each
 * call once is checked against the manager's counts instead.)
 *
 * @module
 */

/** A call entered in the ledger. */
export interface CallRecord {
  /** Its number, in order of issue. */
  readonly id: number;
  /** The plugin it went to. */
  readonly plugin: string;
  /** What it was (`"add"`, `"timeout"`, …). */
  readonly action: string;
  /** When it was issued (`performance.now()`). */
  readonly issuedAt: number;
}

/** How a call ended, and how long it took. */
export type Settlement =
  | { readonly ok: true; readonly value: unknown; readonly ms: number }
  | {
    readonly ok: false;
    readonly error: unknown;
    readonly ms: number;
    /** True when the call threw instead of returning a rejected promise. */
    readonly threw: boolean;
  };

/** Counts of a {@linkcode CallLedger}. */
export interface LedgerCounts {
  /** Calls issued. */
  readonly issued: number;
  /** Calls settled. */
  readonly settled: number;
  /** Issued and not settled. */
  readonly pending: number;
}

/** Enters calls as they are issued and strikes them off as they settle. */
export class CallLedger {
  readonly #pending = new Map<number, CallRecord>();
  #issued = 0;
  #settled = 0;

  /**
   * Enters a call, runs it, and resolves (never rejects) with how it
   * settled once it has.
   */
  track(plugin: string, action: string, run: () => Promise<unknown>): Promise<Settlement> {
    const record: CallRecord = { id: this.#issued++, plugin, action, issuedAt: performance.now() };
    this.#pending.set(record.id, record);
    const elapsed = (): number => performance.now() - record.issuedAt;
    let promise: Promise<unknown>;
    try {
      promise = run();
    } catch (error) {
      this.#settle(record);
      return Promise.resolve({ ok: false, error, ms: elapsed(), threw: true });
    }
    return promise.then(
      (value) => {
        this.#settle(record);
        return { ok: true, value, ms: elapsed() };
      },
      (error) => {
        this.#settle(record);
        return { ok: false, error, ms: elapsed(), threw: false };
      },
    );
  }

  #settle(record: CallRecord): void {
    this.#pending.delete(record.id);
    this.#settled++;
  }

  /** The counts so far. */
  counts(): LedgerCounts {
    return {
      issued: this.#issued,
      settled: this.#settled,
      pending: this.#pending.size,
    };
  }

  /** The calls issued and not settled, oldest first. */
  pending(): CallRecord[] {
    return [...this.#pending.values()];
  }
}

/**
 * What a soak counts as its calls settle: outcomes, injected faults, calls
 * ended by their plugin's restart, unexpected outcomes, and the latency of
 * successful normal calls.
 *
 * @module
 */

import { PluginNotFoundError, PluginStateError, WasmError } from "../../mod.ts";
import { type Action, describe, type Expectation, mismatch, SoakAbort } from "./_actions.ts";
import { LatencyHistogram } from "./_histogram.ts";
import type { Settlement } from "./_ledger.ts";

/** How many unexpected outcomes a report describes (all are counted). */
const EXAMPLES = 20;

/** A count per name, in insertion order. */
export type Counts = Record<string, number>;

/** The tally of a soak. */
export class Tally {
  /** Settled calls by outcome: `ok`, an error `kind`, `aborted`, `wrong_result`… */
  readonly outcomes: Counts = {};
  /** Faults injected, by name. */
  readonly faults: Counts = {};
  /**
   * Calls that ended with a `PluginStateError` or `PluginNotFoundError`
   * because their plugin was restarted while they were queued or running,
   * by the action they were.
   */
  readonly collateral: Counts = {};
  /** Latencies of successful normal calls, issue to settlement. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  /** Successful calls into a plugin (what the manager must count as successes). */
  okCalls = 0;
  /** Outcomes no rule explains. */
  unexpected = 0;
  /** Descriptions of the first unexpected outcomes. */
  readonly examples: string[] = [];

  /**
   * Counts how a call of `action` settled, where `killed` says whether its
   * plugin was restarted since it was issued.
   */
  record(
    plugin: string,
    action: Action,
    expect: Expectation,
    settlement: Settlement,
    killed: boolean,
  ): void {
    const wrong = mismatch(expect, settlement);
    const outcome = settlement.ok
      ? (wrong === undefined ? "ok" : "wrong_result")
      : outcomeOf(settlement.error);
    bump(this.outcomes, outcome);
    if (settlement.ok) this.okCalls++;
    if (action.fault) bump(this.faults, action.name);
    if (wrong === undefined) {
      if (!action.fault) this.latency.record(settlement.ms);
      return;
    }
    if (killed && !settlement.ok && !settlement.threw && isCollateral(settlement.error)) {
      bump(this.collateral, action.name);
      return;
    }
    this.fail(`${action.name} on ${plugin}: ${wrong}`);
  }

  /** Counts a restart (not a plugin call, so not an outcome), which must succeed. */
  recordRestart(plugin: string, settlement: Settlement): void {
    bump(this.faults, "restart");
    if (!settlement.ok) this.fail(`restart of ${plugin}: ${describe(settlement.error)}`);
  }

  /** Counts an unexpected outcome. */
  fail(description: string): void {
    this.unexpected++;
    if (this.examples.length < EXAMPLES) this.examples.push(description);
  }
}

function isCollateral(error: unknown): boolean {
  return error instanceof PluginStateError || error instanceof PluginNotFoundError;
}

/** The name a settled failure is counted under. */
function outcomeOf(error: unknown): string {
  if (error instanceof SoakAbort) return "aborted";
  if (error instanceof WasmError) return error.kind;
  return error instanceof Error ? error.name : "non_error";
}

function bump(counts: Counts, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

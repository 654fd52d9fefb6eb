/**
 * What the cases of one API fuzzing run share, and how a case runs its
 * operations: each outcome checked by the property (`_property.ts`) and
 * counted.
 *
 * @module
 */

import type { CompiledModule, Isolation, PluginManager, WasmRuntime } from "../../mod.ts";
import type { Next } from "./_mutate.ts";
import type { DrawnOperation, Target } from "./_operations.ts";
import {
  type Operation,
  PropertyViolation,
  settle,
  type Settled,
  show,
  type Tally,
} from "./_property.ts";
import type { ConfigPaths } from "./_configs.ts";

/** A long-lived plugin and the normal call it must keep answering. */
export interface PoolEntry {
  readonly target: Target;
  readonly canary: () => Promise<unknown>;
  readonly expected: unknown;
  /** True for the plugin of `ALL_HOST_FUNCTIONS_WAT` (host calls apply to it). */
  readonly host: boolean;
}

/** Everything the cases of one run share. */
export interface Run {
  readonly isolation: Isolation;
  readonly runtime: WasmRuntime;
  readonly manager: PluginManager;
  readonly pool: readonly PoolEntry[];
  /** Modules every config case can use. */
  readonly known: readonly CompiledModule[];
  readonly texts: readonly string[];
  readonly binaries: readonly Uint8Array[];
  readonly paths: ConfigPaths;
  readonly tally: Tally;
  readonly next: Next;
}

function sameBytes(a: unknown, b: unknown): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length &&
    a.every((x, i) => x === b[i]);
}

/** Runs operations at once, counts their outcomes, and disposes them. */
export async function runAll(
  run: Run,
  operations: readonly DrawnOperation[],
  where: string,
): Promise<Settled[]> {
  try {
    return await Promise.all(operations.map(async (operation) => {
      const settled = await settle(operation, where);
      run.tally.add(operation.stage, settled.label);
      return settled;
    }));
  } finally {
    for (const operation of operations) operation.dispose();
  }
}

/** Runs one operation and counts its outcome under `stage`. */
export async function runOne(
  run: Run,
  stage: string,
  operation: Operation,
  where: string,
): Promise<Settled> {
  const settled = await settle(operation, where);
  run.tally.add(stage, settled.label);
  return settled;
}

/**
 * Checks that a pool plugin still answers its normal call. A timeout is
 * retried: on a machine busy enough, a normal call can run out of time.
 */
export async function checkCanary(entry: PoolEntry, where: string): Promise<void> {
  let actual: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      actual = await entry.canary();
    } catch (error) {
      actual = (error as { kind?: unknown }).kind ?? error;
    }
    if (actual !== "timeout") break;
  }
  const ok = entry.expected instanceof Uint8Array
    ? sameBytes(actual, entry.expected)
    : actual === entry.expected;
  if (!ok) {
    throw new PropertyViolation(
      `${where}: plugin "${entry.target.label}" no longer answers its normal call: expected ${
        show(entry.expected)
      }, got ${show(actual)}`,
      { cause: actual },
    );
  }
}

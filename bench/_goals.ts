/**
 * The performance goals the bench checks: each is a ratio of two medians
 * measured side by side in one run, and a bound it should stay within.
 *
 * @module
 */

/** The result groups of `bench/results.json` that have ratios. */
export type GroupName =
  | "callOverhead"
  | "workerCalls"
  | "instrumentation"
  | "thirdParty"
  | "peers"
  | "otel";

/** A bound on one ratio of one group. */
export interface Goal {
  /** What is compared, for the report. */
  readonly description: string;
  readonly group: GroupName;
  /** The ratio's key in the group's `ratios`. */
  readonly ratio: string;
  /** `"atLeast"`: the ratio must be ≥ target; `"atMost"`: ≤ target. */
  readonly bound: "atLeast" | "atMost";
  readonly target: number;
  /**
   * The key in the same group of the ratio a floor reaches in the same run
   * (a bare design with none of wasmplug's work): when the floor misses the
   * target too, no design of that kind meets it on this machine.
   */
  readonly floorRatio?: string;
}

/** A goal with the ratio measured, `null` when its group was not measured. */
export interface GoalResult extends Goal {
  readonly value: number | null;
  readonly met: boolean | null;
  /** The floor's ratio, when the goal has one and it was measured. */
  readonly floor: number | null;
}

/** Every goal, in the order the report lists them. */
export const GOALS: readonly Goal[] = [
  {
    description: "quiet: postMessage round trip ÷ worker `callI32`",
    group: "workerCalls",
    ratio: "postMessageVsWorkerCallI32",
    bound: "atLeast",
    target: 20,
    floorRatio: "postMessageVsMinimalSab",
  },
  {
    description: "busy: worker `callI32` ÷ postMessage round trip",
    group: "workerCalls",
    ratio: "busyWorkerCallI32VsPostMessage",
    bound: "atMost",
    target: 0.5,
    floorRatio: "busyMinimalSabVsPostMessage",
  },
  {
    description: "crowd: worker `callI32`, 50 plugins × 4 callers ÷ one caller",
    group: "workerCalls",
    ratio: "crowdVsSingleWorkerCallI32",
    bound: "atMost",
    target: 2,
  },
  {
    description: "worker `callBytes` of 16 B ÷ worker `callI32`",
    group: "workerCalls",
    ratio: "callBytes16VsCallI32",
    bound: "atMost",
    target: 1.3,
    floorRatio: "callBytes16FloorVsCallI32",
  },
  {
    description: 'inline `callI32("count")`, default limits ÷ Extism in-process `call("count")`',
    group: "peers",
    ratio: "inlineCallVsExtism",
    bound: "atMost",
    target: 1,
    floorRatio: "clockFloorVsExtism",
  },
  {
    description: "inline `callI32`, OpenTelemetry API loaded, no provider ÷ its check off",
    group: "otel",
    ratio: "otelNoProviderVsOff",
    bound: "atMost",
    target: 1.05,
  },
  {
    description: "instrumented ÷ plain, recursive fib",
    group: "instrumentation",
    ratio: "fibInstrumentedVsPlain",
    bound: "atMost",
    target: 1.3,
  },
  {
    description: "instrumented ÷ plain, C qsort with a comparator",
    group: "instrumentation",
    ratio: "qsortInstrumentedVsPlain",
    bound: "atMost",
    target: 1.3,
  },
  {
    description: "instrumented ÷ plain, loop without calls",
    group: "instrumentation",
    ratio: "loopInstrumentedVsPlain",
    bound: "atMost",
    target: 1.1,
  },
];

/** Checks every goal against the ratios of the groups measured. */
export function evaluateGoals(
  groups: Partial<Record<GroupName, { ratios: Record<string, number> }>>,
): GoalResult[] {
  return GOALS.map((goal) => {
    const ratios = groups[goal.group]?.ratios;
    const value = ratios?.[goal.ratio] ?? null;
    const floor = goal.floorRatio === undefined ? null : ratios?.[goal.floorRatio] ?? null;
    const met = value === null
      ? null
      : goal.bound === "atLeast"
      ? value >= goal.target
      : value <= goal.target;
    return { ...goal, value, met, floor };
  });
}

/** The bound as text, e.g. `≤ 1.3x`. */
export function formatTarget(goal: Goal): string {
  return `${goal.bound === "atLeast" ? "≥" : "≤"} ${goal.target}x`;
}

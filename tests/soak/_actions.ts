/**
 * What a soak's callers do: normal calls whose results are checked, and
 * injected faults whose errors are checked, each through the plugin manager.
 * (Restarting a plugin is a fault too; the harness does it, since it replaces
 * the plugin.)
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import {
  CallDepthExceededError,
  FuelExhaustedError,
  type Isolation,
  MemoryOutOfBoundsError,
  type PluginHandle,
  type PluginManager,
  TimeoutError,
  TrapError,
  WorkerCrashedError,
} from "../../mod.ts";
import type { Settlement } from "./_ledger.ts";
import type { Rng } from "./_rng.ts";
import { CRASH_SLEEP_MS, type Flavor, STUCK_SLEEP_MS } from "./_soak_plugin.ts";

/** The `timeoutMs` of an injected timeout. */
export const FAULT_TIMEOUT_MS = 30;
/** The `fuel` of an injected fuel exhaustion. */
export const FAULT_FUEL = 20_000;
/** The `timeoutMs` of a call whose worker gets stuck. */
export const STUCK_TIMEOUT_MS = 50;
/** How long after its start an aborted call is aborted. */
export const ABORT_AFTER_MS = 5;
/** A sleep no call is meant to finish. */
const NAP_MS = 60_000;

/** The plugin a call goes to. */
export interface Target {
  readonly manager: PluginManager;
  readonly handle: PluginHandle;
  /** Its id, which is also its `id` config value. */
  readonly id: string;
  readonly flavor: Flavor;
  readonly isolation: Isolation;
}

// deno-lint-ignore no-explicit-any
type ErrorClass = abstract new (...args: any[]) => Error;

/** How a call must settle. */
export type Expectation =
  /** Resolves to a value deeply equal to this one. */
  | { readonly value: unknown }
  /** Rejects with an instance of `error` whose `fields` are as given. */
  | { readonly error: ErrorClass; readonly fields?: Readonly<Record<string, unknown>> }
  /** Rejects with exactly this (an abort signal's reason). */
  | { readonly reason: unknown };

/** A call ready to issue, and how it must settle. */
export interface PreparedCall {
  readonly run: () => Promise<unknown>;
  readonly expect: Expectation;
}

/** One kind of call a soak makes. */
export interface Action {
  /** Its name in the report. */
  readonly name: string;
  /** True for an injected fault. */
  readonly fault: boolean;
  /**
   * How often it is drawn relative to the others of its group (normal calls,
   * faults); 1 when absent.
   */
  readonly weight?: number;
  /** Whether plugins of this isolation and flavor can do it. */
  available(isolation: Isolation, flavor: Flavor): boolean;
  /** Draws the call's inputs. */
  prepare(target: Target, rng: Rng): PreparedCall;
}

/** The reason a soak aborts a call with; a call it aborts must reject with that very object. */
export class SoakAbort extends Error {
  constructor() {
    super("The soak aborted the call");
    this.name = "SoakAbort";
  }
}

const always = (): boolean => true;
const asyncOnly = (_: Isolation, flavor: Flavor): boolean => flavor === "async";
const workerAsyncOnly = (isolation: Isolation, flavor: Flavor): boolean =>
  isolation === "worker" && flavor === "async";

const utf8 = new TextEncoder();
const ALPHABET = ["a", "z", "0", " ", '"', "\\", "\n", "é", "€", "😀"];

/** The calls whose results are checked. */
export const NORMAL_ACTIONS: readonly Action[] = [
  {
    name: "add",
    fault: false,
    available: always,
    prepare: ({ manager, handle }, rng) => {
      const [a, b] = [rng.int32(), rng.int32()];
      return { run: () => manager.callI32(handle, "add", [a, b]), expect: { value: (a + b) | 0 } };
    },
  },
  {
    name: "div",
    fault: false,
    available: always,
    prepare: ({ manager, handle }, rng) => {
      const a = rng.between(-1_000_000, 1_000_000);
      const b = rng.between(1, 1000) * (rng.chance(0.5) ? 1 : -1);
      return {
        run: () => manager.callI32(handle, "div", [a, b]),
        expect: { value: Math.trunc(a / b) | 0 },
      };
    },
  },
  {
    name: "bytes",
    fault: false,
    available: always,
    prepare: ({ manager, handle }, rng) => {
      const input = rng.bytes(rng.int(65));
      return {
        run: () => manager.callBytes(handle, "reverse", input),
        expect: { value: input.slice().reverse() },
      };
    },
  },
  {
    name: "json",
    fault: false,
    available: always,
    prepare: ({ manager, handle, id }, rng) => {
      const text = Array.from({ length: rng.int(24) }, () => rng.pick(ALPHABET)).join("");
      const value = { plugin: id, n: rng.int32(), text, list: [rng.chance(0.5), null] };
      return { run: () => manager.callJson(handle, "echo", value), expect: { value } };
    },
  },
  {
    name: "host_function",
    fault: false,
    available: always,
    prepare: ({ manager, handle, id }) => ({
      run: () => manager.callBytes(handle, "whoami", new Uint8Array()),
      expect: { value: utf8.encode(id) },
    }),
  },
  {
    name: "async_tool",
    fault: false,
    available: asyncOnly,
    prepare: ({ manager, handle }, rng) => {
      const [a, b] = [rng.between(-1000, 1000), rng.between(-1000, 1000)];
      return {
        run: () => manager.callJson(handle, "tool", { a, b }),
        expect: { value: { sum: a + b } },
      };
    },
  },
];

/** The faults injected by calling the plugin. */
export const FAULT_ACTIONS: readonly Action[] = [
  {
    name: "timeout",
    fault: true,
    available: always,
    prepare: ({ manager, handle, flavor }, rng) => {
      // An async plugin is stopped either while it runs or while it waits on the host.
      const [fn, args] = flavor === "async" && rng.chance(0.5) ? ["nap", [NAP_MS]] : ["spin", []];
      return {
        run: () => manager.callVoid(handle, fn, args, { timeoutMs: FAULT_TIMEOUT_MS }),
        expect: { error: TimeoutError, fields: { timeoutMs: FAULT_TIMEOUT_MS } },
      };
    },
  },
  {
    name: "trap_unreachable",
    fault: true,
    available: always,
    prepare: ({ manager, handle }) => ({
      run: () => manager.callVoid(handle, "boom"),
      expect: { error: TrapError },
    }),
  },
  {
    name: "trap_divide_by_zero",
    fault: true,
    available: always,
    prepare: ({ manager, handle }, rng) => ({
      run: () => manager.callI32(handle, "div", [rng.int32(), 0]),
      expect: { error: TrapError },
    }),
  },
  {
    name: "fuel",
    fault: true,
    available: always,
    prepare: ({ manager, handle }) => ({
      run: () => manager.callVoid(handle, "spin", [], { fuel: FAULT_FUEL }),
      expect: { error: FuelExhaustedError, fields: { fuelLimit: FAULT_FUEL } },
    }),
  },
  {
    name: "call_depth",
    fault: true,
    available: always,
    prepare: ({ manager, handle }) => ({
      run: () => manager.callI32(handle, "recurse", [0]),
      expect: { error: CallDepthExceededError },
    }),
  },
  {
    name: "out_of_bounds",
    fault: true,
    available: always,
    prepare: ({ manager, handle }, rng) => {
      const input = rng.bytes(rng.between(1, 16));
      return {
        run: () => manager.callBytes(handle, "lie", input),
        expect: { error: MemoryOutOfBoundsError },
      };
    },
  },
  {
    name: "abort",
    fault: true,
    available: always,
    prepare: ({ manager, handle, flavor, isolation }) => {
      const reason = new SoakAbort();
      const controller = new AbortController();
      // An inline guest spinning on the host thread leaves no turn for a timer:
      // it is aborted before it starts. The others are aborted while they run.
      const before = isolation === "inline" && flavor === "sync";
      const [fn, args] = flavor === "async" ? ["nap", [NAP_MS]] : ["spin", []];
      return {
        run: async () => {
          if (before) controller.abort(reason);
          const timer = before
            ? undefined
            : setTimeout(() => controller.abort(reason), ABORT_AFTER_MS);
          try {
            return await manager.callVoid(handle, fn, args, { signal: controller.signal });
          } finally {
            clearTimeout(timer);
          }
        },
        expect: { reason },
      };
    },
  },
  {
    name: "worker_crash",
    fault: true,
    // Deno prints every uncaught worker error on stderr, handled or not: keep it rare.
    weight: 0.25,
    available: workerAsyncOnly,
    prepare: ({ manager, handle }) => ({
      run: () => manager.callVoid(handle, "nap", [CRASH_SLEEP_MS]),
      expect: { error: WorkerCrashedError },
    }),
  },
  {
    name: "worker_stuck",
    fault: true,
    // It keeps a core busy until the host gives up on the worker.
    weight: 0.25,
    available: workerAsyncOnly,
    prepare: ({ manager, handle }) => ({
      run: () => manager.callVoid(handle, "nap", [STUCK_SLEEP_MS], { timeoutMs: STUCK_TIMEOUT_MS }),
      expect: { error: TimeoutError, fields: { timeoutMs: STUCK_TIMEOUT_MS } },
    }),
  },
];

/**
 * Says how a settlement differs from what was expected, or returns
 * `undefined` when it is as expected.
 */
export function mismatch(expect: Expectation, settlement: Settlement): string | undefined {
  if (!settlement.ok && settlement.threw) {
    return `threw synchronously: ${describe(settlement.error)}`;
  }
  if ("value" in expect) {
    if (!settlement.ok) return `expected a result, got ${describe(settlement.error)}`;
    return isDeepStrictEqual(settlement.value, expect.value)
      ? undefined
      : `expected ${show(expect.value)}, got ${show(settlement.value)}`;
  }
  if (settlement.ok) return `expected a rejection, got the result ${show(settlement.value)}`;
  const error = settlement.error;
  if ("reason" in expect) {
    return error === expect.reason
      ? undefined
      : `expected the abort reason, got ${describe(error)}`;
  }
  if (!(error instanceof expect.error)) {
    return `expected ${expect.error.name}, got ${describe(error)}`;
  }
  for (const [key, value] of Object.entries(expect.fields ?? {})) {
    const found = (error as unknown as Record<string, unknown>)[key];
    if (!isDeepStrictEqual(found, value)) {
      return `expected ${expect.error.name} with ${key} = ${show(value)}, got ${show(found)}`;
    }
  }
  return undefined;
}

/** An error as `Name (kind): message`. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return show(error);
  const kind = (error as { kind?: unknown }).kind;
  return `${error.name}${typeof kind === "string" ? ` (${kind})` : ""}: ${error.message}`;
}

function show(value: unknown): string {
  if (value instanceof Uint8Array) return `bytes [${value.join(", ")}]`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

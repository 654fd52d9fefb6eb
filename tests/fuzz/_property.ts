/**
 * The property every fuzzed API call must have, and the bookkeeping around
 * it: what outcomes are allowed, a watchdog per case, a watch for unhandled
 * rejections and uncaught errors, and a tally of outcomes.
 *
 * An operation ends in one of:
 *
 * - a result;
 * - a `WasmError` (any kind: the fuzzer feeds invalid modules, hostile
 *   arguments and tight limits, so every kind is a legitimate answer);
 * - the abort reason of the `AbortSignal` the operation was given, as
 *   `CallOptions.signal` documents ("it rejects with the signal's reason");
 * - a `TypeError` or `RangeError`, only for an operation given a JS-level
 *   invalid argument (`jsInvalid`): a value outside the parameter's
 *   TypeScript type (a config, options object, name, offset or input of the
 *   wrong type or out of range). The project's convention (`errors.ts`, the
 *   README's Resource limits section) is that bad arguments throw these. What
 *   the guest controls, and what fits the parameter's type but not the wasm
 *   signature (an argument list of the wrong length or types, a missing
 *   export), must end in a `WasmError`, never a `TypeError`;
 * - a `RangeError` for call options whose `fuel` or `timeoutMs` is above the
 *   plugin's own limit (API.md, "Per-call budgets": never clamped silently).
 *
 * Anything else is a violation: another exception, a promise-returning API
 * that throws synchronously, an unhandled rejection, or a case that does not
 * settle within its watchdog.
 *
 * @module
 */

import { WasmError } from "../../mod.ts";

/** One call of the public API, described for the report of a violation. */
export interface Operation {
  /** What is called, with a summary of its arguments. */
  readonly what: string;
  /** Calls it; a promise-returning API must not throw synchronously. */
  readonly run: () => unknown;
  /** True when `run` was given a JS-level invalid argument: a `TypeError`/`RangeError` is allowed. */
  readonly jsInvalid: boolean;
  /** True for an API that returns a value rather than a promise (it may throw). */
  readonly synchronous?: boolean;
  /** The signal the call was given: rejecting with its reason is allowed. */
  readonly signal?: AbortSignal;
}

/** What an operation ended in. */
export type Settled =
  | { readonly ok: true; readonly value: unknown; readonly label: "returned" }
  | { readonly ok: false; readonly error: unknown; readonly label: string };

/** A property violation, naming the case and the operation. */
export class PropertyViolation extends Error {
  /** Creates the violation. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PropertyViolation";
  }
}

/** A short, safe description of any value (cyclic objects and symbols included). */
export function show(value: unknown): string {
  try {
    const text = Deno.inspect(value, { depth: 2, iterableLimit: 8, strAbbreviateSize: 40 });
    return text.length > 160 ? `${text.slice(0, 157)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The message of a per-call budget above the plugin's limit. */
const ABOVE_LIMIT = /^Cannot call with '(fuel|timeoutMs)' = .*: it is above the plugin's max/;

/** The label of an allowed failure, or `undefined` when `error` violates the property. */
function failureLabel(operation: Operation, error: unknown): string | undefined {
  if (error instanceof WasmError) {
    if (typeof error.kind !== "string" || typeof error.message !== "string") return undefined;
    return error.kind;
  }
  if (operation.signal?.aborted === true && error === operation.signal.reason) return "aborted";
  if (operation.jsInvalid && (error instanceof TypeError || error instanceof RangeError)) {
    return error.name;
  }
  if (error instanceof RangeError && ABOVE_LIMIT.test(error.message)) return "above_limit";
  return undefined;
}

/**
 * Runs one operation and checks its outcome.
 *
 * @throws {PropertyViolation} Naming `where` and the operation, when the outcome is not allowed.
 */
export async function settle(operation: Operation, where: string): Promise<Settled> {
  let value: unknown;
  try {
    value = operation.run();
  } catch (error) {
    if (operation.synchronous !== true) {
      throw new PropertyViolation(
        `${where}: ${operation.what} threw synchronously instead of rejecting: ${show(error)}`,
        { cause: error },
      );
    }
    return checked(operation, error, where);
  }
  try {
    return { ok: true, value: await value, label: "returned" };
  } catch (error) {
    return checked(operation, error, where);
  }
}

function checked(operation: Operation, error: unknown, where: string): Settled {
  const label = failureLabel(operation, error);
  if (label === undefined) {
    throw new PropertyViolation(
      `${where}: ${operation.what} failed with ${show(error)}${
        operation.jsInvalid ? "" : " (its arguments were JS-level valid)"
      }`,
      { cause: error },
    );
  }
  return { ok: false, error, label };
}

/**
 * Awaits `work`, failing with a violation naming `where` when it has not
 * settled after `ms` milliseconds.
 *
 * @throws {PropertyViolation} When the watchdog fires first.
 */
export async function watchdog<T>(work: Promise<T>, ms: number, where: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PropertyViolation(`${where}: did not settle within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records unhandled rejections and uncaught errors while it is alive. */
export class UncaughtWatch implements Disposable {
  readonly #seen: string[] = [];
  #where = "before the first case";
  readonly #onRejection = (event: PromiseRejectionEvent): void => {
    event.preventDefault();
    this.#seen.push(`${this.#where}: an unhandled rejection: ${show(event.reason)}`);
  };
  readonly #onError = (event: ErrorEvent): void => {
    event.preventDefault();
    this.#seen.push(`${this.#where}: an uncaught error: ${show(event.error ?? event.message)}`);
  };

  /** Starts watching. */
  constructor() {
    globalThis.addEventListener("unhandledrejection", this.#onRejection);
    globalThis.addEventListener("error", this.#onError);
  }

  /** Names the case now running, for the report. */
  enter(where: string): void {
    this.#where = `during or after ${where}`;
  }

  /**
   * Fails if anything went uncaught so far.
   *
   * @throws {PropertyViolation} Listing what went uncaught.
   */
  check(): void {
    if (this.#seen.length > 0) throw new PropertyViolation(this.#seen.join("\n"));
  }

  /** Stops watching. */
  [Symbol.dispose](): void {
    globalThis.removeEventListener("unhandledrejection", this.#onRejection);
    globalThis.removeEventListener("error", this.#onError);
  }
}

/** Counts of outcomes by label, per stage (e.g. `compile`, `create`, `call`). */
export class Tally {
  /** The counts: `stage → label → count`. */
  readonly counts: Record<string, Record<string, number>> = {};

  /** Counts one outcome of `stage`. */
  add(stage: string, label: string): void {
    const labels = this.counts[stage] ??= {};
    labels[label] = (labels[label] ?? 0) + 1;
  }

  /** How many outcomes of `stage` had `label` (all labels when omitted). */
  count(stage: string, label?: string): number {
    const labels = this.counts[stage] ?? {};
    if (label !== undefined) return labels[label] ?? 0;
    return Object.values(labels).reduce((sum, n) => sum + n, 0);
  }

  /** The `stage: label` pairs of `expected` that were never counted. */
  missing(expected: Record<string, readonly string[]>): string[] {
    return Object.entries(expected).flatMap(([stage, labels]) =>
      labels.filter((label) => this.count(stage, label) === 0).map((label) => `${stage}: ${label}`)
    );
  }

  /** The counts on one line per stage, most frequent first. */
  toString(): string {
    return Object.entries(this.counts)
      .map(([stage, labels]) =>
        `${stage}: ${
          Object.entries(labels).sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label} ${n}`)
            .join(", ")
        }`
      )
      .join("\n");
  }
}

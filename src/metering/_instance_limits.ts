/**
 * The host side of an instrumented instance: sets the budgets before each
 * call, reads what was consumed and which limit stopped it, and answers
 * the clock hook (stopping a call when asked). Kept apart from the rewriter
 * so that a plugin's worker loads only this.
 *
 * @module
 */

import {
  FUEL_LEFT_EXPORT,
  PREPARE_EXPORT,
  STACK_BASE_EXPORT,
  STACK_POINTER_EXPORT,
  type TrapReason,
} from "./_contract.ts";
import type { InstrumentMetadata } from "./_metadata.ts";

/** Largest budget the prepare function takes exactly (as an `f64`). */
const MAX_EXACT = 2 ** 53;

/**
 * Largest fuel slice the clock hook grows the interval to: 2^18 units, some
 * 25-250 µs of a tight loop. Units are not time: a guest can warm the pacing
 * with fast code and then run code that is slow per unit (a `throw` caught in
 * a loop; loads that miss every cache, 100-150 ns each), and the next hook
 * call comes only after a whole slice of it. With slices of up to 2^40
 * units, a 50 ms timeout ended after 587 ms inline; with 2^20, a chase of
 * pointers through 4 MiB of memory ended it after 130-160 ms, and a worker
 * so held was terminated after its grace (its memory lost); with 2^18, it
 * ends within 5 ms of it (256 pages) or 20-30 ms (4096 pages). A hook call
 * costs some 0.1-0.2 µs: with 2^16, fib and qsort ran 2-5 % slower (the
 * instrumentation bench); with 2^18, as with 2^20. (Any run of the slow path leaves
 * V8's code for a call-heavy function like fib 5-12 % slower from then on,
 * with byte-identical machine code: a plugin whose calls last longer than
 * one slice pays that, whatever the bound.)
 */
const MAX_SLICE = 1n << 18n;
/**
 * Largest number of checks between hook calls without fuel, for the same
 * reason: a check stands for a loop iteration or a call, some tens of units.
 */
const MAX_CHECKS = 1 << 13;
/**
 * Most host function returns between two reads of the clock. Host functions
 * run outside fuel: a guest calling a 10 µs host function in a loop ended a
 * 50 ms inline timeout after 5.5 s, since the hook comes once per slice of
 * units, not of time. The clock is read every few returns instead, fewer
 * while they come fast. A guest can warm this up with cheap host calls and
 * then make slow ones: a call may overrun its deadline by this many of
 * them (with 64, a 0.3 ms host function that throws, caught by the guest,
 * overran a 100 ms timeout by 19 ms; a read every 16 costs a host call
 * ≈ 5 ns, with a clock read at ≈ 80 ns).
 */
const MAX_HOST_CALLS_PER_READ = 16;
/**
 * Bytes of guest memory a host function reads or writes that count as one
 * more return (see {@linkcode InstanceLimits.hostCallEnded}): a host function
 * that moves a MiB (≈ 0.1-1 ms of copying or decoding) makes the next
 * return read the clock, however fast the returns before came.
 */
const HOST_BYTES_PER_CALL = 16 * 1024;

/** `(module (import "h" "f" (func (result i32))) (export "f" (func 0)))` */
// deno-fmt-ignore
const HOOK_MODULE_BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
  0x02, 0x07, 0x01, 0x01, 0x68, 0x01, 0x66, 0x00, 0x00,
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
]);

let hookModule: WebAssembly.Module | undefined;

/**
 * Wraps a JS function as a wasm function of type `[] -> [i32]`, which can be
 * stored in the `"clock"` mode hook table.
 *
 * @param check Returns `true` when the deadline passed.
 */
export function createDeadlineHook(check: () => boolean): () => number {
  hookModule ??= new WebAssembly.Module(HOOK_MODULE_BYTES);
  const f = (): number => (check() ? 1 : 0);
  return new WebAssembly.Instance(hookModule, { h: { f } }).exports.f as () => number;
}

/** Budgets for one top-level call, see {@linkcode InstanceLimits.prepare}. */
export interface CallBudget {
  /** Fuel units the call may consume. Ignored without the fuel pass. */
  fuel?: bigint | number;
  /** Maximum number of live wasm frames. Ignored without the depth pass. */
  maxCallDepth?: number;
  /** `performance.now()` value after which the call stops (`"clock"` mode). */
  deadline?: number;
  /** The current `performance.now()`, when the caller has just read it. */
  now?: number;
}

/** What an {@linkcode InstanceLimits} asks its host while a call runs (`"clock"` mode). */
export interface InstanceLimitsOptions {
  /**
   * Whether another thread asked the running call to stop: the clock hook
   * asks it at each of its calls and stops the call if so.
   */
  stopRequested?: () => boolean;
  /**
   * The running call's deadline, for a call armed with a `NaN` deadline (its
   * host left the clock unread): the clock hook asks it once, at its first
   * call, with the current time.
   */
  deadlineAt?: (now: number) => number;
}

/** Host-side control of one instance of an instrumented module. */
export class InstanceLimits {
  readonly #trap: WebAssembly.Global | null;
  readonly #fuel: WebAssembly.Global | null;
  readonly #reserve: WebAssembly.Global | null;
  readonly #depth: WebAssembly.Global | null;
  /** The running call's depth limit, which {@linkcode unwind} gives back. */
  #maxCallDepth = 1000;
  readonly #ticks: WebAssembly.Global | null;
  readonly #interval: WebAssembly.Global | null;
  readonly #start: (() => void) | null;
  /** The module's prepare and fuel-left functions (see `_prepare.ts`), when it has them. */
  readonly #prepare: ((fuel: number, depth: number) => void) | null;
  readonly #fuelLeft: (() => number) | null;
  /** Whether the fuel may be too large for the fuel-left function to return exactly (until a small budget is set). */
  #wide = true;
  #deadline = Infinity;
  #lastCheck = 0;
  readonly #stopRequested: (() => boolean) | null;
  /** Whether the module checks a deadline, so that {@linkcode interrupt} stops it. */
  readonly #checksDeadline: boolean;
  #hostCallsLeft = 1;
  #hostCallsPerRead = 1;
  #lastHostRead = 0;
  readonly #deadlineAt: ((now: number) => number) | null;
  /**
   * The guest's stack pointer, when the instrumenter found one (see
   * `STACK_POINTER_EXPORT`), and the global the prepare function keeps its
   * value in as each call begins.
   */
  readonly #stack:
    | { readonly pointer: WebAssembly.Global; readonly base: WebAssembly.Global }
    | null;

  /**
   * Binds to an instance; in `"clock"` mode also installs the deadline hook.
   *
   * @param instance An instance of {@linkcode InstrumentResult.bytes}.
   * @param metadata What {@linkcode instrument} returned (or its metadata fields).
   * @param options What the clock hook asks while a call runs.
   */
  constructor(
    instance: WebAssembly.Instance,
    metadata: InstrumentMetadata,
    options: InstanceLimitsOptions = {},
  ) {
    const exports = instance.exports;
    const global = (name: string | null | undefined): WebAssembly.Global | null =>
      name === null || name === undefined ? null : exports[name] as WebAssembly.Global;
    this.#trap = global(metadata.trapGlobal);
    this.#fuel = global(metadata.fuelGlobal);
    this.#depth = global(metadata.depthGlobal);
    const deadline = metadata.deadline;
    const pacing = deadline?.pacing ?? null;
    this.#ticks = pacing?.by === "checks" ? global(pacing.ticksGlobal) : null;
    this.#reserve = pacing?.by === "fuel" ? global(pacing.reserveGlobal) : null;
    this.#interval = global(pacing?.intervalGlobal);
    this.#stopRequested = options.stopRequested ?? null;
    this.#deadlineAt = options.deadlineAt ?? null;
    this.#checksDeadline = deadline !== null;
    if (deadline !== null) {
      const table = exports[deadline.table] as WebAssembly.Table;
      table.set(0, createDeadlineHook(() => this.#checkClock()));
    }
    const stack = exports[STACK_POINTER_EXPORT];
    const base = exports[STACK_BASE_EXPORT];
    this.#stack = stack instanceof WebAssembly.Global && base instanceof WebAssembly.Global
      ? { pointer: stack, base }
      : null;
    const start = metadata.startFunction === null ? undefined : exports[metadata.startFunction];
    this.#start = typeof start === "function" ? start as () => void : null;
    const prepare = exports[PREPARE_EXPORT];
    this.#prepare = typeof prepare === "function"
      ? prepare as (fuel: number, depth: number) => void
      : null;
    const fuelLeft = exports[FUEL_LEFT_EXPORT];
    this.#fuelLeft = typeof fuelLeft === "function" ? fuelLeft as () => number : null;
  }

  #checkClock(): boolean {
    const now = performance.now();
    // Aim for a hook call about every millisecond, whatever the loop's speed
    // (a call armed without the time does not adapt at its first hook call).
    const elapsed = now - this.#lastCheck;
    this.#lastCheck = now;
    const interval = this.#interval;
    if (interval !== null) {
      const current = interval.value as number | bigint;
      if (typeof current === "bigint") {
        if (elapsed < 0.5 && current < MAX_SLICE) interval.value = current * 2n;
        else if (elapsed > 2 && current > 1n) interval.value = current >> 1n;
      } else {
        if (elapsed < 0.5 && current < MAX_CHECKS) interval.value = current * 2;
        else if (elapsed > 2 && current > 1) interval.value = current >> 1;
      }
    }
    return this.#mustStop(now);
  }

  /**
   * Whether the running call must stop now: its deadline passed, it was
   * interrupted, or its host asked.
   */
  mustStop(): boolean {
    return this.#mustStop(performance.now());
  }

  /** Whether the running call must stop: its deadline passed, or its host asked. */
  #mustStop(now: number): boolean {
    let deadline = this.#deadline;
    if (Number.isNaN(deadline)) deadline = this.#deadline = this.#deadlineAt?.(now) ?? Infinity;
    return now >= deadline || this.#stopRequested?.() === true;
  }

  /**
   * Counts a host function's return (or throw). Every few returns (see
   * {@linkcode MAX_HOST_CALLS_PER_READ}) it reads the clock, and if the call
   * must stop, makes its next check trap: host code runs outside fuel, so
   * the units between two hook calls say nothing of the time it took.
   *
   * @param bytes The guest memory the host function read and wrote: each
   * {@linkcode HOST_BYTES_PER_CALL} of it counts as one more return.
   */
  hostCallEnded(bytes = 0): void {
    this.#hostCallsLeft -= bytes < HOST_BYTES_PER_CALL ? 1 : 1 + bytes / HOST_BYTES_PER_CALL;
    if (this.#hostCallsLeft > 0 || !this.#checksDeadline) return;
    const now = performance.now();
    // About every half millisecond: fewer returns per read while they come slowly.
    const elapsed = now - this.#lastHostRead;
    this.#lastHostRead = now;
    let perRead = this.#hostCallsPerRead;
    if (elapsed > 1 && perRead > 1) perRead >>= 1;
    else if (elapsed < 0.25 && perRead < MAX_HOST_CALLS_PER_READ) perRead <<= 1;
    this.#hostCallsLeft = this.#hostCallsPerRead = perRead;
    if (this.#mustStop(now)) this.interrupt();
  }

  /**
   * Resets the instrumentation state and sets the budgets of the next
   * top-level call. Call it before every call: a trapped call leaves the state
   * dirty.
   */
  prepare(budget: CallBudget = {}): void {
    this.#maxCallDepth = budget.maxCallDepth ?? 1000;
    this.#deadline = budget.deadline ?? Infinity;
    this.#lastCheck = budget.now ?? performance.now();
    const fuel = budget.fuel ?? 0;
    const exact = typeof fuel === "number"
      ? Number.isInteger(fuel) && Math.abs(fuel) <= MAX_EXACT
      : fuel >= -MAX_EXACT && fuel <= MAX_EXACT;
    this.#wide = !exact;
    if (exact && this.#prepare !== null) {
      // One wasm call sets every global, without BigInt conversions.
      this.#prepare(Number(fuel), budget.maxCallDepth ?? 1000);
      return;
    }
    this.#setGlobals(budget);
  }

  /**
   * {@linkcode prepare} for the call path: the same budgets as numbers, so a
   * call makes no budget object and, while the fuel fits an `f64` exactly, no
   * BigInt.
   *
   * @param fuel Fuel units the call may consume (an integer).
   * @param maxCallDepth Maximum number of live wasm frames.
   * @param deadline `performance.now()` value after which the call stops,
   * or `NaN` to leave it to {@linkcode InstanceLimitsOptions.deadlineAt}.
   * @param now The current `performance.now()`, or `NaN` when not read.
   */
  prepareCall(fuel: number, maxCallDepth: number, deadline: number, now: number): void {
    this.#maxCallDepth = maxCallDepth;
    if (this.#prepare === null || !(Number.isInteger(fuel) && Math.abs(fuel) <= MAX_EXACT)) {
      this.prepare({ fuel: BigInt(fuel), maxCallDepth, deadline, now });
      return;
    }
    this.#deadline = deadline;
    this.#lastCheck = now;
    this.#wide = false;
    this.#prepare(fuel, maxCallDepth);
  }

  /** Sets each global of the budgets by itself (a module without the prepare function, or a wide budget). */
  #setGlobals(budget: CallBudget): void {
    // What the prepare function does too (see unwind).
    if (this.#stack !== null) this.#stack.base.value = this.#stack.pointer.value;
    if (this.#trap !== null) this.#trap.value = 0;
    if (this.#fuel !== null) {
      const total = BigInt(budget.fuel ?? 0);
      if (this.#reserve === null) {
        this.#fuel.value = total;
      } else {
        const interval = this.#interval!.value as bigint;
        const slice = total < interval ? total : interval;
        this.#fuel.value = slice;
        this.#reserve.value = total - slice;
      }
    }
    if (this.#depth !== null) this.#depth.value = budget.maxCallDepth ?? 1000;
    if (this.#ticks !== null) this.#ticks.value = this.#interval!.value;
  }

  /**
   * Puts the guest's stack pointer back where calls begin, after a call
   * that failed: a trap, a host function's error or a limit unwinds the
   * guest without its epilogues, so each failed call kept its frames'
   * space (about 100 bytes), and some 500 failures later a C or
   * AssemblyScript plugin failed every call. It goes back to where it was
   * as the call began (kept by the prepare function).
   */
  unwind(): void {
    // The frames are gone: the depth they took is free again (no epilogue gave it back).
    if (this.#depth !== null) this.#depth.value = this.#maxCallDepth;
    if (this.#stack === null) return;
    const base = this.#stack.base.value as number;
    // 0 before any call was prepared (a failed start function): nothing to go back to.
    if (base !== 0) this.#stack.pointer.value = base;
  }

  /**
   * When the instrumentation last read the clock (`performance.now()`): at a
   * deadline check or after host calls, maybe in an earlier call; `NaN` or
   * `0` when it never did.
   */
  get lastClockRead(): number {
    const check = this.#lastCheck;
    const hostRead = this.#lastHostRead;
    return check > hostRead ? check : hostRead;
  }

  /**
   * Moves the running call's deadline to `until` if it is sooner: time its
   * host took to answer was not its own (see `PluginInstance.extendDeadline`).
   * A deadline not read yet, and an interrupted call, stay as they are.
   */
  extendDeadline(until: number): void {
    if (Number.isFinite(this.#deadline) && this.#deadline < until) this.#deadline = until;
  }

  /** Makes the running (or next) call stop at its next deadline check. */
  interrupt(): void {
    this.#deadline = -Infinity;
    if (this.#ticks !== null) this.#ticks.value = 1;
    if (this.#reserve !== null) {
      // Send the next charge to the slow path, which checks the deadline.
      const slice = this.#fuel!.value as bigint;
      if (slice > 0n) {
        this.#reserve.value = (this.#reserve.value as bigint) + slice;
        this.#fuel!.value = 0n;
      }
    }
  }

  /** Runs the module's deferred start function, if it had one. */
  runStart(): void {
    this.#start?.();
  }

  /**
   * {@linkcode fuelRemaining} as a number, for the call path: no BigInt
   * while the budget fits an `f64` exactly.
   */
  get fuelLeft(): number {
    if (this.#fuel === null) return 0;
    if (!this.#wide && this.#fuelLeft !== null) return this.#fuelLeft();
    return Number(this.fuelRemaining);
  }

  /** Fuel left after the last call (negative once exhausted), `0n` without fuel. */
  get fuelRemaining(): bigint {
    if (this.#fuel === null) return 0n;
    if (!this.#wide && this.#fuelLeft !== null) return BigInt(this.#fuelLeft());
    const slice = this.#fuel.value as bigint;
    return this.#reserve === null ? slice : slice + (this.#reserve.value as bigint);
  }

  /** Which limit stopped the last call, {@linkcode TrapReason.None} if none did. */
  get trapReason(): TrapReason {
    return (this.#trap === null ? 0 : this.#trap.value) as TrapReason;
  }
}

/**
 * The one narrow interface between a {@linkcode WasmPlugin} and where its
 * instance lives. The inline backend implements it on the host thread; the
 * worker backend implements it across a thread boundary.
 *
 * @module
 */

import type { CallBudget } from "./_call_budget.ts";

/** Per-call budgets, re-exported from `_call_budget.ts` where they are resolved and watched. */
export type { CallBudget };

/** What a WASI command did (see `RunResult`). */
export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  readonly outputTruncated: boolean;
}

/**
 * A bytes-ABI call (see ABI.md), run whole where the instance lives: `alloc`,
 * copy the input in, the function, copy the output out, free, under one
 * budget. Plain data, so it crosses to a worker as one request.
 */
export interface BytesCall {
  /** The export taking `(ptr, len)`. */
  readonly fn: string;
  readonly input: Uint8Array;
  /** `true`: `fn` returns a packed `(ptr << 32) | len` i64 and the output is copied out; `false`: its i32. */
  readonly packedOutput: boolean;
  /** The allocator export. */
  readonly alloc: "alloc" | "malloc";
  /** The export that frees a buffer: `dealloc(ptr, len)`, `free(ptr)`, or none. */
  readonly free: "dealloc" | "free" | null;
}

/** A live plugin instance. */
export interface PluginBackend {
  /**
   * Calls an exported function with checked arguments and returns its raw JS
   * result (`undefined`, one value, or an array for multi-value). Synchronous
   * backends return the value itself, so the fast path allocates no promise.
   * Failures are thrown (or rejected) as `WasmError`s. `startMs` is the
   * caller's `performance.now()` at the start of the call; the deadline counts
   * from it.
   */
  invoke(name: string, args: readonly unknown[], budget: CallBudget, startMs: number): unknown;
  /**
   * Runs a bytes-ABI call whole, in one exchange with one fuel budget and one
   * deadline for all of its steps; returns (or resolves to) the i32 result or
   * the output, synchronously when the backend can, like `invoke`.
   */
  invokeBytes(
    call: BytesCall,
    budget: CallBudget,
    startMs: number,
  ): number | Uint8Array | Promise<number | Uint8Array>;
  /**
   * Posts a call to run as soon as the calls already posted end, before its
   * turn comes, when the backend can (a worker with a free channel, while a
   * call is in flight): a crowd of callers then keeps the worker busy
   * without a round trip between calls. `undefined` when it cannot: call
   * `invoke` when the turn comes, as usual. The caller must end every call
   * posted ahead with {@linkcode AheadCall.run} or a successful
   * {@linkcode AheadCall.retract}, in the order posted.
   */
  invokeAhead?(name: string, args: readonly unknown[], budget: CallBudget): AheadCall | undefined;
  /** {@linkcode invokeAhead} for a bytes-ABI call (see `invokeBytes`). */
  invokeBytesAhead?(call: BytesCall, budget: CallBudget): AheadCall | undefined;
  /**
   * Refuses arguments the backend cannot carry to its instance (a worker's
   * channel), before the call runs: a `TypeMismatchError` then is its
   * caller's, like any other argument check.
   */
  checkArguments?(name: string, args: readonly unknown[]): void;
  /**
   * Tells a backend that may replace its instance (a worker ended after a
   * crash or a call that would not stop) which initializers the plugin ran:
   * a fresh instance runs them again after its start function, so the
   * plugin stays initialized. (An instance taking parked state over does
   * not: its state comes back whole.)
   */
  keepInitialized?(initializers: readonly string[]): void;
  /**
   * Whether the code running now runs in a host function of the instance's
   * start (a worker started again runs its start function and initializers
   * while the plugin is `ready`): that start waits for it, so it can
   * neither call the plugin nor wait for it to stop.
   */
  inStartHostCall?(): boolean;
  /**
   * Ends the instance's start in progress, if any (a worker started again
   * for a memory access runs its initializers while the plugin is `ready`),
   * with `reason`, as an abort ends a call: `stop({ abort: true })`.
   */
  abortStart?(reason: unknown): void;
  /** Fuel used by the last `invoke`, `invokeBytes` or `runCommand`, 0 when fuel is not metered. */
  readonly lastFuelUsed: number;
  /**
   * Whether a call's deadline counts from the `startMs` it was given, so that
   * a call whose result came after it is late (inline). A worker's host
   * counts from when its worker is ready, and its timer says so itself.
   */
  readonly deadlineFromStart: boolean;
  /**
   * When the instance this backend's calls run on became ready
   * (`performance.now()`): a worker may be started during a call (it was
   * parked, or replaced after a crash), and the time before it is neither
   * the call's deadline's nor its duration's (a call aborted while it
   * started ran nothing: it sets it as it leaves). `0` for an instance that
   * is always there (inline).
   */
  readonly readyAt: number;
  /**
   * Runs the module as a WASI command in a fresh instance: `_start` with
   * `stdin`, returning the exit code and the captured output.
   */
  runCommand(stdin: Uint8Array, budget: CallBudget, startMs: number): Promise<CommandResult>;
  /** Size of the host-accessible memory in bytes, 0 without one. */
  memoryBytes(): number;
  /**
   * The memory size the instance of the last `runCommand` had when it ended
   * (failed or not), once: 0 afterwards, and without one. (A command runs in an
   * instance of its own, which `memoryBytes` does not see.)
   */
  takeCommandMemoryBytes(): number;
  /** Copies `length` bytes out of memory at `offset`. */
  readMemory(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
  /** Copies `data` into memory at `offset`. */
  writeMemory(offset: number, data: Uint8Array): void | Promise<void>;
  /** Releases the instance (and its thread). */
  close(): Promise<void>;
}

/** A call posted ahead of its turn (see {@linkcode PluginBackend.invokeAhead}). */
export interface AheadCall {
  /**
   * Runs the call once its turn has come (the calls posted before it ended):
   * the backend may have begun it already. Returns what `invoke` (or
   * `invokeBytes`) would have, synchronously when the call had ended
   * already; the deadline counts from `startMs`, or from when the call
   * began if that was earlier.
   */
  run(startMs: number): unknown;
  /**
   * Takes the call back unless it began: returns whether it did (the call
   * never runs then, and `run` must not be called).
   */
  retract(): boolean;
}

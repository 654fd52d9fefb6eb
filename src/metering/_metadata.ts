/**
 * What the host needs to drive an instrumented module (the exports the
 * instrumenter added), as `instrument()` returns it and `InstanceLimits`
 * reads it.
 *
 * @module
 */

/** What the host needs to drive an instrumented module; structured-cloneable. */
export interface InstrumentMetadata {
  /** Export name of the trap-reason global, or `null` when no pass is on. */
  readonly trapGlobal: string | null;
  /** Export name of the remaining-fuel `i64` global, or `null` without fuel. */
  readonly fuelGlobal: string | null;
  /** Export name of the remaining-depth `i32` global, or `null` without the depth pass. */
  readonly depthGlobal: string | null;
  /** The deadline mode and its exports, or `null` without the deadline pass. */
  readonly deadline: null | {
    readonly mode: "clock";
    /** Export name of the table whose slot 0 must hold the `[] -> [i32]` hook. */
    readonly table: string;
    /** How often the hook is called. */
    readonly pacing: DeadlinePacing;
  };
  /**
   * Export name of the module's start function when it had one: instrumented
   * modules do not run it on instantiation, so the host can set budgets first
   * and must call it before anything else.
   */
  readonly startFunction: string | null;
  /** What holds the instance's state, or `null` without `exportState`. */
  readonly state: StateExports | null;
}

/**
 * Where an instance's state is, so that it can be copied into a new instance
 * of the same module (see `InstrumentOptions.exportState`).
 */
export interface StateExports {
  /**
   * Why the memories and globals are not the whole state, or `null` when
   * they are: the module imports a memory, table or global, has GC types or
   * mutable globals of a reference or vector type, exports a table, or has
   * code that changes a table or drops a segment.
   */
  readonly incomplete: string | null;
  /** The defined memories (empty when `incomplete`). */
  readonly memories: readonly MemoryStateExport[];
  /** Export names of the mutable globals of a number type (empty when `incomplete`). */
  readonly globals: readonly string[];
}

/** A defined memory as {@linkcode StateExports} lists it. */
export interface MemoryStateExport {
  /** Its export name. */
  readonly name: string;
  /** Its page size in bytes, what `WebAssembly.Memory.grow` counts in. */
  readonly pageSize: number;
  /** Whether it is a 64-bit memory, whose `grow` takes a bigint. */
  readonly memory64: boolean;
}

/**
 * How often deadline checks call the hook: `null` at every
 * check; `"checks"` once every `interval` checks (an `i32` countdown);
 * `"fuel"` once per slice of at most `interval` fuel units, the rest of the
 * budget waiting in the reserve (`i64` globals).
 */
export type DeadlinePacing =
  | null
  | {
    readonly by: "checks";
    /** Export name of the countdown global. */
    readonly ticksGlobal: string;
    /** Export name of the interval global. */
    readonly intervalGlobal: string;
  }
  | {
    readonly by: "fuel";
    /** Export name of the reserve global. */
    readonly reserveGlobal: string;
    /** Export name of the interval global. */
    readonly intervalGlobal: string;
  };

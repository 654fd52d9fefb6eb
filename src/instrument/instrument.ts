/**
 * Bytecode instrumentation that makes resource limits enforceable on V8, which
 * has no fuel or epoch API: {@linkcode instrument} rewrites a module so that it
 * meters fuel, bounds its call depth and checks a deadline, keeping every
 * limit in an exported global the host writes before each call. No function,
 * global, table or memory index of the original module changes (globals,
 * a memory, a table and functions are appended), so element segments,
 * exports and the `name` section stay valid as they are; code metadata
 * custom sections, whose offsets rewriting moves, are dropped, and a branch
 * hint section marks the slow paths of the passes unlikely.
 *
 * Code is read twice and never recursively: `_scan.ts` decodes each body once,
 * assigning fuel costs and recording where code goes in; `_call_graph.ts`
 * finds the functions that can recurse; `_rewrite.ts` then copies each body
 * with the passes' code spliced in (`_fuel.ts`, `_call_depth.ts`,
 * `_deadline.ts`), calls of appended functions before bulk instructions
 * (`_bulk.ts`) and in place of atomic waits (`_atomic_wait.ts`). With fuel
 * on, most functions become a wrapper at their index and an appended variant
 * that takes the fuel and the depth in parameters, which direct calls pass in
 * registers (`_internal_calls.ts`, `_internal_body.ts`); the `name` section
 * names the variants too (`_names.ts`).
 *
 * {@linkcode InstanceLimits} is the host side: it sets budgets on an instance
 * of the instrumented module, reads what was consumed and says which limit
 * (if any) stopped a trapped call.
 *
 * @example Meter a call
 * ```ts ignore
 * const result = instrument(bytes, { fuel: true, callDepth: { max: 500 }, deadline: "clock" });
 * const instance = new WebAssembly.Instance(new WebAssembly.Module(result.bytes), imports);
 * const limits = new InstanceLimits(instance, result);
 * limits.prepare({ fuel: 1_000_000n, maxCallDepth: 500, deadline: performance.now() + 50 });
 * limits.runStart();
 * try {
 *   (instance.exports.run as () => void)();
 * } catch (error) {
 *   if (limits.trapReason === TrapReason.Fuel) throw new Error("Out of fuel", { cause: error });
 *   throw error;
 * }
 * const consumed = 1_000_000n - limits.fuelRemaining;
 * ```
 *
 * @module
 */

import { shownName } from "../common/mod.ts";
import { ByteReader } from "./_bytes.ts";
import { readRefType } from "./_value_type.ts";
import { type AppendedSections, appendEntry, CodeReader, CodeWriter } from "./_code.ts";
import { checkAddition, checkAppended, EngineLimitError } from "./_engine_limits.ts";
import {
  type FuncType,
  listMemories,
  listTables,
  type ModuleInfo,
  parseModule,
  SectionId,
  type SectionInfo,
} from "./_module.ts";
import { type BodyPlan, type CallRoles, rewriteBody } from "./_rewrite.ts";
import { type AddressTypes, BodyScanner, type ScanOptions, ScanResult } from "./_scan.ts";
import { BULK_KINDS, type BulkGateSlots, bulkGateType, emitBulkGateBody } from "./_bulk.ts";
import { emitWaitBody, waitFunctionType } from "./_atomic_wait.ts";
import { emitSplitBody, emitSplitDispatchBody, splitFunctionType } from "./_bulk_split.ts";
import { analyzeCalls } from "./_call_graph.ts";
import { type InternalCallPlan, planInternalCalls } from "./_internal_calls.ts";
import { withVariantNames } from "./_names.ts";
import {
  CHARGE_SLOW_PATH_TYPE,
  emitChargeSlowPathBody,
  emitFuelSlowPathBody,
  emitWrapperBody,
  FUEL_SLOW_PATH_TYPE,
  rewriteInternalBody,
} from "./_internal_body.ts";
import { emitRefillBody, frameUnits } from "./_fuel.ts";
import {
  CHECK_EVERY_THROW_WEIGHT,
  DEADLINE_HOOKS_EXPORT,
  type DeadlinePollSlots,
  emitDeadlinePoll,
  emitThrowGateBody,
  emitTickBody,
  MAX_HANDLER_WEIGHT,
  THROWS_PER_CHECK,
  UnboundedThrowError,
} from "./_deadline.ts";
import { emitTrapBody, TrapReason } from "./_trap.ts";
import {
  emitFuelLeftBody,
  emitPrepareBody,
  FUEL_LEFT_EXPORT,
  FUEL_LEFT_TYPE,
  PREPARE_EXPORT,
  PREPARE_TYPE,
  type PrepareSlots,
} from "./_prepare.ts";
import type {
  DeadlinePacing,
  InstrumentMetadata,
  MemoryStateExport,
  StateExports,
} from "../metering/mod.ts";
export type {
  DeadlinePacing,
  InstrumentMetadata,
  MemoryStateExport,
  StateExports,
} from "../metering/mod.ts";
import { STACK_BASE_EXPORT, STACK_POINTER_EXPORT } from "../metering/mod.ts";

export { EngineLimitError, TrapReason };
export { DEADLINE_HOOKS_EXPORT };

/** Prefix of every export the instrumenter adds; input modules may not use it. */
export const RESERVED_EXPORT_PREFIX = "__wasmplug_";
/** Export name of the trap-reason `i32` global (see {@linkcode TrapReason}). */
export const TRAP_GLOBAL_EXPORT = "__wasmplug_trap";
/** Export name of the remaining-fuel `i64` global (the current slice when fuel is sliced). */
export const FUEL_GLOBAL_EXPORT = "__wasmplug_fuel";
/** Export name of the fuel reserve `i64` global (fuel and a deadline both on). */
export const FUEL_RESERVE_GLOBAL_EXPORT = "__wasmplug_fuel_reserve";
/** Export name of the remaining-call-depth `i32` global. */
export const DEPTH_GLOBAL_EXPORT = "__wasmplug_depth";
/** Export name of the deadline countdown `i32` global (`"clock"` mode). */
export const TICKS_GLOBAL_EXPORT = "__wasmplug_ticks";
/**
 * Export name of the deadline interval global: an `i32` count of checks
 * between hook calls (`"clock"` mode without fuel), or the `i64` largest fuel
 * slice (fuel and a deadline both on).
 */
export const INTERVAL_GLOBAL_EXPORT = "__wasmplug_interval";
/** Export name under which the module's start function is deferred. */
export const START_EXPORT = "__wasmplug_start";
/** Prefix of the export names of defined memories (`exportState`), followed by the memory index. */
export const MEMORY_STATE_EXPORT_PREFIX = "__wasmplug_memory_";
/** The most memories and mutable globals `exportState` exports; a module with more is not kept. */
const MAX_STATE_EXPORTS = 10_000;

/** Prefix of the export names of mutable globals (`exportState`), followed by the global index. */
export const GLOBAL_STATE_EXPORT_PREFIX = "__wasmplug_global_";

/** How a deadline is checked; see `_deadline.ts`. */
export type DeadlineMode = "clock";

/** Options of {@linkcode instrument}. */
export interface InstrumentOptions {
  /**
   * Meter fuel: each original instruction costs one unit, except the markers
   * `block`, `loop`, `else`, `end`, `try`, `try_table`, `catch`, `catch_all`
   * and `delegate`, and bulk instructions (`memory.fill`, `table.copy`, ...)
   * also pay for their length: a unit per 64 bytes or per table element.
   * Charges are taken ahead for code sure to run (see `_fuel.ts`; a direct
   * call's charge covers the start of the function it calls), so a call that
   * returns consumes exactly what it executed, and one that traps what its
   * charges covered. The
   * budget starts at `initial` (default `0n`: nothing runs until the host sets
   * a budget).
   *
   * @default {false}
   */
  fuel?: boolean | {
    /** Initial value of the fuel global, what code run before the host sets a budget may use. */
    initial?: bigint;
  };
  /**
   * Bound the number of live frames of the module's recursive functions (those
   * on a cycle of the call graph, calls through imports, tables and references
   * included; see `_call_depth.ts`). `max` is the initial value of the depth
   * global; the host may write another limit before each call.
   *
   * @default {false}
   */
  callDepth?: boolean | { max?: number };
  /**
   * Check a deadline: `"clock"` periodically calls a host hook, which says
   * whether the call must stop (see `InstanceLimits`). With fuel on,
   * the checks run once per slice of fuel; without, at loop headers and before
   * calls that can recurse (see `_deadline.ts`). Either way a check also runs
   * before large bulk instructions (`memory.fill` and the like, see
   * `_bulk.ts`), and atomic waits (`memory.atomic.wait32`/`wait64`) sleep in
   * slices of at most 10 ms with a check between them (see
   * `_atomic_wait.ts`).
   *
   * Without a deadline, atomic waits are left as they are: a wait sleeps for
   * as long as its timeout says, forever when it is negative, and a worker
   * sleeping in one does not end even when terminated. Bulk instructions still
   * pay for their length with fuel on.
   *
   * @default {false}
   */
  deadline?: DeadlineMode | false;
  /**
   * Export every defined memory and every mutable global of the original
   * module (as `__wasmplug_memory_<index>` and `__wasmplug_global_<index>`),
   * so a host can copy an instance's state out and into a new instance, and
   * say in {@linkcode InstrumentMetadata.state} whether that state is all
   * there is.
   *
   * @default {false}
   */
  exportState?: boolean;
  /**
   * Validate the input with `WebAssembly.validate` (after checking its
   * structure) and throw V8's `CompileError` when it is invalid. Turn off only
   * for modules known to be valid.
   *
   * @default {true}
   */
  validate?: boolean;
  /**
   * The module as `parseModule` already described it, to spare parsing it
   * again; it must describe `bytes` exactly.
   */
  info?: ModuleInfo;
}

/** The instrumented module and how to drive it. */
export interface InstrumentResult extends InstrumentMetadata {
  /** The instrumented module (a copy of the input when no pass is on). */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** Initial value of the clock-mode interval, in checks between hook calls. */
const INITIAL_INTERVAL = 1000;
/** Initial largest fuel slice. */
const INITIAL_SLICE = 1n << 16n;

/** Section ids, as the parser names them. */
const Section = SectionId;

/** Names of custom sections holding code metadata, which rewritten code invalidates. */
const CODE_METADATA_PREFIX = "metadata.code.";
/** Name of the custom section of branch hints. */
const BRANCH_HINT_SECTION = "metadata.code.branch_hint";

/** Position of each section id in the required order (the tag section sits before globals). */
const SECTION_RANK: readonly number[] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6];

/**
 * Rewrites a module so that fuel, call depth and a deadline are enforced.
 *
 * @example Count instructions
 * ```ts ignore
 * const { bytes: metered, fuelGlobal } = instrument(bytes, { fuel: true });
 * ```
 *
 * @param bytes A WebAssembly binary module.
 * @param options Which passes to apply.
 * @returns The new module and the names of what it exports for the host.
 * @throws {BinaryFormatError} When the module is malformed.
 * @throws {WebAssembly.CompileError} When the module is well-formed but invalid.
 * @throws {TypeError} When the module exports a name starting with `__wasmplug_`.
 * @throws {EngineLimitError} When what the passes add would take the module past an engine limit.
 * @throws {UnboundedThrowError} When, with a deadline, a throw could pass more handlers in one
 *   frame than the deadline can bound.
 * @throws {RangeError} When an option is out of range.
 */
export function instrument(bytes: Uint8Array, options: InstrumentOptions = {}): InstrumentResult {
  const steps = instrumentSteps(bytes, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * {@linkcode instrument} in steps: the generator yields between runs of
 * bodies (about a thousand at a time), so that a caller may give the event
 * loop its turns while a large module is instrumented, and returns the
 * result. It throws what `instrument` throws.
 *
 * @example
 * ```ts ignore
 * const steps = instrumentSteps(bytes, { fuel: true });
 * let step = steps.next();
 * while (!step.done) {
 *   await new Promise((resolve) => setTimeout(resolve, 0));
 *   step = steps.next();
 * }
 * const { bytes: instrumented } = step.value;
 * ```
 */
export function* instrumentSteps(
  bytes: Uint8Array,
  options: InstrumentOptions = {},
): Generator<void, InstrumentResult, void> {
  const {
    fuel = false,
    callDepth = false,
    deadline = false,
    exportState = false,
    validate = true,
  } = options;
  const maxDepth = typeof callDepth === "object" ? callDepth.max ?? 1000 : 1000;
  if (!Number.isInteger(maxDepth) || maxDepth < 0 || maxDepth > 0x7fffffff) {
    throw new RangeError(
      `Cannot instrument as 'callDepth.max' must be an integer from 0 to 2^31-1: current value is ${maxDepth}`,
    );
  }
  if (deadline !== false && deadline !== "clock") {
    throw new RangeError(
      `Cannot instrument as 'deadline' must be "clock" or false: current value is ${
        String(deadline)
      }`,
    );
  }
  const initialFuel = typeof fuel === "object" ? fuel.initial ?? 0n : 0n;
  if (initialFuel < 0n || initialFuel >= 1n << 63n) {
    throw new RangeError(
      `Cannot instrument as 'fuel.initial' must be from 0 to 2^63-1: current value is ${initialFuel}`,
    );
  }
  const depthOn = callDepth !== false;
  const info = options.info ?? parseModule(bytes);
  for (const entry of info.exports) {
    if (entry.name.startsWith(RESERVED_EXPORT_PREFIX)) {
      throw new TypeError(
        `Cannot instrument the module: its export ${
          shownName(entry.name)
        } uses the reserved prefix "${RESERVED_EXPORT_PREFIX}"`,
      );
    }
  }
  if (fuel === false && !depthOn && deadline === false && !exportState) {
    return {
      bytes: bytes.slice(),
      trapGlobal: null,
      fuelGlobal: null,
      depthGlobal: null,
      deadline: null,
      startFunction: null,
      state: null,
    };
  }
  const result = yield* new Assembler(bytes, info).run(
    fuel === false ? null : initialFuel,
    depthOn ? maxDepth : -1,
    deadline,
    exportState,
  );
  // Appended locals, globals, tables and types could make dangling references
  // of an invalid module valid, so invalid modules are refused rather than rewritten.
  const source = bytes as Uint8Array<ArrayBuffer>;
  if (validate && !WebAssembly.validate(source)) {
    new WebAssembly.Module(source);
    throw new WebAssembly.CompileError("WebAssembly.Module(): Invalid module");
  }
  return result;
}

class Assembler {
  readonly #bytes: Uint8Array;
  readonly #info: ModuleInfo;
  readonly #counts = { function: 0, table: 0, memory: 0, global: 0, tag: 0 };
  /** Whether the start section is replaced by an export. */
  #startDeferred = false;
  /** Bodies of the appended `[] -> []` functions (fuel refill, clock tick). */
  readonly #bodies: Uint8Array[] = [];
  /** Entries appended to vector sections, by section id. */
  readonly #added: AppendedSections = new Map();

  constructor(bytes: Uint8Array, info: ModuleInfo) {
    this.#bytes = bytes;
    this.#info = info;
    for (const entry of info.imports) this.#counts[entry.kind]++;
  }

  #append(section: number): CodeWriter {
    return appendEntry(this.#added, section);
  }

  #global(valueType: number, init: number | bigint): number {
    const out = this.#append(Section.Global);
    out.u8(valueType);
    out.u8(0x01); // mutable
    if (typeof init === "bigint") {
      out.u8(0x42);
      out.s64(init);
    } else {
      out.u8(0x41);
      out.s32(init);
    }
    out.u8(0x0b);
    return this.#counts.global + this.#info.globals.length +
      this.#added.get(Section.Global)!.count -
      1;
  }

  #export(name: string, kind: number, index: number): string {
    const out = this.#append(Section.Export);
    const encoded = new TextEncoder().encode(name);
    out.u32(encoded.length);
    out.bytes(encoded);
    out.u8(kind);
    out.u32(index);
    return name;
  }

  /** Whether `index` names a `[] -> []` function; else the start section is kept and V8 rejects it. */
  #startIsValid(index: number): boolean {
    const info = this.#info;
    let typeIndex: number | undefined;
    if (index < this.#counts.function) {
      typeIndex = info.imports.filter((entry) => entry.kind === "function")[index]?.typeIndex;
    } else {
      typeIndex = info.functions[index - this.#counts.function];
    }
    const type = typeIndex === undefined ? undefined : info.types[typeIndex];
    return type?.kind === "func" && type.params.length === 0 && type.results.length === 0;
  }

  /** Appends a function with `body` (locals included), of type `[] -> []` by default; returns its index. */
  #appendFunction(body: Uint8Array, type: Uint8Array = VOID_TYPE): number {
    this.#append(Section.Function).u32(this.#typeOnce(type));
    this.#bodies.push(body);
    return this.#counts.function + this.#info.functions.length + this.#bodies.length - 1;
  }

  /** Appended function types, by their encoding. */
  readonly #appendedTypes = new Map<string, number>();

  /** Appends type `entry` unless an equal one was appended; returns its index. */
  #typeOnce(entry: Uint8Array): number {
    const key = entry.join(",");
    let index = this.#appendedTypes.get(key);
    if (index === undefined) {
      index = this.#type(entry);
      this.#appendedTypes.set(key, index);
    }
    return index;
  }

  /**
   * Appends a function whose body (locals included) `write` writes, in a
   * writer of `size` bytes to start with; returns its index.
   */
  #appendBody(size: number, write: (out: CodeWriter) => void, type?: Uint8Array): number {
    const body = new CodeWriter(size);
    write(body);
    return this.#appendFunction(body.finish(), type);
  }

  /** Appends and exports the host's prepare and fuel-left functions (see `_prepare.ts`). */
  #appendHostFunctions(slots: PrepareSlots): void {
    const prepare = this.#appendBody(64, (out) => emitPrepareBody(out, slots), PREPARE_TYPE);
    this.#export(PREPARE_EXPORT, 0, prepare);
    if (slots.fuelGlobal < 0) return;
    const { fuelGlobal, reserveGlobal } = slots;
    const left = (out: CodeWriter) => emitFuelLeftBody(out, fuelGlobal, reserveGlobal);
    this.#export(FUEL_LEFT_EXPORT, 0, this.#appendBody(16, left, FUEL_LEFT_TYPE));
  }

  #trapFunction(reason: number, trapGlobal: number): number {
    return this.#appendBody(16, (out) => emitTrapBody(out, reason, trapGlobal));
  }

  #type(entry: Uint8Array): number {
    const before = this.#added.get(Section.Type)?.count ?? 0;
    this.#append(Section.Type).bytes(entry);
    return this.#info.types.length + before;
  }

  *run(
    fuel: bigint | null,
    maxDepth: number,
    deadline: DeadlineMode | false,
    exportState: boolean,
  ): Generator<void, InstrumentResult, void> {
    const info = this.#info;
    // Before anything is appended: the indices are those of the original module.
    const state = exportState ? this.#exportState() : null;
    const trapGlobal = this.#global(0x7f, 0);
    this.#export(TRAP_GLOBAL_EXPORT, 3, trapGlobal);
    // Deadline checks ride on fuel when both are on.
    // Appended functions need a code section, which a module without functions lacks.
    const hasCode = info.code.length > 0;
    const sliced = fuel !== null && deadline !== false && hasCode;
    // Pass 1 over code, before anything is appended: what it finds decides what is.
    const checksInCode = deadline !== false && !sliced && hasCode;
    const addressTypes = fuel !== null || deadline !== false ? this.#addressTypes() : null;
    const scan = yield* this.#scanForPasses(
      fuel !== null,
      maxDepth >= 0,
      deadline,
      checksInCode,
      addressTypes,
    );
    const fuelIndex = fuel === null ? -1 : this.#global(0x7e, sliced ? 0n : fuel);
    const fuelGlobal = fuel === null ? null : this.#export(FUEL_GLOBAL_EXPORT, 3, fuelIndex);
    const fuelTrap = fuel !== null && !sliced && hasCode
      ? this.#trapFunction(TrapReason.Fuel, trapGlobal)
      : null;
    const depth = maxDepth < 0 ? null : this.#addDepth(maxDepth, trapGlobal, hasCode);
    // What the host's prepare function sets beyond the trap, fuel and depth globals.
    const armed = { ticksGlobal: -1, ticksIntervalGlobal: -1, reserveGlobal: -1, sliceGlobal: -1 };
    const setup = deadline === "clock" ? this.#addClock(trapGlobal, checksInCode, armed) : null;
    const poll = setup?.poll ?? null;
    let refill: number | null = null;
    let deadlineMeta = setup?.meta ?? null;
    if (sliced) {
      refill = this.#addFuelSlices(fuel, fuelIndex, trapGlobal, poll!, armed);
      const pacing: DeadlinePacing = {
        by: "fuel",
        reserveGlobal: FUEL_RESERVE_GLOBAL_EXPORT,
        intervalGlobal: INTERVAL_GLOBAL_EXPORT,
      };
      deadlineMeta = { ...deadlineMeta!, pacing };
    }
    const plan = this.#appendHelpers(scan, addressTypes, {
      fuel: fuel === null
        ? null
        : { fuelGlobal: fuelIndex, trapGlobal, trapFunction: fuelTrap, refill },
      depth: depth?.slots ?? null,
      checks: setup?.inCode ?? null,
      poll,
      pollInGates: sliced,
      trapGlobal,
      armed,
    });
    const startFunction = this.#deferStart();
    // Before the work of assembling it: the additions must keep the module within the engine's limits.
    checkAppended(info, { sections: this.#added, action: INSTRUMENT_FAILURE });
    const stateChange = this.#scan?.stateChange ?? null;
    return {
      bytes: yield* this.#assemble(plan),
      trapGlobal: TRAP_GLOBAL_EXPORT,
      fuelGlobal,
      depthGlobal: depth?.name ?? null,
      deadline: deadlineMeta,
      startFunction,
      state: state !== null && state.incomplete === null && stateChange !== null
        ? { incomplete: `its code runs ${stateChange}`, memories: [], globals: [] }
        : state,
    };
  }

  /** Appends and exports the depth global and, with code, the depth's trap function. */
  #addDepth(maxDepth: number, trapGlobal: number, hasCode: boolean): DepthSetup {
    const index = this.#global(0x7f, maxDepth);
    const name = this.#export(DEPTH_GLOBAL_EXPORT, 3, index);
    const trapFunction = hasCode ? this.#trapFunction(TrapReason.CallDepth, trapGlobal) : null;
    return { name, slots: { depthGlobal: index, trapGlobal, trapFunction } };
  }

  /**
   * Appends and exports the hook table and, for checks in code, the
   * countdown globals (noted in `armed`) and the tick function.
   */
  #addClock(trapGlobal: number, checksInCode: boolean, armed: ArmedGlobals): DeadlineSetup {
    const table = this.#counts.table + this.#info.tables.length;
    const tableOut = this.#append(Section.Table);
    tableOut.u8(0x70); // funcref
    tableOut.u8(0x01);
    tableOut.u8(0x01);
    tableOut.u8(0x01);
    const hookType = this.#type(HOOK_TYPE);
    this.#export(DEADLINE_HOOKS_EXPORT, 1, table);
    const poll: DeadlinePollSlots = { mode: "clock", table, hookType, trapGlobal };
    if (!checksInCode) {
      return {
        poll,
        inCode: null,
        meta: { mode: "clock", table: DEADLINE_HOOKS_EXPORT, pacing: null },
      };
    }
    const ticksGlobal = this.#global(0x7f, INITIAL_INTERVAL);
    const intervalGlobal = this.#global(0x7f, INITIAL_INTERVAL);
    this.#export(TICKS_GLOBAL_EXPORT, 3, ticksGlobal);
    this.#export(INTERVAL_GLOBAL_EXPORT, 3, intervalGlobal);
    const tick = this.#appendBody(
      64,
      (out) => emitTickBody(out, poll, ticksGlobal, intervalGlobal),
    );
    armed.ticksGlobal = ticksGlobal;
    armed.ticksIntervalGlobal = intervalGlobal;
    const pacing: DeadlinePacing = {
      by: "checks",
      ticksGlobal: TICKS_GLOBAL_EXPORT,
      intervalGlobal: INTERVAL_GLOBAL_EXPORT,
    };
    const meta = { mode: "clock", table: DEADLINE_HOOKS_EXPORT, pacing } as const;
    return { poll, inCode: { mode: "clock", ticksGlobal, tick }, meta };
  }

  /**
   * Appends and exports the fuel reserve and largest slice globals (noted in
   * `armed`) and the refill function, which checks the deadline; returns the
   * refill's index.
   */
  #addFuelSlices(
    fuel: bigint,
    fuelGlobal: number,
    trapGlobal: number,
    poll: DeadlinePollSlots,
    armed: ArmedGlobals,
  ): number {
    const reserveGlobal = this.#global(0x7e, fuel);
    const intervalGlobal = this.#global(0x7e, INITIAL_SLICE);
    this.#export(FUEL_RESERVE_GLOBAL_EXPORT, 3, reserveGlobal);
    this.#export(INTERVAL_GLOBAL_EXPORT, 3, intervalGlobal);
    armed.reserveGlobal = reserveGlobal;
    armed.sliceGlobal = intervalGlobal;
    const slots = { fuelGlobal, reserveGlobal, intervalGlobal, trapGlobal };
    return this.#appendBody(128, (out) => {
      emitRefillBody(out, slots, (check) => emitDeadlinePoll(check, poll));
    });
  }

  /**
   * Appends the functions the rewritten code calls (bulk gates, replacements
   * of atomic waits, slow paths, internal variants) and the host's; returns
   * the plan of the rewrite.
   */
  #appendHelpers(scan: ScanResult, addressTypes: AddressTypes | null, passes: Passes): BodyPlan {
    const { fuel, depth, checks, poll } = passes;
    const hasCode = this.#info.code.length > 0;
    const bulkGates = this.#bulkGates(scan, {
      fuel,
      poll: passes.pollInGates ? poll : null,
      countdown: checks,
    });
    const waitFunctions = poll === null ? [] : scan.waits.map((wait) => {
      const memory64 = addressTypes?.memory64[wait.memory] === true;
      const type = waitFunctionType(wait, memory64);
      return this.#appendBody(96, (out) => emitWaitBody(out, wait, poll), type);
    });
    // Each split instruction calls a small function (which the engine inlines) that does the
    // instruction when it is short, and calls the one that does it in steps when it is not.
    const splitFunctions = poll === null ? [] : scan.splits.map((split) => {
      const type = splitFunctionType(split);
      const steps = this.#appendBody(160, (out) => emitSplitBody(out, split, poll), type);
      return this.#appendBody(24, (out) => emitSplitDispatchBody(out, split, steps), type);
    });
    // Each throw reads the clock (see `emitThrowGateCall`): one that is slow (many handlers to
    // pass) made a fuel slice last seconds, and the deadline with it.
    let throwGate = -1;
    if (poll !== null && scan.handlerWeight > MAX_HANDLER_WEIGHT) {
      throw new UnboundedThrowError(scan.handlerWeight);
    }
    if (poll !== null && scan.throws) {
      const perCheck = scan.handlerWeight >= CHECK_EVERY_THROW_WEIGHT ? 1 : THROWS_PER_CHECK;
      const countdown = this.#global(0x7f, perCheck);
      throwGate = this.#appendBody(
        48,
        (out) => emitThrowGateBody(out, poll, countdown, perCheck),
      );
    }
    if (hasCode) {
      // The stack pointer as each call begins, kept by the prepare function (see
      // STACK_POINTER_EXPORT): what a failed call's pointer goes back to.
      const stackGlobal = this.#stackPointer;
      const stackBaseGlobal = stackGlobal < 0 ? -1 : this.#global(0x7f, 0);
      if (stackGlobal >= 0) {
        this.#export(STACK_POINTER_EXPORT, 3, stackGlobal);
        this.#export(STACK_BASE_EXPORT, 3, stackBaseGlobal);
      }
      this.#appendHostFunctions({
        trapGlobal: passes.trapGlobal,
        fuelGlobal: fuel?.fuelGlobal ?? -1,
        depthGlobal: depth?.depthGlobal ?? -1,
        ...passes.armed,
        stackGlobal,
        stackBaseGlobal,
      });
    }
    // The slow paths of the variants' charges (see `_internal_body.ts`).
    let fuelSlowPath = -1;
    let chargeSlowPath = -1;
    if (fuel !== null && hasCode) {
      const slowPath = (out: CodeWriter) => emitFuelSlowPathBody(out, fuel);
      fuelSlowPath = this.#appendBody(32, slowPath, FUEL_SLOW_PATH_TYPE);
      if (depth !== null) {
        const withDepth = (out: CodeWriter) => emitChargeSlowPathBody(out, fuel, depth);
        chargeSlowPath = this.#appendBody(32, withDepth, CHARGE_SLOW_PATH_TYPE);
      }
    }
    if (depth !== null || checks !== null) {
      this.#roles = {
        imported: this.#counts.function,
        ...analyzeCalls(this.#bytes, this.#info, scan),
      };
    }
    const internal = fuel === null || !hasCode
      ? null
      : this.#appendVariants(scan, depth !== null, fuel.refill !== null);
    return {
      fuel,
      depth,
      deadline: checks,
      bulkGates,
      waitFunctions,
      splitFunctions,
      throwGate,
      internal,
      chargeSlowPath,
      fuelSlowPath,
    };
  }

  /** Last of the appended functions: the variants of the internal calling convention. */
  #appendVariants(scan: ScanResult, depth: boolean, sliced: boolean): InternalCallPlan | null {
    const info = this.#info;
    const internal = planInternalCalls(this.#bytes, info, scan, {
      imported: this.#counts.function,
      firstIndex: this.#counts.function + info.functions.length + this.#bodies.length,
      depth,
      sliced,
      depthRole: this.#roles?.depthRole ?? null,
      type: (entry) => this.#typeOnce(entry),
      typesAppended: this.#added.get(Section.Type)?.count ?? 0,
    });
    if (internal !== null) {
      for (const type of internal.variantType) {
        if (type >= 0) this.#append(Section.Function).u32(type);
      }
    }
    return internal;
  }

  /** Exports a valid start function to run after the host prepared the instance; returns the name. */
  #deferStart(): string | null {
    const start = this.#info.start;
    if (start === null || !this.#startIsValid(start)) return null;
    this.#startDeferred = true;
    return this.#export(START_EXPORT, 0, start);
  }

  /** Exports the defined memories and mutable globals, or says why they are not the whole state. */
  #exportState(): StateExports {
    const info = this.#info;
    const incomplete = (reason: string): StateExports => ({
      incomplete: reason,
      memories: [],
      globals: [],
    });
    const imported = info.imports.find((entry) =>
      entry.kind === "memory" || entry.kind === "table" || entry.kind === "global"
    );
    if (imported !== undefined) {
      return incomplete(`it imports a ${imported.kind} ("${imported.module}"."${imported.name}")`);
    }
    if (info.types.some((type) => type.kind !== "func")) return incomplete("it has GC types");
    const table = info.exports.find((entry) => entry.kind === "table");
    if (table !== undefined) return incomplete(`it exports a table ("${table.name}")`);
    const mutable: number[] = [];
    for (const [i, global] of info.globals.entries()) {
      if (!global.type.mutable) continue;
      if (!NUMBER_TYPES.has(global.type.valueType)) {
        return incomplete(`its global ${i} is a mutable ${global.type.valueType}`);
      }
      mutable.push(i);
    }
    // Each is an export (the engine takes a million at most) and a value to copy at each park:
    // so many are not kept (the plugin is never parked) rather than fail the load or cost seconds.
    if (mutable.length + info.memories.length > MAX_STATE_EXPORTS) {
      return incomplete(
        `it has ${mutable.length} mutable globals and ${info.memories.length} memories, more than ${MAX_STATE_EXPORTS} to keep`,
      );
    }
    const memories = info.memories.map((limits, i): MemoryStateExport => ({
      name: this.#export(`${MEMORY_STATE_EXPORT_PREFIX}${i}`, 2, i),
      pageSize: 2 ** (limits.pageSizeLog2 ?? 16),
      memory64: limits.address === "i64",
    }));
    const globals = mutable.map((i) => this.#export(`${GLOBAL_STATE_EXPORT_PREFIX}${i}`, 3, i));
    return { incomplete: null, memories, globals };
  }

  /** Pass 1 over code, recording what the passes need (`checksInCode`: deadline checks not riding on fuel). */
  *#scanForPasses(
    fuel: boolean,
    depth: boolean,
    deadline: DeadlineMode | false,
    checksInCode: boolean,
    addressTypes: AddressTypes | null,
  ): Generator<void, ScanResult, void> {
    const countdown = checksInCode && deadline === "clock";
    // Each body gets a fuel local, a depth local and a clock countdown local, as the passes need.
    const addedLocals = (fuel ? 1 : 0) + (depth ? 1 : 0) + (countdown ? 1 : 0);
    return yield* this.#scanCode({
      fuel,
      loops: checksInCode,
      exits: fuel || countdown,
      bulk: addressTypes,
      waits: deadline !== false,
      returns: fuel,
      movedLocals: !fuel ? 0 : depth ? 2 : 1,
    }, addedLocals);
  }

  #scan: ScanResult | undefined;
  /** Decodes every body once, recording where code goes in; checks `addedLocals` fit in each. */
  *#scanCode(options: ScanOptions, addedLocals: number): Generator<void, ScanResult, void> {
    const scan = new ScanResult();
    this.#scan = scan;
    const scanner = new BodyScanner(options, scan);
    const { code, functions, types } = this.#info;
    for (let i = 0; i < code.length; i++) {
      if ((i & STEP_BODIES) === STEP_BODIES) yield;
      const body = code[i]!;
      const reader = new CodeReader(this.#bytes, body.bodyStart, body.end);
      const locals = reader.readLocals();
      // parseModule checked that every function's type index names a function type.
      const params = (types[functions[i]!] as FuncType).params.length;
      if (addedLocals > 0) {
        checkAddition("locals", {
          count: params + locals,
          added: addedLocals,
          action: INSTRUMENT_FAILURE,
          subject: `function ${this.#counts.function + i}`,
        });
      }
      scanner.scan(reader, params, frameUnits(reader.localBytes));
    }
    this.#stackPointer = this.#stackPointerOf(scan.frameGlobals);
    return scan;
  }

  /** The guest's stack pointer (see `STACK_POINTER_EXPORT`), or -1. */
  #stackPointer = -1;

  /**
   * The one defined mutable `i32` global that bodies use as a stack frame
   * (`ScanResult.frameGlobals`), or -1 (none, or several).
   */
  #stackPointerOf(lowered: ReadonlySet<number>): number {
    if (lowered.size !== 1) return -1;
    const [index] = lowered as Set<number>;
    const global = this.#info.globals[index! - this.#counts.global];
    return global !== undefined && global.type.mutable && global.type.valueType === "i32"
      ? index!
      : -1;
  }

  #addressTypes(): AddressTypes {
    const info = this.#info;
    const tableTypes = [
      ...info.imports.flatMap((entry) => entry.kind === "table" ? [entry.type] : []),
      ...info.tables.map((table) => table.type),
    ].map(({ refTypeStart }) => {
      const reader = new ByteReader(this.#bytes, { start: refTypeStart });
      readRefType(reader);
      return this.#bytes.slice(refTypeStart, reader.pos);
    });
    return {
      memory64: listMemories(info).map((memory) => memory.limits.address === "i64"),
      table64: listTables(info).map((table) => table.limits.address === "i64"),
      tableTypes,
    };
  }

  /** Appends the gate of each kind of bulk instruction the code has; returns their indices. */
  #bulkGates(scan: ScanResult, slots: BulkGateSlots): number[] {
    const gates: number[] = [];
    for (let kind = 0; kind < BULK_KINDS; kind++) {
      if ((scan.bulkKinds & (1 << kind)) === 0) {
        gates.push(-1);
        continue;
      }
      const gate = (out: CodeWriter) => emitBulkGateBody(out, kind, slots);
      gates.push(this.#appendBody(128, gate, bulkGateType(kind)));
    }
    return gates;
  }

  *#assemble(plan: BodyPlan): Generator<void, Uint8Array<ArrayBuffer>, void> {
    const bytes = this.#bytes;
    const out = new CodeWriter(bytes.length + (bytes.length >>> 1) + 256);
    out.copy(bytes, 0, 8);
    const pending = [...this.#added.keys()]
      .filter((id) => !this.#info.sections.some((s) => s.id === id))
      .sort((a, b) => SECTION_RANK[a]! - SECTION_RANK[b]!);
    const flushBefore = (rank: number): void => {
      while (pending.length > 0 && SECTION_RANK[pending[0]!]! < rank) {
        const id = pending.shift()!;
        this.#writeSection(out, id, this.#vectorPayload(id, null));
      }
    };
    // Variants take the names of their functions.
    const names = new Map<number, Uint8Array>();
    const internal = plan.internal;
    if (internal !== null) {
      const imported = this.#counts.function;
      const variantOf = (f: number): number => internal.internal[f - imported] ?? -1;
      for (const section of this.#info.customSections) {
        if (section.name !== "name") continue;
        const named = withVariantNames(bytes, section, variantOf);
        if (named !== null) names.set(section.start, named);
      }
    }
    const stale = new Set(
      this.#info.customSections.filter((s) => s.name.startsWith(CODE_METADATA_PREFIX))
        .map((s) => s.start),
    );
    for (const section of this.#info.sections) {
      if (section.id === Section.Custom) {
        // Code metadata (branch hints and the like) locate instructions by
        // offsets that rewriting moves; the tool conventions say to drop it.
        if (stale.has(section.start)) continue;
        const named = names.get(section.start);
        if (named !== undefined) {
          out.bytes(named);
          continue;
        }
        out.copy(bytes, section.start, section.end);
        continue;
      }
      flushBefore(SECTION_RANK[section.id]!);
      if (section.id === Section.Start && this.#startDeferred) continue;
      if (section.id === Section.Code) {
        const hints: [number, number[]][] = [];
        const payload = yield* this.#codePayload(section, plan, hints);
        // Code metadata goes before the code section.
        if (hints.length > 0) this.#writeBranchHints(out, hints);
        this.#writeSection(out, section.id, payload);
      } else if (this.#added.has(section.id)) {
        this.#writeSection(out, section.id, this.#vectorPayload(section.id, section));
      } else {
        out.copy(bytes, section.start, section.end);
      }
    }
    flushBefore(Infinity);
    return out.finish();
  }

  /**
   * Writes a `metadata.code.branch_hint` custom section saying that the
   * `if`s at `hints` (function index, offsets in its body) are unlikely to be
   * taken, so that V8 lays their code (the slow paths of the passes) out of
   * the way.
   */
  #writeBranchHints(out: CodeWriter, hints: readonly [number, number[]][]): void {
    const payload = new CodeWriter(64 + hints.length * 8);
    const name = new TextEncoder().encode(BRANCH_HINT_SECTION);
    payload.u32(name.length);
    payload.bytes(name);
    payload.u32(hints.length);
    for (const [f, offsets] of hints) {
      payload.u32(f);
      payload.u32(offsets.length);
      for (const offset of offsets) {
        payload.u32(offset);
        payload.u8(1); // the hint's size
        payload.u8(0); // unlikely
      }
    }
    this.#writeSection(out, Section.Custom, payload);
  }

  #writeSection(out: CodeWriter, id: number, payload: CodeWriter): void {
    out.u8(id);
    out.u32(payload.length);
    out.copy(payload.buf, 0, payload.length);
  }

  #vectorPayload(id: number, section: SectionInfo | null): CodeWriter {
    const added = this.#added.get(id)!;
    const out = new CodeWriter(64 + (section === null ? 0 : section.end - section.start));
    if (section === null) {
      out.u32(added.count);
    } else {
      const reader = new ByteReader(this.#bytes, { start: section.payloadStart, end: section.end });
      out.u32(reader.u32() + added.count);
      out.copy(this.#bytes, reader.pos, section.end);
    }
    out.copy(added.out.buf, 0, added.out.length);
    return out;
  }

  /** What the call graph decided, when a pass needs it. */
  #roles: CallRoles | null = null;

  /**
   * Writes the code section's payload; adds the branch hints of each body to
   * `hints`. Kept whole: the two loops over the bodies (wrappers or rewritten
   * bodies at their indices, then the variants after the appended functions)
   * share the writers and the size check, and their order is the index space.
   */
  *#codePayload(
    section: SectionInfo,
    plan: BodyPlan,
    hints: [number, number[]][],
  ): Generator<void, CodeWriter, void> {
    const info = this.#info;
    const bytes = this.#bytes;
    const scan = this.#scan!;
    const roles = this.#roles;
    const internal = plan.internal;
    // Pass 2: copy each body with the code spliced in.
    const size = section.end - section.payloadStart;
    const out = new CodeWriter(size + (size >>> 1) + 64);
    const body = new CodeWriter(4096);
    out.u32(info.code.length + this.#bodies.length + (internal?.count ?? 0));
    // parseModule checked that every function's type index names a function type.
    const paramCount = (i: number): number =>
      (info.types[info.functions[i]!] as FuncType).params.length;
    const imported = this.#counts.function;
    const hinted = (f: number): void => {
      if (body.hints!.length === 0) return;
      hints.push([f, body.hints!.slice()]);
      body.hints!.length = 0;
    };
    body.hints = [];
    /** Checks the rewritten body of defined function `i` against the engine's size limit. */
    const sized = (i: number, subject = `function ${imported + i}`): void => {
      const code = info.code[i]!;
      const count = code.end - code.bodyStart;
      checkAddition("functionSize", {
        count,
        added: body.length - count,
        action: INSTRUMENT_FAILURE,
        subject,
      });
    };
    for (let i = 0; i < info.code.length; i++) {
      if ((i & STEP_BODIES) === STEP_BODIES) yield;
      const code = info.code[i]!;
      body.length = 0;
      if (internal !== null && internal.internal[i]! >= 0) {
        emitWrapperBody(body, i, paramCount(i), plan, roles, internal);
      } else {
        rewriteBody(bytes, code.bodyStart, code.end, i, paramCount(i), plan, scan, roles, body);
        sized(i);
      }
      hinted(imported + i);
      out.u32(body.length);
      out.copy(body.buf, 0, body.length);
    }
    for (const appended of this.#bodies) {
      out.u32(appended.length);
      out.bytes(appended);
    }
    if (internal !== null) {
      for (let i = 0; i < info.code.length; i++) {
        if ((i & STEP_BODIES) === STEP_BODIES) yield;
        if (internal.internal[i]! < 0) continue;
        const code = info.code[i]!;
        body.length = 0;
        rewriteInternalBody(
          bytes,
          code.bodyStart,
          code.end,
          i,
          paramCount(i),
          plan,
          scan,
          roles,
          internal,
          imported,
          body,
        );
        sized(i, `function ${imported + i} (its variant for internal calls)`);
        hinted(internal.internal[i]!);
        out.u32(body.length);
        out.copy(body.buf, 0, body.length);
      }
    }
    return out;
  }
}

/** The depth pass's global, as exported and as the rewrite uses it. */
interface DepthSetup {
  readonly name: string;
  readonly slots: NonNullable<BodyPlan["depth"]>;
}

/** A deadline mode's check, the checks in code (`null` when they ride on fuel) and its metadata. */
interface DeadlineSetup {
  readonly poll: DeadlinePollSlots;
  readonly inCode: BodyPlan["deadline"];
  readonly meta: NonNullable<InstrumentMetadata["deadline"]>;
}

/** The globals of the deadline's pacing the host's prepare function sets, -1 when absent. */
type ArmedGlobals = Pick<
  { -readonly [K in keyof PrepareSlots]: PrepareSlots[K] },
  "ticksGlobal" | "ticksIntervalGlobal" | "reserveGlobal" | "sliceGlobal"
>;

/** What {@linkcode Assembler.run} appended for the passes, which the helpers it appends next use. */
interface Passes {
  readonly fuel: BodyPlan["fuel"];
  readonly depth: BodyPlan["depth"];
  readonly checks: BodyPlan["deadline"];
  readonly poll: DeadlinePollSlots | null;
  /** Whether bulk gates poll the deadline (else the clock countdown, if any, paces them). */
  readonly pollInGates: boolean;
  readonly trapGlobal: number;
  /** The pacing globals the host's prepare function sets. */
  readonly armed: ArmedGlobals;
}

/** One less than how many bodies a step of {@linkcode instrumentSteps} handles (a power of 2). */
const STEP_BODIES = 1023;

/** How an {@linkcode EngineLimitError} of the instrumenter starts. */
const INSTRUMENT_FAILURE = "Cannot instrument the module";

/** Value types a JS host can read from a global and write back (NaN payloads aside). */
const NUMBER_TYPES: ReadonlySet<string> = new Set(["i32", "i64", "f32", "f64"]);

/** `(func (result i32))` as a type section entry. */
const HOOK_TYPE = new Uint8Array([0x60, 0x00, 0x01, 0x7f]);
/** `(func)` as a type section entry. */
const VOID_TYPE = new Uint8Array([0x60, 0x00, 0x00]);

export { type CallBudget, createDeadlineHook, InstanceLimits } from "../metering/mod.ts";

/**
 * The internal calling convention, with fuel metering on: direct calls pass
 * the fuel and the depth in registers instead of through globals.
 *
 * An *eligible* function `f` gets a second, appended variant `f'`, whose
 * parameters are `f`'s followed by the fuel (`i64`) and, with the depth pass
 * on, the remaining depth (`i32`), and whose results are `f`'s followed by
 * the fuel left. `f'` holds the instrumented body; `f` itself, at its
 * original index (what exports, tables, `ref.func` and the start section
 * name), becomes a small wrapper that does what the body's entry used to do
 * (the depth check and the charge of the entry record, against the globals)
 * and calls `f'`. Eligible callers call `f'` directly, so that the fuel of a
 * call chain stays in registers: a body keeps it in its fuel parameter and
 * stores it in the global before anything that reads the global or may stop
 * the call, so that the global holds what the charges taken so far covered
 * whenever it is read:
 *
 * - a body with an instruction that may trap by itself (`BodyFlags.MayTrap`:
 *   a memory access, a division, `unreachable`, an indirect call...) writes
 *   every charge through, and the fuel a call of a variant that does not
 *   returns too;
 * - any body stores it before the call of a slow path, a depth trap, a call
 *   of a variant that writes through (which may trap before it charges: its
 *   entry record is its caller's to pay) and a call of anything else (an
 *   import, a function that is not eligible, a bulk instruction's gate), and
 *   reloads it from the global after the last;
 * - a wrapper stores the fuel its variant returns.
 *
 * A body without such instructions (recursive arithmetic, like `fib`) thus
 * touches no global on its way. The one stop it does not cover is the
 * engine's own stack overflow, which may come at any call: the fuel counted
 * then misses the charges of such bodies since the global was last stored,
 * at most one slice of fuel (`MAX_SLICE`, `src/metering/_instance_limits.ts`).
 * So only with slices (a deadline) do such bodies skip the writes; without,
 * every body writes through.
 *
 * The caller also does the callee's entry work: the charge of the record a
 * direct call is in also pays for the callee's entry record (the code sure
 * to run once the callee is entered), so a callee whose code is one straight
 * run charges nothing at all; and the caller checks the depth before calling
 * a counted function (`_call_depth.ts`) and passes it the depth already
 * taken, so that the callee checks nothing either. When only instructions
 * without effects come before the first such call of a record, the record's
 * charge does that check too, with one branch for both (a depth that cannot
 * take the call then traps at the charge, where nothing observable has
 * happened yet). Fuel consumed by a call that returns is what it was; a call
 * that traps has paid for the entry record of the callee it was about to
 * enter too.
 *
 * Slow paths (a refill, running out of fuel or depth) are one call of an
 * appended function, so that variants stay small enough for V8 to inline
 * into each other, and their `if`s are hinted unlikely.
 *
 * A function is eligible unless it handles exceptions (whose landing pads
 * could not trust the parameter), tail-calls anything but an eligible
 * function (the callee would not return the fuel), or the module's types do
 * not all stand alone (recursion groups, subtyping), or its signature would
 * pass the engine's limits.
 *
 * @module
 */

import { ByteReader } from "./_bytes.ts";
import { type FuncType, type ModuleInfo, SectionId } from "./_module.ts";
import { BodyFlags, Event, MAX_RECORD_UNITS, type ScanResult } from "./_scan.ts";
import { ENGINE_LIMITS } from "./_engine_limits.ts";
import { DepthRole } from "./_call_graph.ts";

/** What {@linkcode planInternalCalls} decided. */
export interface InternalCallPlan {
  /** Per defined function: the absolute index of its internal variant, or -1. */
  readonly internal: Int32Array;
  /** Per defined function with a variant: the type index of the variant. */
  readonly variantType: Int32Array;
  /** Per defined function with a variant: the block type wrapping its body, encoded. */
  readonly blockType: readonly (Uint8Array | null)[];
  /** Per record: what its charge takes in an internal body, callees' entry records included. */
  readonly cost: Float64Array;
  /** Per defined function: the record its body starts with. */
  readonly entryRecord: Int32Array;
  /** Per defined function: the cost of its entry record, which its caller or wrapper charges. */
  readonly entryCost: Float64Array;
  /** Whether the variants take the remaining depth. */
  readonly depth: boolean;
  /**
   * Per record, 1 when its charge also checks that the depth allows a call of
   * a counted variant, for every such call the record makes (only
   * instructions without effects come before the first: the check may fail
   * early without anything else happening first).
   */
  readonly depthAtCharge: Uint8Array;
  /**
   * Per defined function, 1 when its variant writes every charge through to
   * the fuel global (its body may trap by itself), else 0.
   */
  readonly writeThrough: Uint8Array;
  /**
   * Per defined function, 1 when its variant returns with the fuel global
   * equal to the fuel it returns (it writes through and makes no tail call),
   * so that its caller need not store it.
   */
  readonly fresh: Uint8Array;
  /** Number of variants, appended in the order of their functions. */
  readonly count: number;
}

/** What the plan needs from the assembler. */
export interface PlanContext {
  /** Number of imported functions. */
  readonly imported: number;
  /** Index the first variant gets (every other appended function comes before). */
  readonly firstIndex: number;
  /** Whether the depth pass is on. */
  readonly depth: boolean;
  /**
   * Whether the fuel comes in slices (a deadline is checked), which bounds
   * what a body that does not write its charges through may leave uncounted.
   */
  readonly sliced: boolean;
  /** The depth role of each defined function (see `_call_graph.ts`), with the depth pass on. */
  readonly depthRole: Uint8Array | null;
  /** Appends a type section entry (or finds an equal one appended); returns its index. */
  readonly type: (entry: Uint8Array) => number;
  /** Number of types appended so far. */
  readonly typesAppended: number;
}

/**
 * Decides which functions get an internal variant, appends their types and
 * folds the callees' entry costs into their callers' records.
 *
 * @returns The plan, or `null` when no function is eligible.
 */
export function planInternalCalls(
  bytes: Uint8Array,
  info: ModuleInfo,
  scan: ScanResult,
  context: PlanContext,
): InternalCallPlan | null {
  const encodings = functionTypeEncodings(bytes, info);
  if (encodings === null) return null;
  const n = info.code.length;
  const { imported, depth } = context;
  // Callees whose entries would make a caller's record pay past MAX_RECORD_UNITS are no
  // variants (two thousand calls of a 4 000-unit entry in one record were charged at once,
  // then ran 1.6 s past a deadline): found, excluded, and looked for again.
  const excluded = new Set<number>();
  let eligible = findEligible(info, scan, encodings, imported, depth ? 2 : 1, excluded);
  for (let round = 0; round < 64; round++) {
    const over = calleesOverRecord(scan, eligible, imported);
    if (over.length === 0) break;
    for (const f of over) excluded.add(f);
    eligible = findEligible(info, scan, encodings, imported, depth ? 2 : 1, excluded);
  }
  let count = 0;
  for (let f = 0; f < n; f++) count += eligible[f]!;
  if (count === 0 || context.firstIndex + count > ENGINE_LIMITS.functions) return null;
  // At most a variant type and a block type per function type.
  if (info.types.length + context.typesAppended + 2 * encodings.length > ENGINE_LIMITS.types) {
    return null;
  }
  const { internal, variantType, blockType } = assignVariants(info, eligible, encodings, context);
  const { cost, entryRecord, entryCost } = foldEntryCosts(scan, eligible, imported);
  const depthRole = context.depthRole;
  const depthAtCharge = depth && depthRole !== null
    ? depthChecksAtCharge(scan, eligible, imported, depthRole)
    : new Uint8Array(scan.records);
  return {
    internal,
    variantType,
    blockType,
    cost,
    entryRecord,
    entryCost,
    depth,
    depthAtCharge,
    ...globalWrites(scan, n, context.sliced),
    count,
  };
}

/** Which variants write their charges through, and which return with the global up to date. */
function globalWrites(
  scan: ScanResult,
  n: number,
  sliced: boolean,
): Pick<InternalCallPlan, "writeThrough" | "fresh"> {
  const writeThrough = new Uint8Array(n);
  const fresh = new Uint8Array(n);
  const { kind, eventStart } = scan;
  for (let f = 0; f < n; f++) {
    // Without slices, an engine's stack overflow could leave the whole budget uncounted.
    if (sliced && (scan.flags[f]! & BodyFlags.MayTrap) === 0) continue;
    writeThrough[f] = 1;
    fresh[f] = 1;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if (kind[e] === Event.TailCall) fresh[f] = 0;
    }
  }
  return { writeThrough, fresh };
}

/** Per defined function, 1 when it is eligible for a variant (see the module doc); `added` new parameters. */
function findEligible(
  info: ModuleInfo,
  scan: ScanResult,
  encodings: readonly (FuncTypeEncoding | null)[],
  imported: number,
  added: number,
  excluded: ReadonlySet<number> = new Set(),
): Uint8Array {
  const n = info.code.length;
  const { kind, arg, eventStart } = scan;
  const eligible = new Uint8Array(n);
  // Tail calls between defined functions, callee to caller, for the fixpoint below.
  const tailCallers: number[][] = [];
  for (let f = 0; f < n; f++) {
    const type = info.types[info.functions[f]!] as FuncType;
    const encoding = encodings[info.functions[f]!];
    const first = eventStart[f]!;
    const entryUnits = first < eventStart[f + 1]! && kind[first] === Event.Charge
      ? scan.cost[arg[first]!]!
      : 0;
    let ok = encoding !== null && encoding !== undefined &&
      (scan.flags[f]! & BodyFlags.Try) === 0 && entryUnits <= MAX_FOLDED_ENTRY_UNITS &&
      !excluded.has(f) &&
      type.params.length + added <= ENGINE_LIMITS.params &&
      type.results.length + 1 <= ENGINE_LIMITS.results;
    for (let e = eventStart[f]!; ok && e < eventStart[f + 1]!; e++) {
      if (kind[e] !== Event.TailCall) continue;
      const callee = arg[e]! - imported;
      if (arg[e]! < 0 || callee < 0 || callee >= n) ok = false;
      else (tailCallers[callee] ??= []).push(f);
    }
    eligible[f] = ok ? 1 : 0;
  }
  // A function that tail-calls one that is not eligible is not eligible either.
  const work: number[] = [];
  for (let f = 0; f < n; f++) if (eligible[f] === 0) work.push(f);
  while (work.length > 0) {
    const g = work.pop()!;
    for (const f of tailCallers[g] ?? []) {
      if (eligible[f] === 1) {
        eligible[f] = 0;
        work.push(f);
      }
    }
  }
  return eligible;
}

/** Gives each eligible function its variant's index, and appends the variant and block types. */
function assignVariants(
  info: ModuleInfo,
  eligible: Uint8Array,
  encodings: readonly (FuncTypeEncoding | null)[],
  context: PlanContext,
): Pick<InternalCallPlan, "internal" | "variantType" | "blockType"> {
  const n = info.code.length;
  const internal = new Int32Array(n).fill(-1);
  const variantType = new Int32Array(n).fill(-1);
  const blockType: (Uint8Array | null)[] = new Array(n).fill(null);
  const variantTypes = new Map<number, { variant: number; block: Uint8Array }>();
  let next = context.firstIndex;
  for (let f = 0; f < n; f++) {
    if (eligible[f] === 0) continue;
    internal[f] = next++;
    const typeIndex = info.functions[f]!;
    let types = variantTypes.get(typeIndex);
    if (types === undefined) {
      const encoding = encodings[typeIndex]!;
      types = {
        variant: context.type(variantTypeEntry(encoding, context.depth)),
        block: blockTypeOf(encoding, context.type),
      };
      variantTypes.set(typeIndex, types);
    }
    variantType[f] = types.variant;
    blockType[f] = types.block;
  }
  return { internal, variantType, blockType };
}

/**
 * Finds each function's entry record and its cost, and adds it to the
 * records that make a direct call of the function between variants.
 */
function foldEntryCosts(
  scan: ScanResult,
  eligible: Uint8Array,
  imported: number,
): Pick<InternalCallPlan, "cost" | "entryRecord" | "entryCost"> {
  const n = eligible.length;
  const { kind, arg, rec, eventStart } = scan;
  const cost = new Float64Array(scan.records);
  for (let r = 0; r < scan.records; r++) cost[r] = scan.cost[r]!;
  const entryRecord = new Int32Array(n).fill(-1);
  const entryCost = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    const first = eventStart[f]!;
    if (first < eventStart[f + 1]! && kind[first] === Event.Charge) {
      entryRecord[f] = arg[first]!;
      entryCost[f] = scan.cost[arg[first]!]!;
    }
  }
  // A direct call between variants charges the callee's entry record with the caller's record.
  for (let f = 0; f < n; f++) {
    if (eligible[f] === 0) continue;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if ((kind[e] !== Event.Call && kind[e] !== Event.TailCall) || rec[e] === -1) continue;
      const callee = arg[e]! - imported;
      if (arg[e]! >= 0 && callee >= 0 && callee < n && eligible[callee] === 1) {
        cost[rec[e]!]! += entryCost[callee]!;
      }
    }
  }
  return { cost, entryRecord, entryCost };
}

/**
 * The longest entry record a variant's callers charge for it (see
 * {@linkcode foldEntryCosts}): a caller's record that called a function
 * with a long first run thirty times was charged once for all of them, and
 * ran 0.4 s past a 50 ms deadline. Call-heavy code, which variants are for,
 * has short entries.
 */
const MAX_FOLDED_ENTRY_UNITS = 4096;

/**
 * The eligible callees of the records whose own cost and their eligible
 * callees' entries add up to more than {@linkcode MAX_RECORD_UNITS} (see
 * {@linkcode foldEntryCosts}); none when every record stays within it.
 */
function calleesOverRecord(scan: ScanResult, eligible: Uint8Array, imported: number): number[] {
  const { cost, entryCost } = foldEntryCosts(scan, eligible, imported);
  const over: number[] = [];
  const n = eligible.length;
  const { kind, arg, rec, eventStart } = scan;
  for (let f = 0; f < n; f++) {
    if (eligible[f] === 0) continue;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if ((kind[e] !== Event.Call && kind[e] !== Event.TailCall) || rec[e] === -1) continue;
      const callee = arg[e]! - imported;
      if (callee < 0 || callee >= n || eligible[callee] === 0 || entryCost[callee] === 0) continue;
      if (cost[rec[e]!]! > MAX_RECORD_UNITS) over.push(callee);
    }
  }
  return over;
}

/** Per record, 1 when its charge can check the depth for the calls of counted variants in it. */
function depthChecksAtCharge(
  scan: ScanResult,
  eligible: Uint8Array,
  imported: number,
  depthRole: Uint8Array,
): Uint8Array {
  const n = eligible.length;
  const { kind, arg, rec, eventStart } = scan;
  const depthAtCharge = new Uint8Array(scan.records);
  const decided = new Uint8Array(scan.records);
  for (let f = 0; f < n; f++) {
    if (eligible[f] === 0) continue;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if ((kind[e] !== Event.Call && kind[e] !== Event.TailCall) || rec[e] === -1) continue;
      const callee = arg[e]! - imported;
      if (arg[e]! < 0 || callee < 0 || callee >= n || eligible[callee] === 0) continue;
      if (depthRole[callee] !== DepthRole.Count) continue;
      // A counted function's tail call of a counted function needs no depth.
      if (kind[e] === Event.TailCall && depthRole[f] === DepthRole.Count) continue;
      const r = rec[e]!;
      if (decided[r] === 1) continue;
      decided[r] = 1;
      depthAtCharge[r] = scan.pure[e]!;
    }
  }
  return depthAtCharge;
}

/** A function type's parameters and results as encoded (value types after their counts). */
interface FuncTypeEncoding {
  readonly paramCount: number;
  readonly params: Uint8Array;
  readonly resultCount: number;
  readonly results: Uint8Array;
}

/**
 * The encoding of every type of the module, or `null` when any type is in a
 * recursion group of several, declares supertypes or is not a function type
 * (a variant's type would not be distinct in the same way).
 */
function functionTypeEncodings(
  bytes: Uint8Array,
  info: ModuleInfo,
): (FuncTypeEncoding | null)[] | null {
  const section = info.sections.find((s) => s.id === SectionId.Type);
  if (section === undefined) return [];
  const reader = new ByteReader(bytes, { start: section.payloadStart, end: section.end });
  const count = reader.u32();
  const encodings: FuncTypeEncoding[] = [];
  for (let i = 0; i < count; i++) {
    if (reader.u8() !== 0x60) return null;
    const paramCount = reader.u32();
    const paramsStart = reader.pos;
    for (let p = 0; p < paramCount; p++) skipValueType(reader);
    const params = bytes.subarray(paramsStart, reader.pos);
    const resultCount = reader.u32();
    const resultsStart = reader.pos;
    for (let r = 0; r < resultCount; r++) skipValueType(reader);
    encodings.push({
      paramCount,
      params,
      resultCount,
      results: bytes.subarray(resultsStart, reader.pos),
    });
  }
  return encodings.length === info.types.length ? encodings : null;
}

function skipValueType(reader: ByteReader): void {
  const code = reader.u8();
  if (code === 0x63 || code === 0x64) reader.s33();
}

/** `[params..., i64 fuel, (i32 depth)] -> [results..., i64 fuel]` as a type section entry. */
function variantTypeEntry(type: FuncTypeEncoding, depth: boolean): Uint8Array {
  const out: number[] = [0x60];
  pushU32(out, type.paramCount + (depth ? 2 : 1));
  out.push(...type.params, 0x7e);
  if (depth) out.push(0x7f);
  pushU32(out, type.resultCount + 1);
  out.push(...type.results, 0x7e);
  return new Uint8Array(out);
}

/** The block type of `[] -> [results...]`: empty, one value type, or an appended type's index. */
function blockTypeOf(
  type: FuncTypeEncoding,
  appendType: (entry: Uint8Array) => number,
): Uint8Array {
  if (type.resultCount === 0) return new Uint8Array([0x40]);
  if (type.resultCount === 1) return type.results.slice();
  const entry: number[] = [0x60, 0x00];
  pushU32(entry, type.resultCount);
  entry.push(...type.results);
  const index = appendType(new Uint8Array(entry));
  const out: number[] = [];
  pushS33(out, index);
  return new Uint8Array(out);
}

function pushU32(out: number[], value: number): void {
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

/** A non-negative type index as a signed 33-bit LEB128 (a block type). */
function pushS33(out: number[], value: number): void {
  let v = value;
  while (true) {
    const byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v === 0 && (byte & 0x40) === 0) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

/**
 * Clamping of memory and table maximums, so that growth beyond a resource
 * limit fails inside WebAssembly (`memory.grow` and `table.grow` return -1)
 * exactly as it does at the spec maximums.
 *
 * Only the import, table and memory sections are re-encoded, and only when
 * one of their limits changes; every other byte of the module is kept.
 *
 * @module
 */

import { ByteWriter } from "./_bytes.ts";
import {
  type ByteRange,
  type CodeBody,
  type CustomSection,
  type ExportEntry,
  type GlobalEntry,
  type ImportEntry,
  type Limits,
  listMemories,
  listTables,
  type ModuleInfo,
  parseModule,
  type SectionInfo,
  type StorageDescriptor,
  type TableEntry,
  type TableType,
} from "./_module.ts";

/** The limits to clamp to; `Infinity` leaves that kind of storage alone. */
export interface StorageLimits {
  /** Maximum size of each memory, in 64 KiB pages. */
  maxMemoryPages: number;
  /** Maximum number of elements of each table. */
  maxTableElements: number;
}

/** A memory or table whose declared minimum already exceeds the limit; it is left as declared. */
export interface LimitViolation {
  /** Whether a memory or a table is too large. */
  kind: "memory" | "table";
  /** Index in the memory or table index space. */
  index: number;
  /** Whether the memory or table is imported. */
  imported: boolean;
  /** The declared minimum, in pages (of the memory's page size) or elements. */
  declaredMinimum: number | bigint;
  /** The limit it exceeds, in the same unit, after capping at the spec maximum. */
  limit: number;
}

/**
 * Memories (or tables) each within the limit whose declared minimums add up
 * to more than it: the limits bound a plugin's total, not each memory.
 */
export interface TotalViolation {
  /** Whether the memories or the tables are too large together. */
  kind: "memory" | "table";
  /** How many memories or tables the module has. */
  count: number;
  /** The sum of their declared minimums: 64 KiB pages (rounded up) for memories, elements for tables. */
  declaredMinimum: bigint;
  /** The limit the sum exceeds. */
  limit: number;
}

/** What {@linkcode clampLimits} did. */
export interface ClampResult {
  /** The rewritten module; the input itself when nothing changed and it is not shared memory. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Whether any limit was rewritten. */
  changed: boolean;
  /** Memories and tables whose minimum exceeds the limit. */
  violations: LimitViolation[];
  /** Kinds of storage, of more than one memory or table, whose minimums add up to more than the limit. */
  totals: TotalViolation[];
  /**
   * `bytes` as `parseModule` describes them: the input's description when
   * nothing changed, else a copy with the new limits and offsets, so that
   * the passes after this one need not parse the module again.
   */
  info: ModuleInfo;
}

/** Options of {@linkcode clampLimits}. */
export interface ClampOptions {
  /** The module as `parseModule` already described it, to spare parsing it again. */
  info?: ModuleInfo;
}

/** Limits to re-encode with a new maximum. */
interface Edit {
  readonly limits: Limits;
  readonly maximum: bigint;
}

const WASM_PAGE_SIZE = 65536n;
const MAX_TABLE_ELEMENTS = 2n ** 32n - 1n;
const MAX_TABLE64_ELEMENTS = 2n ** 64n - 1n;
const ADDRESS_SPACE_32 = 2n ** 32n;
const ADDRESS_SPACE_64 = 2n ** 64n;

/**
 * Rewrites every memory and table maximum to `min(declared maximum, limit)`,
 * adding a maximum where none is declared.
 *
 * Memories and tables that are invalid as declared (a maximum beyond the spec
 * maximum, a shared memory without maximum) are left alone so that validation
 * still rejects them.
 *
 * Also reports the kinds of storage whose declared minimums exceed the limit
 * only together: memories are summed in bytes, tables in elements.
 *
 * @throws {RangeError} When a limit is not a non-negative integer or `Infinity`.
 * @throws {BinaryFormatError} When the module is malformed.
 */
export function clampLimits(
  bytes: Uint8Array,
  limits: StorageLimits,
  options: ClampOptions = {},
): ClampResult {
  checkLimit("maxMemoryPages", limits.maxMemoryPages);
  checkLimit("maxTableElements", limits.maxTableElements);
  const info = options.info ?? parseModule(bytes);
  const edits: Edit[] = [];
  const violations: LimitViolation[] = [];
  const totals: TotalViolation[] = [];
  const memories = listMemories(info);
  for (const memory of memories) {
    const cap = memoryCap(memory.limits, limits.maxMemoryPages);
    clampStorage("memory", memory, cap, { edits, violations });
  }
  if (memories.length > 1 && limits.maxMemoryPages !== Infinity) {
    let sum = 0n;
    for (const { limits } of memories) sum += BigInt(limits.min) * pageSize(limits);
    const pages = (sum + WASM_PAGE_SIZE - 1n) / WASM_PAGE_SIZE;
    if (pages > BigInt(limits.maxMemoryPages)) {
      const count = memories.length;
      totals.push({ kind: "memory", count, declaredMinimum: pages, limit: limits.maxMemoryPages });
    }
  }
  const tables = listTables(info);
  const cap = tableCap(limits.maxTableElements);
  for (const table of tables) clampStorage("table", table, cap, { edits, violations });
  if (tables.length > 1 && limits.maxTableElements !== Infinity) {
    let sum = 0n;
    for (const { limits } of tables) sum += BigInt(limits.min);
    if (sum > BigInt(limits.maxTableElements)) {
      const count = tables.length;
      totals.push({ kind: "table", count, declaredMinimum: sum, limit: limits.maxTableElements });
    }
  }
  if (edits.length === 0) {
    return { bytes: unshared(bytes), changed: false, violations, totals, info };
  }
  const changes: Change[] = [];
  const rewritten = rewriteSections(bytes, info.sections, edits, changes);
  return { bytes: rewritten, changed: true, violations, totals, info: moveInfo(info, changes) };
}

function checkLimit(name: string, value: number): void {
  if (value === Infinity || (Number.isSafeInteger(value) && value >= 0)) return;
  throw new RangeError(
    `Cannot clamp limits as '${name}' must be a non-negative integer or Infinity: current value is ${value}`,
  );
}

/** The largest maximum the spec allows for a memory, in its own page units. */
function memorySpecMaximum(limits: Limits): bigint {
  const addressSpace = limits.address === "i64" ? ADDRESS_SPACE_64 : ADDRESS_SPACE_32;
  const units = addressSpace / pageSize(limits);
  return units < addressSpace ? units : addressSpace - 1n;
}

function pageSize(limits: Limits): bigint {
  return limits.pageSizeLog2 === null ? WASM_PAGE_SIZE : 1n << BigInt(limits.pageSizeLog2);
}

/** The memory limit in the memory's page units, capped at the spec maximum; `null` for no limit. */
function memoryCap(limits: Limits, maxMemoryPages: number): bigint | null {
  if (maxMemoryPages === Infinity) return null;
  const units = BigInt(maxMemoryPages) * WASM_PAGE_SIZE / pageSize(limits);
  return min(units, memorySpecMaximum(limits));
}

function tableCap(maxTableElements: number): bigint | null {
  if (maxTableElements === Infinity) return null;
  return min(BigInt(maxTableElements), MAX_TABLE_ELEMENTS);
}

function specMaximum(kind: "memory" | "table", limits: Limits): bigint {
  if (kind === "memory") return memorySpecMaximum(limits);
  return limits.address === "i64" ? MAX_TABLE64_ELEMENTS : MAX_TABLE_ELEMENTS;
}

function clampStorage(
  kind: "memory" | "table",
  storage: StorageDescriptor,
  cap: bigint | null,
  out: { edits: Edit[]; violations: LimitViolation[] },
): void {
  if (cap === null) return;
  const { limits } = storage;
  if (BigInt(limits.min) > cap) {
    out.violations.push({
      kind,
      index: storage.index,
      imported: storage.import !== null,
      declaredMinimum: limits.min,
      limit: Number(cap),
    });
    return;
  }
  const maximum = clampedMaximum(limits, cap, specMaximum(kind, limits));
  if (maximum === null) return;
  out.edits.push({ limits, maximum });
}

/** The maximum to write, or `null` to keep the declared limits as they are. */
function clampedMaximum(limits: Limits, cap: bigint, specMax: bigint): bigint | null {
  if (limits.max === null) return limits.shared ? null : cap;
  const declared = BigInt(limits.max);
  if (declared > specMax || declared <= cap) return null;
  return cap;
}

const HAS_MAX = 0x01;

function encodeLimits(writer: ByteWriter, limits: Limits, maximum: bigint): void {
  writer.u8(limits.flags | HAS_MAX);
  if (limits.address === "i64") writer.u64(BigInt(limits.min)).u64(maximum);
  else writer.u32(Number(limits.min)).u32(Number(maximum));
  if (limits.pageSizeLog2 !== null) writer.u32(limits.pageSizeLog2);
}

/**
 * A range of the input replaced in the output: a section's size, or limits
 * (then with what they now read).
 */
interface Change extends ByteRange {
  /** How many bytes replace the range. */
  readonly length: number;
  /** The limits as re-encoded, when the range held limits. */
  readonly limits: Limits | null;
}

/**
 * Copies `bytes`, re-encoding each section that contains an edit with its new
 * size, and records each range it replaced in `changes`, in module order.
 * Edits and sections are both in module order, so one merged walk visits
 * each once.
 */
function rewriteSections(
  bytes: Uint8Array,
  sections: readonly SectionInfo[],
  edits: readonly Edit[],
  changes: Change[],
): Uint8Array<ArrayBuffer> {
  const sorted = [...edits].sort((a, b) => a.limits.start - b.limits.start);
  const out = new ByteWriter(bytes.length + 16 * edits.length);
  let copied = 0;
  let next = 0;
  for (const section of sections) {
    if (next >= sorted.length) break;
    if (sorted[next]!.limits.start >= section.end) continue;
    let last = next;
    while (last < sorted.length && sorted[last]!.limits.end <= section.end) last++;
    const sizeAt = changes.length;
    const payload = spliceEdits(bytes, section, sorted.slice(next, last), changes);
    out.bytes(bytes.subarray(copied, section.start));
    out.u8(section.id);
    const sizeStart = out.length;
    out.u32(payload.length).bytes(payload);
    const size = { start: section.start + 1, end: section.payloadStart, limits: null };
    changes.splice(sizeAt, 0, { ...size, length: out.length - payload.length - sizeStart });
    copied = section.end;
    next = last;
  }
  return out.bytes(bytes.subarray(copied)).finish();
}

/** Re-encodes the payload of `range` with `edits` applied, recording each in `changes`. */
function spliceEdits(
  bytes: Uint8Array,
  range: SectionInfo,
  edits: readonly Edit[],
  changes: Change[],
): Uint8Array {
  const out = new ByteWriter(range.end - range.payloadStart + 16 * edits.length);
  let copied = range.payloadStart;
  for (const { limits, maximum } of edits) {
    out.bytes(bytes.subarray(copied, limits.start));
    const at = out.length;
    encodeLimits(out, limits, maximum);
    const max = limits.address === "i64" ? maximum : Number(maximum);
    const clamped = { ...limits, flags: limits.flags | HAS_MAX, max };
    changes.push({
      start: limits.start,
      end: limits.end,
      length: out.length - at,
      limits: clamped,
    });
    copied = limits.end;
  }
  return out.bytes(bytes.subarray(copied, range.end)).finish();
}

/**
 * Describes the rewritten module from the input's description: what
 * `changes` replaced reads as re-encoded, and every offset moves by what the
 * changes before it added. Types and index lists carry no offset and are shared.
 */
function moveInfo(info: ModuleInfo, changes: readonly Change[]): ModuleInfo {
  const mover = new OffsetMover(changes);
  // parseModule lists each custom section in both, in module order.
  const sections: SectionInfo[] = [];
  const customSections: CustomSection[] = [];
  for (const section of info.sections) {
    if ("name" in section) {
      const moved = mover.custom(section as CustomSection);
      customSections.push(moved);
      sections.push(moved);
    } else {
      sections.push(mover.section(section));
    }
  }
  return {
    ...info,
    sections,
    customSections,
    imports: info.imports.map((entry) => mover.importEntry(entry)),
    tables: info.tables.map((table): TableEntry => ({
      type: mover.tableType(table.type),
      init: table.init === null ? null : mover.range(table.init),
    })),
    memories: info.memories.map((limits) => mover.limits(limits)),
    globals: info.globals.map((global): GlobalEntry => ({
      ...global,
      init: mover.range(global.init),
    })),
    exports: info.exports.map((entry): ExportEntry => {
      const offset = mover.move(entry.offset);
      return offset === entry.offset ? entry : { ...entry, offset };
    }),
    code: info.code.map((body): CodeBody => {
      const moved = mover.range(body);
      return moved === body ? body : { ...moved, bodyStart: mover.move(body.bodyStart) };
    }),
  };
}

/**
 * Moves the offsets of the input's description to the rewritten module's;
 * each method returns what it is given when nothing moved.
 */
class OffsetMover {
  /** `ends[i]` is where change `i` ended in the input. */
  readonly #ends: number[];
  /** `shifts[i]` is what changes `0..i` added. */
  readonly #shifts: number[] = [];
  /** What all the changes added. */
  readonly #shift: number;
  readonly #byOriginal = new Map<number, Change>();

  constructor(changes: readonly Change[]) {
    this.#ends = changes.map((change) => change.end);
    let shift = 0;
    for (const change of changes) {
      this.#shifts.push(shift += change.length - (change.end - change.start));
    }
    this.#shift = shift;
    for (const change of changes) {
      if (change.limits !== null) this.#byOriginal.set(change.start, change);
    }
  }

  /** Where offset `at` of the input is in the output: after every change that ends at or before it. */
  move(at: number): number {
    const ends = this.#ends;
    // Most offsets (code, data, custom sections) lie after the last change.
    if (at >= ends[ends.length - 1]!) return at + this.#shift;
    let low = 0;
    let high = ends.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (ends[mid]! <= at) low = mid + 1;
      else high = mid;
    }
    return low === 0 ? at : at + this.#shifts[low - 1]!;
  }

  range<T extends ByteRange>(range: T): T {
    const start = this.move(range.start);
    const end = this.move(range.end);
    return start === range.start && end === range.end ? range : { ...range, start, end };
  }

  /** Limits a change replaced read as re-encoded; others just move. */
  limits(limits: Limits): Limits {
    const change = this.#byOriginal.get(limits.start);
    if (change === undefined) return this.range(limits);
    const start = this.move(limits.start);
    return { ...change.limits!, start, end: start + change.length };
  }

  tableType(type: TableType): TableType {
    const limits = this.limits(type.limits);
    const refTypeStart = this.move(type.refTypeStart);
    if (limits === type.limits && refTypeStart === type.refTypeStart) return type;
    return { ...type, refTypeStart, limits };
  }

  section(section: SectionInfo): SectionInfo {
    const { id, start, payloadStart, end } = section;
    const moved = {
      id,
      start: this.move(start),
      payloadStart: this.move(payloadStart),
      end: this.move(end),
    };
    const same = moved.start === start && moved.payloadStart === payloadStart && moved.end === end;
    return same ? section : moved;
  }

  custom(section: CustomSection): CustomSection {
    // Custom sections hold no change: they move as a whole.
    const { id, start, payloadStart, end, name, contentStart } = section;
    const by = this.move(start) - start;
    if (by === 0) return section;
    return {
      id,
      start: start + by,
      payloadStart: payloadStart + by,
      end: end + by,
      name,
      contentStart: contentStart + by,
    };
  }

  importEntry(entry: ImportEntry): ImportEntry {
    const offset = this.move(entry.offset);
    switch (entry.kind) {
      case "table":
        return { ...entry, offset, type: this.tableType(entry.type) };
      case "memory":
        return { ...entry, offset, limits: this.limits(entry.limits) };
      default:
        return offset === entry.offset ? entry : { ...entry, offset };
    }
  }
}

/** Returns `bytes` itself when an `ArrayBuffer` backs it, else a copy, as WebAssembly APIs require. */
export function unshared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice();
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

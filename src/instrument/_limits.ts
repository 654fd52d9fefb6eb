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
  type Limits,
  listMemories,
  listTables,
  type ModuleInfo,
  parseModule,
  type SectionInfo,
  type StorageDescriptor,
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
  if (edits.length === 0) return { bytes: unshared(bytes), changed: false, violations, totals };
  const rewritten = rewriteSections(bytes, info.sections, edits);
  return { bytes: rewritten, changed: true, violations, totals };
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
 * Copies `bytes`, re-encoding each section that contains an edit with its new
 * size. Edits and sections are both in module order, so one merged walk
 * visits each once.
 */
function rewriteSections(
  bytes: Uint8Array,
  sections: readonly SectionInfo[],
  edits: readonly Edit[],
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
    const payload = spliceEdits(bytes, section, sorted, next, last);
    out.bytes(bytes.subarray(copied, section.start));
    out.u8(section.id).u32(payload.length).bytes(payload);
    copied = section.end;
    next = last;
  }
  return out.bytes(bytes.subarray(copied)).finish();
}

/** Re-encodes the payload of `range` with `edits[from, to)` applied. */
function spliceEdits(
  bytes: Uint8Array,
  range: SectionInfo,
  edits: readonly Edit[],
  from: number,
  to: number,
): Uint8Array {
  const out = new ByteWriter(range.end - range.payloadStart + 16 * (to - from));
  let copied = range.payloadStart;
  for (let i = from; i < to; i++) {
    const { limits, maximum } = edits[i]!;
    out.bytes(bytes.subarray(copied, limits.start));
    encodeLimits(out, limits, maximum);
    copied = limits.end;
  }
  return out.bytes(bytes.subarray(copied, range.end)).finish();
}

/** Returns `bytes` itself when an `ArrayBuffer` backs it, else a copy, as WebAssembly APIs require. */
export function unshared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice();
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

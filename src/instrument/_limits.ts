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

/** What {@linkcode clampLimits} did. */
export interface ClampResult {
  /** The rewritten module; the input itself when nothing changed and it is not shared memory. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Whether any limit was rewritten. */
  changed: boolean;
  /** Memories and tables whose minimum exceeds the limit. */
  violations: LimitViolation[];
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly replacement: Uint8Array;
}

const WASM_PAGE_SIZE = 65536n;
const MAX_TABLE_ELEMENTS = 2n ** 32n - 1n;

/**
 * Rewrites every memory and table maximum to `min(declared maximum, limit)`,
 * adding a maximum where none is declared.
 *
 * Memories and tables that are invalid as declared (a maximum beyond the spec
 * maximum, a shared memory without maximum) are left alone so that validation
 * still rejects them.
 *
 * @throws {RangeError} When a limit is not a non-negative integer or `Infinity`.
 * @throws {BinaryFormatError} When the module is malformed.
 */
export function clampLimits(bytes: Uint8Array, limits: StorageLimits): ClampResult {
  checkLimit("maxMemoryPages", limits.maxMemoryPages);
  checkLimit("maxTableElements", limits.maxTableElements);
  const info = parseModule(bytes);
  const edits: Edit[] = [];
  const violations: LimitViolation[] = [];
  for (const memory of listMemories(info)) {
    const cap = memoryCap(memory.limits, limits.maxMemoryPages);
    clampStorage("memory", memory, cap, { edits, violations });
  }
  for (const table of listTables(info)) {
    const cap = tableCap(limits.maxTableElements);
    clampStorage("table", table, cap, { edits, violations });
  }
  if (edits.length === 0) return { bytes: unshared(bytes), changed: false, violations };
  return { bytes: rewriteSections(bytes, info.sections, edits), changed: true, violations };
}

function checkLimit(name: string, value: number): void {
  if (value === Infinity || (Number.isSafeInteger(value) && value >= 0)) return;
  throw new RangeError(
    `Cannot clamp limits as '${name}' must be a non-negative integer or Infinity: current value is ${value}`,
  );
}

/** The largest maximum the spec allows for a memory, in its own page units. */
function memorySpecMaximum(limits: Limits): bigint {
  const addressSpace = limits.address === "i64" ? 2n ** 64n : 2n ** 32n;
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
  return limits.address === "i64" ? 2n ** 64n - 1n : MAX_TABLE_ELEMENTS;
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
  out.edits.push({
    start: limits.start,
    end: limits.end,
    replacement: encodeLimits(limits, maximum),
  });
}

/** The maximum to write, or `null` to keep the declared limits as they are. */
function clampedMaximum(limits: Limits, cap: bigint, specMax: bigint): bigint | null {
  if (limits.max === null) return limits.shared ? null : cap;
  const declared = BigInt(limits.max);
  if (declared > specMax || declared <= cap) return null;
  return cap;
}

const HAS_MAX = 0x01;

function encodeLimits(limits: Limits, maximum: bigint): Uint8Array {
  const writer = new ByteWriter(24);
  writer.u8(limits.flags | HAS_MAX);
  if (limits.address === "i64") writer.u64(BigInt(limits.min)).u64(maximum);
  else writer.u32(Number(limits.min)).u32(Number(maximum));
  if (limits.pageSizeLog2 !== null) writer.u32(limits.pageSizeLog2);
  return writer.finish();
}

/** Copies `bytes`, re-encoding each section that contains an edit with its new size. */
function rewriteSections(
  bytes: Uint8Array,
  sections: readonly SectionInfo[],
  edits: readonly Edit[],
): Uint8Array<ArrayBuffer> {
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  const out = new ByteWriter(bytes.length + 16 * edits.length);
  let copied = 0;
  for (const section of sections) {
    const inside = sorted.filter((edit) =>
      edit.start >= section.payloadStart && edit.end <= section.end
    );
    if (inside.length === 0) continue;
    const payload = spliceEdits(bytes, section, inside);
    out.bytes(bytes.subarray(copied, section.start));
    out.u8(section.id).u32(payload.length).bytes(payload);
    copied = section.end;
  }
  return out.bytes(bytes.subarray(copied)).finish();
}

function spliceEdits(bytes: Uint8Array, range: SectionInfo, edits: readonly Edit[]): Uint8Array {
  const out = new ByteWriter(range.end - range.payloadStart + 16 * edits.length);
  let copied = range.payloadStart;
  for (const edit of edits) {
    out.bytes(bytes.subarray(copied, edit.start)).bytes(edit.replacement);
    copied = edit.end;
  }
  return out.bytes(bytes.subarray(copied, range.end)).finish();
}

/** Returns `bytes` itself when an `ArrayBuffer` backs it, else a copy, as WebAssembly APIs require. */
function unshared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice();
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

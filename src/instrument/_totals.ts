/**
 * Limits on the total size of a module's memories and of its tables.
 *
 * `clampLimits` caps each memory and table at the limit, which is enough for
 * a module with one of each. With several, each could reach the limit, so
 * {@linkcode enforceTotals} also rewrites every `memory.grow` and
 * `table.grow` into a call of an appended function that grows only while the
 * sum over all memories (in bytes) or all tables (in elements) stays within
 * the limit, and returns -1, the spec's refusal, beyond it. The sum is kept in
 * an appended global, computed on first use from `memory.size`/`table.size` of
 * every memory or table (so memories a host grew before any guest code ran
 * are counted), then updated by each successful grow: a grow costs the same
 * whatever the number of memories. An exported function reports the bytes of
 * all memories, which the host cannot see when they are not exported.
 *
 * Functions and globals are appended after the existing ones, so no index
 * changes; each rewritten instruction becomes one `call`, so fuel metering
 * already spliced into the code charges as before.
 *
 * @module
 */

import { type AppendedSections, appendEntry, CodeReader, CodeWriter } from "./_code.ts";
import { checkAppended } from "./_engine_limits.ts";
import { type StorageLimits, unshared } from "./_limits.ts";
import {
  type ExternKind,
  indexSpaceSizes,
  type Limits,
  type ModuleInfo,
  parseModule,
  SectionId,
  type SectionInfo,
  type TableType,
} from "./_module.ts";
import { MEMORY_BYTES_EXPORT } from "../metering/mod.ts";

export { MEMORY_BYTES_EXPORT };

/** Options of {@linkcode enforceTotals}. */
export interface TotalsOptions {
  /**
   * How many memories, from index 0, belong to the plugin; memories after
   * them (an instrumenter's) are neither counted nor limited.
   *
   * @default {every memory}
   */
  memories?: number;
  /**
   * How many tables, from index 0, belong to the plugin.
   *
   * @default {every table}
   */
  tables?: number;
  /** The module as `parseModule` described it, to spare parsing it again. */
  info?: ModuleInfo;
}

/** What {@linkcode enforceTotals} did. */
export interface TotalsResult {
  /** The rewritten module, or the input itself when it has at most one memory and one table. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Export name of the function returning the bytes of all memories, or `null` when not added. */
  readonly memoryBytesExport: string | null;
}

/** Largest total a limit can have: sums are unsigned 64-bit. */
const MAX_TOTAL = (1n << 64n) - 1n;

/** One storage (memory or table) the module grows, and the function that now grows it. */
interface Grown {
  readonly index: number;
  readonly address: "i32" | "i64";
  /** The memory's page size as a shift of bytes (0 for tables). */
  readonly shift: number;
  /** The table's element type as encoded (empty for memories). */
  readonly refType: Uint8Array;
  helper: number;
}

/**
 * Makes `memory.grow` and `table.grow` fail once the sum over all memories
 * or all tables would exceed `limits`, in modules with more than one, and
 * exports the total size of the memories when there are several.
 *
 * @example Bound two memories to 4 pages together
 * ```ts ignore
 * const { bytes, memoryBytesExport } = enforceTotals(module, { maxMemoryPages: 4, maxTableElements: 100 });
 * ```
 *
 * @param bytes A valid module, instrumented or not.
 * @param limits The totals; `Infinity` leaves that kind of storage unlimited.
 * @param options Which memories and tables count.
 * @throws {TypeError} When the module already exports {@linkcode MEMORY_BYTES_EXPORT}.
 * @throws {EngineLimitError} When what it adds would take the module past an engine limit.
 * @throws {BinaryFormatError} When the module is malformed.
 */
export function enforceTotals(
  bytes: Uint8Array,
  limits: StorageLimits,
  options: TotalsOptions = {},
): TotalsResult {
  const info = options.info ?? parseModule(bytes);
  const sizes = indexSpaceSizes(info);
  const memoryCount = Math.min(options.memories ?? sizes.memory, sizes.memory);
  const tableCount = Math.min(options.tables ?? sizes.table, sizes.table);
  if (memoryCount <= 1 && tableCount <= 1) {
    return { bytes: unshared(bytes), memoryBytesExport: null };
  }
  if (info.exports.some((entry) => entry.name === MEMORY_BYTES_EXPORT)) {
    throw new TypeError(`Cannot limit the module's totals: it exports "${MEMORY_BYTES_EXPORT}"`);
  }
  const memories = memoryCount > 1 ? listMemoryLimits(info).slice(0, memoryCount) : [];
  const tables = tableCount > 1 ? listTableTypes(info).slice(0, tableCount) : [];
  const memoryLimit = memoryCount > 1 && limits.maxMemoryPages !== Infinity
    ? minBig(BigInt(limits.maxMemoryPages) << 16n, MAX_TOTAL)
    : null;
  const tableLimit = tableCount > 1 && limits.maxTableElements !== Infinity
    ? minBig(BigInt(limits.maxTableElements), MAX_TOTAL)
    : null;
  const sites = findGrowths(bytes, info, {
    memories: memoryLimit === null ? [] : memories,
    tables: tableLimit === null ? [] : tables,
  });
  if (memories.length <= 1 && sites.targets.length === 0) {
    return { bytes: unshared(bytes), memoryBytesExport: null };
  }
  return new TotalsAssembler(bytes, info, sizes).run({
    memories,
    tables: tables.map((table) => table.limits),
    memoryLimit,
    tableLimit,
    sites,
  });
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Limits of every memory, imported ones first. */
function listMemoryLimits(info: ModuleInfo): Limits[] {
  const memories: Limits[] = [];
  for (const entry of info.imports) if (entry.kind === "memory") memories.push(entry.limits);
  return memories.concat(info.memories);
}

/** Every table type, imported ones first. */
function listTableTypes(info: ModuleInfo): TableType[] {
  const tables: TableType[] = [];
  for (const entry of info.imports) if (entry.kind === "table") tables.push(entry.type);
  for (const table of info.tables) tables.push(table.type);
  return tables;
}

const NO_BYTES = new Uint8Array(0);

/** A memory (or table, with its type) that code grows. */
function grown(bytes: Uint8Array, index: number, limits: Limits, table: TableType | null): Grown {
  return {
    index,
    address: limits.address,
    shift: table === null ? limits.pageSizeLog2 ?? 16 : 0,
    refType: table === null ? NO_BYTES : bytes.slice(table.refTypeStart, limits.start),
    helper: -1,
  };
}

const MEMORY_GROW = 0x40;
const MISC_PREFIX = 0xfc;
const TABLE_GROW_SUB = 15;
const TABLE_GROW = ((MISC_PREFIX << 24) | TABLE_GROW_SUB) >>> 0;

/** The growth instructions to rewrite: their positions and what they grow. */
interface GrowthSites {
  /** For each rewritten instruction: its start, its end, and the index in `targets` it grows. */
  readonly positions: number[];
  /** For each body index, the first entry (a multiple of 3) of `positions` in it; one extra at the end. */
  readonly firstSite: Int32Array;
  /** The memories and tables grown, in the order their helpers are appended. */
  readonly targets: Grown[];
  /** How many of `targets` are memories (they come first). */
  readonly memoryTargets: number;
}

/** Finds every `memory.grow` and `table.grow` of a limited memory or table, in one pass over the code. */
function findGrowths(
  bytes: Uint8Array,
  info: ModuleInfo,
  limited: { memories: readonly Limits[]; tables: readonly TableType[] },
): GrowthSites {
  const positions: number[] = [];
  const firstSite = new Int32Array(info.code.length + 1);
  const memoryTarget = new Map<number, number>();
  const tableTarget = new Map<number, number>();
  const memories: Grown[] = [];
  const tables: Grown[] = [];
  if (limited.memories.length === 0 && limited.tables.length === 0) {
    return { positions, firstSite, targets: [], memoryTargets: 0 };
  }
  for (let i = 0; i < info.code.length; i++) {
    firstSite[i] = positions.length;
    const code = info.code[i]!;
    const reader = new CodeReader(bytes, code.bodyStart, code.end);
    reader.readLocals();
    while (reader.pos < code.end) {
      reader.next();
      const op = reader.op;
      if (op !== MEMORY_GROW && op !== TABLE_GROW) continue;
      const memory = op === MEMORY_GROW;
      let at = reader.start + 1;
      if (!memory) at = skipLeb(bytes, at);
      const index = readLeb(bytes, at);
      if (index >= (memory ? limited.memories : limited.tables).length) continue;
      const targets = memory ? memoryTarget : tableTarget;
      let target = targets.get(index);
      if (target === undefined) {
        const table = memory ? null : limited.tables[index]!;
        const list = memory ? memories : tables;
        target = list.length;
        list.push(grown(bytes, index, table?.limits ?? limited.memories[index]!, table));
        targets.set(index, target);
      }
      positions.push(reader.start, reader.pos, memory ? target : -1 - target);
    }
  }
  firstSite[info.code.length] = positions.length;
  // Table targets were numbered from -1 down; memories come first in the final order.
  for (let p = 2; p < positions.length; p += 3) {
    const target = positions[p]!;
    if (target < 0) positions[p] = memories.length - 1 - target;
  }
  return {
    positions,
    firstSite,
    targets: [...memories, ...tables],
    memoryTargets: memories.length,
  };
}

function skipLeb(bytes: Uint8Array, at: number): number {
  while ((bytes[at]! & 0x80) !== 0) at++;
  return at + 1;
}

function readLeb(bytes: Uint8Array, at: number): number {
  let result = 0;
  let shift = 0;
  while (true) {
    const byte = bytes[at++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7;
  }
}

/** Position of each section id in the required order (the tag section sits before globals). */
const SECTION_RANK: readonly number[] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6];

/** Names of custom sections holding code offsets, which rewritten code invalidates. */
const CODE_METADATA_PREFIX = "metadata.code.";

const I32 = 0x7f;
const I64 = 0x7e;

/** What {@linkcode TotalsAssembler.run} appends and rewrites. */
interface TotalsPlan {
  readonly memories: readonly Limits[];
  readonly tables: readonly Limits[];
  readonly memoryLimit: bigint | null;
  readonly tableLimit: bigint | null;
  readonly sites: GrowthSites;
}

/** Appends the totals' globals, functions, types and export, and rewrites the growth sites. */
class TotalsAssembler {
  readonly #bytes: Uint8Array;
  readonly #info: ModuleInfo;
  readonly #sizes: Readonly<Record<ExternKind, number>>;
  /** Entries appended to vector sections, by section id. */
  readonly #added: AppendedSections = new Map();
  /** Appended type entries by their encoding, to reuse identical ones. */
  readonly #types = new Map<string, number>();
  readonly #bodies: Uint8Array[] = [];
  #globals = 0;

  constructor(bytes: Uint8Array, info: ModuleInfo, sizes: Readonly<Record<ExternKind, number>>) {
    this.#bytes = bytes;
    this.#info = info;
    this.#sizes = sizes;
  }

  run(plan: TotalsPlan): TotalsResult {
    const { sites } = plan;
    let memoryBytesExport: string | null = null;
    let memoryBytes = -1;
    if (plan.memories.length > 1) {
      memoryBytes = this.#function([], [[I64]], (out) => emitMemorySum(out, plan.memories));
      this.#export(MEMORY_BYTES_EXPORT, memoryBytes);
      memoryBytesExport = MEMORY_BYTES_EXPORT;
    }
    const memoryTargets = sites.targets.slice(0, sites.memoryTargets);
    const tableTargets = sites.targets.slice(sites.memoryTargets);
    if (memoryTargets.length > 0) {
      const total = this.#global();
      for (const target of memoryTargets) {
        const address = target.address === "i64" ? I64 : I32;
        const sum = { fn: memoryBytes, total, limit: plan.memoryLimit! };
        target.helper = this.#function([[address]], [[address]], (out) => {
          emitGrow(out, { kind: "memory", target, sum });
        });
      }
    }
    if (tableTargets.length > 0) {
      const total = this.#global();
      const tableSum = this.#function([], [[I64]], (out) => emitTableSum(out, plan.tables));
      for (const target of tableTargets) {
        const address = target.address === "i64" ? I64 : I32;
        const sum = { fn: tableSum, total, limit: plan.tableLimit! };
        const params = [[...target.refType], [address]];
        target.helper = this.#function(params, [[address]], (out) => {
          emitGrow(out, { kind: "table", target, sum });
        });
      }
    }
    checkAppended(this.#info, {
      sections: this.#added,
      action: "Cannot limit the module's totals",
    });
    return { bytes: this.#assemble(sites), memoryBytesExport };
  }

  #append(section: number): CodeWriter {
    return appendEntry(this.#added, section);
  }

  /** Appends a mutable `i64` global holding -1, "not summed yet"; returns its index. */
  #global(): number {
    const out = this.#append(SectionId.Global);
    out.bytes(UNKNOWN_TOTAL_GLOBAL);
    return this.#sizes.global + this.#globals++;
  }

  #export(name: string, index: number): void {
    const out = this.#append(SectionId.Export);
    const encoded = new TextEncoder().encode(name);
    out.u32(encoded.length);
    out.bytes(encoded);
    out.u8(0x00); // function
    out.u32(index);
  }

  /** Appends a function of type `params -> results` (each value type as encoded); returns its index. */
  #function(
    params: readonly (readonly number[])[],
    results: readonly (readonly number[])[],
    emit: (out: CodeWriter) => void,
  ): number {
    const type = [0x60, params.length, ...params.flat(), results.length, ...results.flat()];
    const key = type.join(",");
    let typeIndex = this.#types.get(key);
    if (typeIndex === undefined) {
      typeIndex = this.#info.types.length + this.#types.size;
      this.#types.set(key, typeIndex);
      this.#append(SectionId.Type).bytes(new Uint8Array(type));
    }
    this.#append(SectionId.Function).u32(typeIndex);
    const body = new CodeWriter(64);
    emit(body);
    this.#bodies.push(body.finish());
    return this.#sizes.function + this.#bodies.length - 1;
  }

  #assemble(sites: GrowthSites): Uint8Array<ArrayBuffer> {
    const bytes = this.#bytes;
    const info = this.#info;
    const out = new CodeWriter(bytes.length + (bytes.length >>> 3) + 256);
    out.copy(bytes, 0, 8);
    const present = new Set(info.sections.map((section) => section.id));
    const added = [...this.#added.keys()];
    if (this.#bodies.length > 0) added.push(SectionId.Code);
    const pending = added
      .filter((id) => !present.has(id))
      .sort((a, b) => SECTION_RANK[a]! - SECTION_RANK[b]!);
    const rewritesCode = sites.positions.length > 0;
    for (const section of info.sections) {
      if (section.id === SectionId.Custom) {
        // Code metadata locates instructions by offsets that rewriting moves.
        const stale = rewritesCode && "name" in section &&
          (section.name as string).startsWith(CODE_METADATA_PREFIX);
        if (!stale) out.copy(bytes, section.start, section.end);
        continue;
      }
      while (pending.length > 0 && SECTION_RANK[pending[0]!]! < SECTION_RANK[section.id]!) {
        this.#newSection(out, pending.shift()!, sites);
      }
      if (section.id === SectionId.Code) {
        this.#writeSection(out, section.id, this.#codePayload(section, sites));
      } else if (this.#added.has(section.id)) {
        this.#writeSection(out, section.id, this.#vectorPayload(section, section.id));
      } else {
        out.copy(bytes, section.start, section.end);
      }
    }
    for (const id of pending) this.#newSection(out, id, sites);
    return out.finish();
  }

  /** Writes a section the module lacked, of appended entries only. */
  #newSection(out: CodeWriter, id: number, sites: GrowthSites): void {
    const payload = id === SectionId.Code
      ? this.#codePayload(null, sites)
      : this.#vectorPayload(null, id);
    this.#writeSection(out, id, payload);
  }

  #writeSection(out: CodeWriter, id: number, payload: CodeWriter): void {
    out.u8(id);
    out.u32(payload.length);
    out.copy(payload.buf, 0, payload.length);
  }

  /** An existing vector section with the appended entries, or a new one of them only. */
  #vectorPayload(section: SectionInfo | null, id: number): CodeWriter {
    const added = this.#added.get(id)!;
    const size = section === null ? 0 : section.end - section.payloadStart;
    const out = new CodeWriter(size + added.out.length + 8);
    if (section === null) {
      out.u32(added.count);
    } else {
      const countEnd = skipLeb(this.#bytes, section.payloadStart);
      out.u32(readLeb(this.#bytes, section.payloadStart) + added.count);
      out.copy(this.#bytes, countEnd, section.end);
    }
    out.copy(added.out.buf, 0, added.out.length);
    return out;
  }

  /** The code section with each growth site replaced by a call, and the appended bodies. */
  #codePayload(section: SectionInfo | null, sites: GrowthSites): CodeWriter {
    const bytes = this.#bytes;
    const code = this.#info.code;
    const size = section === null ? 0 : section.end - section.payloadStart;
    const out = new CodeWriter(size + (size >>> 3) + 64);
    out.u32(code.length + this.#bodies.length);
    const { positions, firstSite, targets } = sites;
    const body = new CodeWriter(256);
    for (let i = 0; i < code.length; i++) {
      const { start, bodyStart, end } = code[i]!;
      const first = firstSite[i]!;
      const last = firstSite[i + 1]!;
      if (first === last) {
        out.copy(bytes, start, end);
        continue;
      }
      body.length = 0;
      let copied = bodyStart;
      for (let p = first; p < last; p += 3) {
        body.copy(bytes, copied, positions[p]!);
        body.u8(CALL);
        body.u32(targets[positions[p + 2]!]!.helper);
        copied = positions[p + 1]!;
      }
      body.copy(bytes, copied, end);
      out.u32(body.length);
      out.copy(body.buf, 0, body.length);
    }
    for (const appended of this.#bodies) {
      out.u32(appended.length);
      out.bytes(appended);
    }
    return out;
  }
}

/** `(global (mut i64) (i64.const -1))`. */
const UNKNOWN_TOTAL_GLOBAL = new Uint8Array([I64, 0x01, 0x42, 0x7f, 0x0b]);

const CALL = 0x10;
const END = 0x0b;
const IF = 0x04;
const ELSE = 0x05;
const EMPTY_BLOCK = 0x40;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const GLOBAL_GET = 0x23;
const GLOBAL_SET = 0x24;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const MEMORY_SIZE = 0x3f;
const TABLE_SIZE_SUB = 16;
const I32_NE = 0x47;
const I64_EQ = 0x51;
const I64_NE = 0x52;
const I64_GT_U = 0x56;
const I32_OR = 0x72;
const I64_ADD = 0x7c;
const I64_SUB = 0x7d;
const I64_SHL = 0x86;
const I64_SHR_U = 0x88;
const I64_EXTEND_I32_U = 0xad;

/** Body of `[] -> [i64]`: the bytes of all `memories`. */
function emitMemorySum(out: CodeWriter, memories: readonly Limits[]): void {
  out.u8(0); // no locals
  out.u8(I64_CONST);
  out.u8(0);
  memories.forEach((limits, index) => {
    out.u8(MEMORY_SIZE);
    out.u32(index);
    if (limits.address === "i32") out.u8(I64_EXTEND_I32_U);
    emitShift(out, I64_SHL, limits.pageSizeLog2 ?? 16);
    out.u8(I64_ADD);
  });
  out.u8(END);
}

/** Body of `[] -> [i64]`: the elements of all `tables`. */
function emitTableSum(out: CodeWriter, tables: readonly Limits[]): void {
  out.u8(0); // no locals
  out.u8(I64_CONST);
  out.u8(0);
  tables.forEach((limits, index) => {
    out.u8(MISC_PREFIX);
    out.u32(TABLE_SIZE_SUB);
    out.u32(index);
    if (limits.address === "i32") out.u8(I64_EXTEND_I32_U);
    out.u8(I64_ADD);
  });
  out.u8(END);
}

function emitShift(out: CodeWriter, op: number, shift: number): void {
  if (shift === 0) return;
  out.u8(I64_CONST);
  out.u32(shift); // below 64: the same bytes as its signed encoding
  out.u8(op);
}

/** How a grow helper learns and keeps the total. */
interface GrowPlan {
  readonly kind: "memory" | "table";
  readonly target: Grown;
  readonly sum: {
    /** The function that sums every memory or table. */
    readonly fn: number;
    /** The global caching the total, -1 until first summed. */
    readonly total: number;
    /** The limit on the total, in bytes or elements. */
    readonly limit: bigint;
  };
}

/**
 * Body of a grow helper: `[delta] -> [old size or -1]` for a memory,
 * `[init delta] -> [old size or -1]` for a table. It refuses when the total
 * is above the limit or when `delta` units do not fit in what is left,
 * compared in units so nothing overflows, grows, and adds what it grew.
 */
function emitGrow(out: CodeWriter, { kind, target, sum }: GrowPlan): void {
  const address = target.address === "i64" ? I64 : I32;
  const delta = kind === "memory" ? 0 : 1;
  const total = delta + 1;
  const result = total + 1;
  // Locals: the total (i64) and the result (the address type).
  out.u8(2);
  out.u8(1);
  out.u8(I64);
  out.u8(1);
  out.u8(address);
  emitLoadTotal(out, sum, total);
  emitRefused(out, target, sum, delta, total);
  out.u8(IF);
  out.u8(address);
  out.u8(address === I64 ? I64_CONST : I32_CONST);
  out.u8(0x7f); // -1
  out.u8(ELSE);
  emitGrowAndCount(out, { kind, target, sum }, delta, result);
  out.u8(END); // if
  out.u8(END); // function
}

/** Writes `local total = the total`, summing every memory or table on first use. */
function emitLoadTotal(out: CodeWriter, sum: GrowPlan["sum"], total: number): void {
  out.u8(GLOBAL_GET);
  out.u32(sum.total);
  out.u8(I64_CONST);
  out.u8(0x7f); // -1
  out.u8(I64_EQ);
  out.u8(IF);
  out.u8(EMPTY_BLOCK);
  out.u8(CALL);
  out.u32(sum.fn);
  out.u8(GLOBAL_SET);
  out.u32(sum.total);
  out.u8(END);
  out.u8(GLOBAL_GET);
  out.u32(sum.total);
  out.u8(LOCAL_SET);
  out.u32(total);
}

/** Writes whether the grow is refused: `total > limit | delta > (limit - total) >> shift`. */
function emitRefused(
  out: CodeWriter,
  target: Grown,
  sum: GrowPlan["sum"],
  delta: number,
  total: number,
): void {
  out.u8(LOCAL_GET);
  out.u32(total);
  out.u8(I64_CONST);
  out.s64(sum.limit);
  out.u8(I64_GT_U);
  // delta > (limit - total) >> shift
  emitDelta(out, delta, target.address);
  out.u8(I64_CONST);
  out.s64(sum.limit);
  out.u8(LOCAL_GET);
  out.u32(total);
  out.u8(I64_SUB);
  emitShift(out, I64_SHR_U, target.shift);
  out.u8(I64_GT_U);
  out.u8(I32_OR);
}

/** Writes the grow itself and, when it succeeded, adds what it grew to the total; leaves its result. */
function emitGrowAndCount(
  out: CodeWriter,
  { kind, target, sum }: GrowPlan,
  delta: number,
  result: number,
): void {
  const address = target.address === "i64" ? I64 : I32;
  if (kind === "table") {
    out.u8(LOCAL_GET);
    out.u32(0);
  }
  out.u8(LOCAL_GET);
  out.u32(delta);
  if (kind === "memory") {
    out.u8(MEMORY_GROW);
    out.u32(target.index);
  } else {
    out.u8(MISC_PREFIX);
    out.u32(TABLE_GROW_SUB);
    out.u32(target.index);
  }
  out.u8(LOCAL_TEE);
  out.u32(result);
  out.u8(address === I64 ? I64_CONST : I32_CONST);
  out.u8(0x7f); // -1
  out.u8(address === I64 ? I64_NE : I32_NE);
  out.u8(IF);
  out.u8(EMPTY_BLOCK);
  out.u8(GLOBAL_GET);
  out.u32(sum.total);
  emitDelta(out, delta, target.address);
  emitShift(out, I64_SHL, target.shift);
  out.u8(I64_ADD);
  out.u8(GLOBAL_SET);
  out.u32(sum.total);
  out.u8(END);
  out.u8(LOCAL_GET);
  out.u32(result);
}

/** Pushes the delta parameter as an unsigned `i64`. */
function emitDelta(out: CodeWriter, local: number, address: "i32" | "i64"): void {
  out.u8(LOCAL_GET);
  out.u32(local);
  if (address === "i32") out.u8(I64_EXTEND_I32_U);
}

/**
 * Section-level parsing of WebAssembly binaries.
 *
 * {@linkcode parseModule} walks every section and decodes the declarations a
 * sandbox needs (types, imports, functions, tables, memories, globals, tags,
 * exports, start), and records the byte ranges of everything else (element and
 * data segments, function bodies, custom sections) without decoding
 * instructions, so that a rewriter can splice sections in place.
 *
 * @module
 */

import { BinaryFormatError, ByteReader } from "./_bytes.ts";
import { skipConstExpr } from "./_const_expr.ts";
import { type EngineLimit, overLimit } from "./_engine_limits.ts";
import {
  hex,
  readMutability,
  readRefType,
  readValueType,
  readValueTypes,
  skipFieldType,
} from "./_value_type.ts";

/** Section ids of the WebAssembly binary format. */
export const SectionId = {
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
  DataCount: 12,
  Tag: 13,
} as const;

/** A half-open range `[start, end)` of absolute byte offsets in the module. */
export interface ByteRange {
  /** Offset of the first byte. */
  readonly start: number;
  /** Offset just past the last byte. */
  readonly end: number;
}

/** Where a section lies in the module. */
export interface SectionInfo extends ByteRange {
  /** Section id, 0 (custom) to 13 (tag). */
  readonly id: number;
  /** Offset of the section's contents, just after its size. `start` is the id byte. */
  readonly payloadStart: number;
}

/** A custom section: its name and where its contents lie. */
export interface CustomSection extends SectionInfo {
  /** The section's name. */
  readonly name: string;
  /** Offset of the contents that follow the name. */
  readonly contentStart: number;
}

/** A function type: `(param ...) (result ...)`. */
export interface FuncType {
  /** Discriminates function types from GC aggregate types. */
  readonly kind: "func";
  /** Parameter types, e.g. `["i32", "externref"]`. */
  readonly params: readonly string[];
  /** Result types. */
  readonly results: readonly string[];
}

/** A GC struct or array type, recorded without its fields. */
export interface AggregateType {
  /** Which aggregate this is. */
  readonly kind: "struct" | "array";
}

/**
 * An entry of the type index space. Entries are frozen, and function types
 * encoded alike share one entry.
 */
export type TypeEntry = FuncType | AggregateType;

/** The limits of a memory or table, with the memory-type flags that share their encoding. */
export interface Limits extends ByteRange {
  /** The flags byte: bit 0 has-max, bit 1 shared, bit 2 64-bit addresses, bit 3 custom page size. */
  readonly flags: number;
  /** Declared minimum (pages or elements); a `bigint` when `address` is `"i64"`. */
  readonly min: number | bigint;
  /** Declared maximum, or `null`; a `bigint` when `address` is `"i64"`. */
  readonly max: number | bigint | null;
  /** Whether the memory is shared between threads. */
  readonly shared: boolean;
  /** Address type: `"i64"` for memory64/table64. */
  readonly address: "i32" | "i64";
  /** Log2 of the page size in bytes when a custom page size is declared, else `null` (64 KiB). */
  readonly pageSizeLog2: number | null;
}

/** The type of a table. */
export interface TableType {
  /** Element type, e.g. `"funcref"`. */
  readonly refType: string;
  /** Where the element type's encoding lies (it ends where `limits` starts). */
  readonly refTypeStart: number;
  /** Size limits, in elements. */
  readonly limits: Limits;
}

/** The type of a global. */
export interface GlobalType {
  /** Value type, e.g. `"i32"`. */
  readonly valueType: string;
  /** Whether the global is mutable. */
  readonly mutable: boolean;
}

/** Kinds of imports and exports. */
export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

/** Fields every import has. */
export interface ImportBase {
  /** Module name. */
  readonly module: string;
  /** Field name. */
  readonly name: string;
  /** Offset of the import entry. */
  readonly offset: number;
}

/** An imported function. */
export interface FunctionImport extends ImportBase {
  /** The import's kind. */
  readonly kind: "function";
  /** Index of its function type. */
  readonly typeIndex: number;
}

/** An imported table. */
export interface TableImport extends ImportBase {
  /** The import's kind. */
  readonly kind: "table";
  /** The table type it requires. */
  readonly type: TableType;
}

/** An imported memory. */
export interface MemoryImport extends ImportBase {
  /** The import's kind. */
  readonly kind: "memory";
  /** The memory type it requires. */
  readonly limits: Limits;
}

/** An imported global. */
export interface GlobalImport extends ImportBase {
  /** The import's kind. */
  readonly kind: "global";
  /** The global type it requires. */
  readonly type: GlobalType;
}

/** An imported exception tag. */
export interface TagImport extends ImportBase {
  /** The import's kind. */
  readonly kind: "tag";
  /** Index of the tag's function type. */
  readonly typeIndex: number;
}

/** An entry of the import section. */
export type ImportEntry = FunctionImport | TableImport | MemoryImport | GlobalImport | TagImport;

/** An entry of the export section. */
export interface ExportEntry {
  /** Export name. */
  readonly name: string;
  /** What is exported. */
  readonly kind: ExternKind;
  /** Index in the kind's index space (imports first, then definitions). */
  readonly index: number;
  /** Offset of the export entry. */
  readonly offset: number;
}

/** A table defined by the module. */
export interface TableEntry {
  /** The table's type. */
  readonly type: TableType;
  /** The initializer expression (including `end`), or `null` when elements start as null. */
  readonly init: ByteRange | null;
}

/** A global defined by the module. */
export interface GlobalEntry {
  /** The global's type. */
  readonly type: GlobalType;
  /** The initializer expression, including its `end` opcode. */
  readonly init: ByteRange;
}

/** A function body of the code section. */
export interface CodeBody extends ByteRange {
  /** Offset of the body, just after its size; `start` is the size. */
  readonly bodyStart: number;
}

/** What {@linkcode parseModule} learned about a module. */
export interface ModuleInfo {
  /** Every section, custom ones included, in module order. */
  readonly sections: readonly SectionInfo[];
  /** Custom sections, in module order. */
  readonly customSections: readonly CustomSection[];
  /** The type index space. */
  readonly types: readonly TypeEntry[];
  /** Imports, in order. */
  readonly imports: readonly ImportEntry[];
  /** Type index of each defined function. */
  readonly functions: readonly number[];
  /** Defined tables. */
  readonly tables: readonly TableEntry[];
  /** Defined memories. */
  readonly memories: readonly Limits[];
  /** Defined globals. */
  readonly globals: readonly GlobalEntry[];
  /** Type index of each defined tag. */
  readonly tags: readonly number[];
  /** Exports, in order. */
  readonly exports: readonly ExportEntry[];
  /** The start function's index, or `null`. */
  readonly start: number | null;
  /** The data count section's value, or `null` when absent. */
  readonly dataCount: number | null;
  /** Function bodies, one per defined function. */
  readonly code: readonly CodeBody[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? U[] : T[K] };
type ModuleBuilder = Mutable<ModuleInfo>;
type SectionDecoder = (reader: ByteReader, module: ModuleBuilder) => void;

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const VERSION = [0x01, 0x00, 0x00, 0x00];
const HEADER_SIZE = 8;
const LAST_SECTION_ID = SectionId.Tag;
const EXTERN_KINDS: readonly ExternKind[] = ["function", "table", "memory", "global", "tag"];

/**
 * Parses the sections of a WebAssembly binary module without decoding code.
 *
 * @throws {BinaryFormatError} When the binary is malformed.
 */
export function parseModule(bytes: Uint8Array): ModuleInfo {
  const reader = new ByteReader(bytes);
  const tooLarge = overLimit("moduleSize", bytes.length);
  if (tooLarge !== null) reader.fail(tooLarge, 0);
  readHeader(reader);
  const module = emptyModule();
  let previous: SectionInfo | undefined;
  while (!reader.done) {
    const section = readSectionHeader(reader);
    if ("name" in section) {
      module.customSections.push(section);
      module.sections.push(section);
    } else {
      checkSectionOrder(previous, section);
      previous = section;
      module.sections.push(section);
      decodeSection(bytes, section, module);
    }
    reader.pos = section.end;
  }
  checkFunctionBodies(module, bytes.length);
  return module;
}

function emptyModule(): ModuleBuilder {
  return {
    sections: [],
    customSections: [],
    types: [],
    imports: [],
    functions: [],
    tables: [],
    memories: [],
    globals: [],
    tags: [],
    exports: [],
    start: null,
    dataCount: null,
    code: [],
  };
}

function readHeader(reader: ByteReader): void {
  if (!MAGIC.every((byte, i) => reader.bytes[i] === byte)) {
    reader.fail("Expected magic \\0asm", 0);
  }
  if (!VERSION.every((byte, i) => reader.bytes[4 + i] === byte)) {
    const found = Array.from(reader.bytes.subarray(4, HEADER_SIZE), hex).join(" ");
    reader.fail(`Expected version 01 00 00 00, found ${found || "end of input"}`, 4);
  }
  reader.pos = HEADER_SIZE;
}

/** Reads a section's header, and the name of a custom section (custom sections are not decoded further). */
function readSectionHeader(reader: ByteReader): SectionInfo | CustomSection {
  const start = reader.pos;
  const id = reader.u8();
  if (id > LAST_SECTION_ID) reader.fail(`Unknown section id ${id}`, start);
  const size = reader.u32();
  const payloadStart = reader.pos;
  const remaining = reader.end - payloadStart;
  if (size > remaining) {
    reader.fail(`Section ${id} declares ${size} bytes but ${remaining} remain`, start + 1);
  }
  const end = payloadStart + size;
  if (id !== SectionId.Custom) return { id, start, payloadStart, end };
  // Modules may hold many tiny custom sections: the name is read in place, without a reader of its own.
  const name = reader.name();
  if (reader.pos > end) {
    reader.fail(`Custom section name takes ${reader.pos - payloadStart} bytes of ${size}`, start);
  }
  return { id, start, payloadStart, end, name, contentStart: reader.pos };
}

/** Non-custom section ids in the order the binary format requires. */
const SECTION_ORDER: readonly number[] = [
  SectionId.Type,
  SectionId.Import,
  SectionId.Function,
  SectionId.Table,
  SectionId.Memory,
  SectionId.Tag,
  SectionId.Global,
  SectionId.Export,
  SectionId.Start,
  SectionId.Element,
  SectionId.DataCount,
  SectionId.Code,
  SectionId.Data,
];

function checkSectionOrder(previous: SectionInfo | undefined, section: SectionInfo): void {
  if (previous === undefined) return;
  if (previous.id === section.id) {
    throw new BinaryFormatError(`Duplicate section id ${section.id}`, section.start);
  }
  if (SECTION_ORDER.indexOf(section.id) < SECTION_ORDER.indexOf(previous.id)) {
    throw new BinaryFormatError(
      `Expected section ${section.id} before section ${previous.id}`,
      section.start,
    );
  }
}

function decodeSection(bytes: Uint8Array, section: SectionInfo, module: ModuleBuilder): void {
  const reader = new ByteReader(bytes, { start: section.payloadStart, end: section.end });
  SECTION_DECODERS[section.id]!(reader, module);
  if (!reader.done) {
    const used = reader.pos - section.payloadStart;
    const declared = section.end - section.payloadStart;
    reader.fail(`Section ${section.id} declares ${declared} bytes but its contents take ${used}`);
  }
}

const SECTION_DECODERS: readonly SectionDecoder[] = [
  skipCustomSection, // custom sections are read with their header
  readTypeSection,
  readImportSection,
  readFunctionSection,
  readTableSection,
  readMemorySection,
  readGlobalSection,
  readExportSection,
  readStartSection,
  (reader) => skipSegments(reader, "elementSegments"),
  readCodeSection,
  (reader) => skipSegments(reader, "dataSegments"),
  readDataCountSection,
  readTagSection,
];

function readTypeSection(reader: ByteReader, module: ModuleBuilder): void {
  const { bytes, end } = reader;
  const interned = new Map<number, FuncType>();
  const count = readCount(reader, "types");
  // Sized up front (each entry takes two bytes or more): filling beats growing a million-entry array.
  const types: TypeEntry[] = new Array(Math.min(count, (end - reader.pos) >>> 1));
  let length = 0;
  for (let i = 0; i < count; i++) {
    // The common entry, a short function type seen before, takes no call and no allocation.
    const start = reader.pos;
    if (start < end && bytes[start] === FUNC) {
      const key = shortTypeKey(bytes, start + 1, end);
      const known = key === -1 ? undefined : interned.get(key);
      if (known !== undefined) {
        types[length++] = known;
        reader.pos = start + 3 + known.params.length + known.results.length;
        continue;
      }
    }
    length = readRecursiveTypes(reader, { types, length }, interned);
  }
  types.length = length;
  module.types = types;
}

function readImportSection(reader: ByteReader, module: ModuleBuilder): void {
  readVector(reader, "imports", () => module.imports.push(readImport(reader, module.types)));
}

function readFunctionSection(reader: ByteReader, module: ModuleBuilder): void {
  const { functions, types } = module;
  readVector(reader, "functions", () => functions.push(readFuncTypeIndex(reader, types)));
}

function readTableSection(reader: ByteReader, module: ModuleBuilder): void {
  readVector(reader, "tables", () => module.tables.push(readTable(reader)));
}

function readMemorySection(reader: ByteReader, module: ModuleBuilder): void {
  readVector(reader, "memories", () => module.memories.push(readLimits(reader, "memory")));
}

function readGlobalSection(reader: ByteReader, module: ModuleBuilder): void {
  readVector(reader, "globals", () => module.globals.push(readGlobal(reader)));
}

function readExportSection(reader: ByteReader, module: ModuleBuilder): void {
  // Every definition section precedes the export section, so the index spaces are complete.
  const sizes = indexSpaceSizes(module);
  readVector(reader, "exports", () => module.exports.push(readExport(reader, sizes)));
}

function readStartSection(reader: ByteReader, module: ModuleBuilder): void {
  module.start = reader.u32();
}

function readCodeSection(reader: ByteReader, module: ModuleBuilder): void {
  // More bodies than the engine allows functions cannot match the function section.
  readVector(reader, "functions", () => module.code.push(readCodeBody(reader)));
}

function readDataCountSection(reader: ByteReader, module: ModuleBuilder): void {
  module.dataCount = reader.u32();
}

function readTagSection(reader: ByteReader, module: ModuleBuilder): void {
  readVector(reader, "tags", () => module.tags.push(readTagType(reader, module.types)));
}

/** Reads a vector's count, failing before any entry is read when it exceeds the engine's limit. */
function readCount(reader: ByteReader, limit: EngineLimit): number {
  const start = reader.pos;
  const count = reader.u32();
  const over = overLimit(limit, count);
  if (over !== null) reader.fail(over, start);
  return count;
}

function readVector(reader: ByteReader, limit: EngineLimit, readEntry: () => unknown): void {
  const count = readCount(reader, limit);
  for (let i = 0; i < count; i++) readEntry();
}

function skipCustomSection(reader: ByteReader): void {
  reader.pos = reader.end;
}

/** Element and data segments are kept as opaque byte ranges; only their count is checked. */
function skipSegments(reader: ByteReader, limit: EngineLimit): void {
  if (!reader.done) readCount(reader, limit);
  reader.pos = reader.end;
}

const REC = 0x4e;
const SUB = 0x50;
const SUB_FINAL = 0x4f;
const FUNC = 0x60;
const STRUCT = 0x5f;
const ARRAY = 0x5e;

/** Reads an entry of the type section into `types` from `length` on; returns the new length. */
function readRecursiveTypes(
  reader: ByteReader,
  { types, length }: { types: TypeEntry[]; length: number },
  interned: Map<number, FuncType>,
): number {
  const start = reader.pos;
  if (reader.bytes[start] !== REC) {
    types[length] = readSubType(reader, interned);
    return length + 1;
  }
  reader.pos++;
  const count = readCount(reader, "types");
  for (let i = 0; i < count; i++) types[length++] = readSubType(reader, interned);
  // A group holds many types: the index space, not only the section's count, is limited.
  const over = overLimit("types", length);
  if (over !== null) reader.fail(over, start);
  return length;
}

function readSubType(reader: ByteReader, interned: Map<number, FuncType>): TypeEntry {
  const code = reader.bytes[reader.pos];
  if (code === SUB || code === SUB_FINAL) {
    reader.pos++;
    const count = reader.u32();
    for (let i = 0; i < count; i++) reader.u32();
  }
  if (reader.pos < reader.end && reader.bytes[reader.pos] === FUNC) {
    reader.pos++;
    return readFuncType(reader, interned);
  }
  return readAggregateType(reader);
}

const STRUCT_TYPE: AggregateType = Object.freeze({ kind: "struct" });
const ARRAY_TYPE: AggregateType = Object.freeze({ kind: "array" });

function readAggregateType(reader: ByteReader): AggregateType {
  const start = reader.pos;
  const form = reader.u8();
  switch (form) {
    case STRUCT: {
      const count = readCount(reader, "structFields");
      for (let i = 0; i < count; i++) skipFieldType(reader);
      return STRUCT_TYPE;
    }
    case ARRAY:
      skipFieldType(reader);
      return ARRAY_TYPE;
    default:
      return reader.fail(`Unknown type form 0x${hex(form)}`, start);
  }
}

/**
 * Reads a function type after its `0x60`. Modules repeat a few short types
 * many times, so a type of at most {@linkcode SHORT_TYPE} bytes is decoded
 * once per module and shared: a module of a million types costs a million
 * array slots, not a million objects.
 */
function readFuncType(reader: ByteReader, interned: Map<number, FuncType>): FuncType {
  const start = reader.pos;
  const key = shortTypeKey(reader.bytes, start, reader.end);
  const known = key === -1 ? undefined : interned.get(key);
  if (known !== undefined) {
    reader.pos = start + 2 + known.params.length + known.results.length;
    return known;
  }
  const params = Object.freeze(readValueTypes(reader, "params"));
  const results = Object.freeze(readValueTypes(reader, "results"));
  const type: FuncType = Object.freeze({ kind: "func", params, results });
  // Shared only when each count and type took one byte, as the key assumes.
  if (key !== -1 && reader.pos - start === 2 + params.length + results.length) {
    interned.set(key, type);
  }
  return type;
}

/** Function types of at most this many bytes after `0x60` are shared. */
const SHORT_TYPE = 6;

/**
 * A number that identifies the encoding of a short function type, or -1
 * when it is longer than {@linkcode SHORT_TYPE} bytes or has a byte of 0x80
 * or more. Its bytes, seven bits apiece, are the key: the encoding says
 * where it ends, so no two encodings share one. The bytes are not validated:
 * only the key of bytes that decoded successfully is ever stored.
 */
function shortTypeKey(bytes: Uint8Array, start: number, end: number): number {
  const params = bytes[start];
  if (params === undefined || params >= 0x80) return -1;
  const resultsAt = start + 1 + params;
  const results = bytes[resultsAt];
  if (results === undefined || results >= 0x80) return -1;
  const length = resultsAt + 1 + results - start;
  if (length > SHORT_TYPE || start + length > end) return -1;
  let key = 0;
  for (let i = length - 1; i >= 0; i--) {
    const byte = bytes[start + i]!;
    if (byte >= 0x80) return -1;
    key = key * 0x80 + byte;
  }
  return key;
}

function readImport(reader: ByteReader, types: readonly TypeEntry[]): ImportEntry {
  const offset = reader.pos;
  const module = reader.name();
  const name = reader.name();
  const kindOffset = reader.pos;
  const kind = reader.u8();
  const base = { module, name, offset };
  switch (kind) {
    case 0:
      return { ...base, kind: "function", typeIndex: readFuncTypeIndex(reader, types) };
    case 1:
      return { ...base, kind: "table", type: readTableType(reader) };
    case 2:
      return { ...base, kind: "memory", limits: readLimits(reader, "memory") };
    case 3:
      return { ...base, kind: "global", type: readGlobalType(reader) };
    case 4:
      return { ...base, kind: "tag", typeIndex: readTagType(reader, types) };
    default:
      return reader.fail(`Unknown import kind 0x${hex(kind)}`, kindOffset);
  }
}

const HAS_MAX = 0x01;
const SHARED = 0x02;
const ADDRESS_64 = 0x04;
const CUSTOM_PAGE_SIZE = 0x08;
const ALLOWED_FLAGS = { memory: 0x0f, table: HAS_MAX | ADDRESS_64 } as const;

function readLimits(reader: ByteReader, of: "memory" | "table"): Limits {
  const start = reader.pos;
  const flags = reader.u8();
  if ((flags & ~ALLOWED_FLAGS[of]) !== 0) {
    reader.fail(`Unknown ${of} limits flags 0x${hex(flags)}`, start);
  }
  const address = (flags & ADDRESS_64) !== 0 ? "i64" : "i32";
  const wide = address === "i64";
  const min = wide ? reader.u64() : reader.u32();
  const max = (flags & HAS_MAX) === 0 ? null : wide ? reader.u64() : reader.u32();
  const pageSizeLog2 = (flags & CUSTOM_PAGE_SIZE) !== 0 ? reader.u32() : null;
  const shared = (flags & SHARED) !== 0;
  return { flags, min, max, shared, address, pageSizeLog2, start, end: reader.pos };
}

function readTableType(reader: ByteReader): TableType {
  const refTypeStart = reader.pos;
  const refType = readRefType(reader);
  return { refType, refTypeStart, limits: readLimits(reader, "table") };
}

const TABLE_WITH_INIT = 0x40;

function readTable(reader: ByteReader): TableEntry {
  if (reader.bytes[reader.pos] !== TABLE_WITH_INIT) {
    return { type: readTableType(reader), init: null };
  }
  reader.pos++;
  const reserved = reader.u8();
  if (reserved !== 0) {
    reader.fail(`Expected 0x00 after 0x40, found 0x${hex(reserved)}`, reader.pos - 1);
  }
  const type = readTableType(reader);
  return { type, init: readConstExprRange(reader) };
}

function readGlobalType(reader: ByteReader): GlobalType {
  const valueType = readValueType(reader);
  return { valueType, mutable: readMutability(reader) };
}

function readGlobal(reader: ByteReader): GlobalEntry {
  const type = readGlobalType(reader);
  return { type, init: readConstExprRange(reader) };
}

function readConstExprRange(reader: ByteReader): ByteRange {
  const start = reader.pos;
  skipConstExpr(reader);
  return { start, end: reader.pos };
}

function readTagType(reader: ByteReader, types: readonly TypeEntry[]): number {
  const attribute = reader.u8();
  if (attribute !== 0) {
    reader.fail(`Expected tag attribute 0x00, found 0x${hex(attribute)}`, reader.pos - 1);
  }
  return readFuncTypeIndex(reader, types);
}

/** Reads a type index that must name a function type; the type section always comes first. */
function readFuncTypeIndex(reader: ByteReader, types: readonly TypeEntry[]): number {
  const start = reader.pos;
  const index = reader.u32();
  const type = types[index];
  if (type?.kind === "func") return index;
  const found = type === undefined ? `only ${types.length} types exist` : `it is a ${type.kind}`;
  return reader.fail(`Expected type ${index} to be a function type, but ${found}`, start);
}

function readExport(
  reader: ByteReader,
  sizes: Readonly<Record<ExternKind, number>>,
): ExportEntry {
  const offset = reader.pos;
  const name = reader.name();
  const kindOffset = reader.pos;
  const code = reader.u8();
  const kind = EXTERN_KINDS[code] ?? reader.fail(`Unknown export kind 0x${hex(code)}`, kindOffset);
  const indexOffset = reader.pos;
  const index = reader.u32();
  const count = sizes[kind];
  if (index >= count) {
    reader.fail(`Export "${name}" refers to ${kind} ${index} but only ${count} exist`, indexOffset);
  }
  return { name, kind, index, offset };
}

function readCodeBody(reader: ByteReader): CodeBody {
  const start = reader.pos;
  const size = reader.u32();
  const over = overLimit("functionSize", size);
  if (over !== null) reader.fail(over, start);
  const bodyStart = reader.pos;
  reader.take(size);
  return { start, bodyStart, end: reader.pos };
}

function findSection(info: ModuleInfo, id: number): SectionInfo | undefined {
  return info.sections.find((section) => section.id === id);
}

function checkFunctionBodies(module: ModuleInfo, moduleEnd: number): void {
  if (module.functions.length === module.code.length) return;
  const at = findSection(module, SectionId.Code)?.start ?? moduleEnd;
  throw new BinaryFormatError(
    `Function section declares ${module.functions.length} functions but the code section has ${module.code.length} bodies`,
    at,
  );
}

/** The size of each index space: imports of that kind, then definitions. */
export function indexSpaceSizes(info: ModuleInfo): Record<ExternKind, number> {
  const sizes = {
    function: info.functions.length,
    table: info.tables.length,
    memory: info.memories.length,
    global: info.globals.length,
    tag: info.tags.length,
  };
  for (const entry of info.imports) sizes[entry.kind]++;
  return sizes;
}

/** An import or export as shown to users; `params`/`results` only for functions. */
export interface ExternDescription {
  /** Module name (imports only). */
  module?: string;
  /** Field or export name. */
  name: string;
  /** What is imported or exported. */
  kind: ExternKind;
  /** Parameter types of a function. */
  params?: string[];
  /** Result types of a function. */
  results?: string[];
}

/** Describes every import, with function signatures. */
export function describeImports(info: ModuleInfo): ExternDescription[] {
  return info.imports.map((entry) => {
    const description: ExternDescription = {
      module: entry.module,
      name: entry.name,
      kind: entry.kind,
    };
    if (entry.kind === "function") addSignature(description, funcType(info, entry.typeIndex));
    return description;
  });
}

/** Describes every export, with function signatures resolved through the function index space. */
export function describeExports(info: ModuleInfo): ExternDescription[] {
  const functionTypes = functionTypeIndices(info);
  return info.exports.map((entry) => {
    const description: ExternDescription = { name: entry.name, kind: entry.kind };
    if (entry.kind === "function") {
      addSignature(description, funcType(info, functionTypes[entry.index]!));
    }
    return description;
  });
}

/** Type indices of the whole function index space: imported functions first, then defined ones. */
export function functionTypeIndices(info: ModuleInfo): number[] {
  const indices: number[] = [];
  for (const entry of info.imports) if (entry.kind === "function") indices.push(entry.typeIndex);
  return indices.concat(info.functions);
}

function funcType(info: ModuleInfo, typeIndex: number): FuncType {
  // parseModule checked that every function's type index names a function type.
  return info.types[typeIndex] as FuncType;
}

function addSignature(description: ExternDescription, type: FuncType): void {
  description.params = [...type.params];
  description.results = [...type.results];
}

/** A memory or table of the module's index space. */
export interface StorageDescriptor {
  /** Index in the memory or table index space. */
  readonly index: number;
  /** The import that provides it, or `null` when the module defines it. */
  readonly import: { readonly module: string; readonly name: string } | null;
  /** Names it is exported under. */
  readonly exportNames: readonly string[];
  /** Its limits (and for memories, sharing, address type and page size). */
  readonly limits: Limits;
}

/** A table of the module's index space. */
export interface TableDescriptor extends StorageDescriptor {
  /** Element type, e.g. `"funcref"`. */
  readonly refType: string;
}

/** Lists every memory, imported ones first, then defined ones. */
export function listMemories(info: ModuleInfo): StorageDescriptor[] {
  const names = exportNamesByIndex(info, "memory");
  const memories: StorageDescriptor[] = [];
  for (const entry of info.imports) {
    if (entry.kind !== "memory") continue;
    memories.push(describeStorage(names, memories.length, entry.limits, entry));
  }
  for (const limits of info.memories) {
    memories.push(describeStorage(names, memories.length, limits, null));
  }
  return memories;
}

/** Lists every table, imported ones first, then defined ones. */
export function listTables(info: ModuleInfo): TableDescriptor[] {
  const names = exportNamesByIndex(info, "table");
  const tables: TableDescriptor[] = [];
  for (const entry of info.imports) {
    if (entry.kind !== "table") continue;
    const storage = describeStorage(names, tables.length, entry.type.limits, entry);
    tables.push({ ...storage, refType: entry.type.refType });
  }
  for (const { type } of info.tables) {
    const storage = describeStorage(names, tables.length, type.limits, null);
    tables.push({ ...storage, refType: type.refType });
  }
  return tables;
}

/** Export names of each index of one kind, in one pass over the exports. */
function exportNamesByIndex(info: ModuleInfo, kind: ExternKind): Map<number, string[]> {
  const names = new Map<number, string[]>();
  for (const entry of info.exports) {
    if (entry.kind !== kind) continue;
    const list = names.get(entry.index);
    if (list === undefined) names.set(entry.index, [entry.name]);
    else list.push(entry.name);
  }
  return names;
}

const NO_NAMES: readonly string[] = Object.freeze([]);

function describeStorage(
  names: ReadonlyMap<number, readonly string[]>,
  index: number,
  limits: Limits,
  imported: ImportEntry | null,
): StorageDescriptor {
  const source = imported === null ? null : { module: imported.module, name: imported.name };
  return { index, import: source, exportNames: names.get(index) ?? NO_NAMES, limits };
}

/**
 * Decoding of value types, reference types and heap types into readable
 * strings (`"i32"`, `"funcref"`, `"(ref null 3)"`), the way the text format
 * writes them.
 *
 * @module
 */

import type { ByteReader } from "./_bytes.ts";
import { overLimit } from "./_engine_limits.ts";

const NUMERIC_TYPES: Readonly<Record<number, string>> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
};

/** Abstract heap types by their one-byte code, e.g. `0x70` is `func`. */
const ABSTRACT_HEAP_TYPES: Readonly<Record<number, string>> = {
  0x70: "func",
  0x6f: "extern",
  0x6e: "any",
  0x6d: "eq",
  0x6c: "i31",
  0x6b: "struct",
  0x6a: "array",
  0x69: "exn",
  0x68: "cont",
  0x74: "noexn",
  0x73: "nofunc",
  0x72: "noextern",
  0x71: "none",
  0x75: "nocont",
};

/** Shorthands for nullable references to abstract heap types. */
const NULLABLE_SHORTHANDS: Readonly<Record<string, string>> = {
  func: "funcref",
  extern: "externref",
  any: "anyref",
  eq: "eqref",
  i31: "i31ref",
  struct: "structref",
  array: "arrayref",
  exn: "exnref",
  cont: "contref",
  noexn: "nullexnref",
  nofunc: "nullfuncref",
  noextern: "nullexternref",
  none: "nullref",
  nocont: "nullcontref",
};

const REF = 0x64;
const REF_NULL = 0x63;
const PACKED_TYPES: Readonly<Record<number, string>> = { 0x78: "i8", 0x77: "i16" };

/** Reads a heap type: an abstract heap type name or a type index as a string. */
export function readHeapType(reader: ByteReader): string {
  const code = reader.bytes[reader.pos];
  const abstract = code === undefined ? undefined : ABSTRACT_HEAP_TYPES[code];
  if (abstract !== undefined) {
    reader.pos++;
    return abstract;
  }
  const start = reader.pos;
  const index = reader.s33();
  if (index < 0) reader.fail(`Unknown heap type 0x${hex(code ?? 0)}`, start);
  return String(index);
}

/** Reads a reference type (`funcref`, `(ref 3)`, `(ref null any)`, ...). */
export function readRefType(reader: ByteReader): string {
  const start = reader.pos;
  const type = tryReadRefType(reader);
  return type ??
    reader.fail(`Expected a reference type, found 0x${hex(reader.bytes[start]!)}`, start);
}

/** Reads a value type: a number type, `v128` or a reference type. */
export function readValueType(reader: ByteReader): string {
  const start = reader.pos;
  const code = reader.u8();
  const numeric = NUMERIC_TYPES[code];
  if (numeric !== undefined) return numeric;
  reader.pos = start;
  const type = tryReadRefType(reader);
  return type ?? reader.fail(`Unknown value type 0x${hex(code)}`, start);
}

/** Reads a vector of value types: a function type's parameters or results, up to the engine's limit. */
export function readValueTypes(reader: ByteReader, limit: "params" | "results"): string[] {
  const start = reader.pos;
  const count = reader.u32();
  const over = overLimit(limit, count);
  if (over !== null) reader.fail(over, start);
  const types: string[] = [];
  for (let i = 0; i < count; i++) types.push(readValueType(reader));
  return types;
}

/** Reads a struct or array field: a storage type (value type or packed) and its mutability. */
export function skipFieldType(reader: ByteReader): void {
  const code = reader.bytes[reader.pos];
  if (code !== undefined && PACKED_TYPES[code] !== undefined) reader.pos++;
  else readValueType(reader);
  readMutability(reader);
}

/** Reads a mutability flag byte: `0` immutable, `1` mutable. */
export function readMutability(reader: ByteReader): boolean {
  const start = reader.pos;
  const flag = reader.u8();
  if (flag > 1) reader.fail(`Expected mutability 0 or 1, found 0x${hex(flag)}`, start);
  return flag === 1;
}

function tryReadRefType(reader: ByteReader): string | undefined {
  const code = reader.u8();
  const abstract = ABSTRACT_HEAP_TYPES[code];
  if (abstract !== undefined) return NULLABLE_SHORTHANDS[abstract];
  if (code !== REF && code !== REF_NULL) {
    reader.pos--;
    return undefined;
  }
  const heapType = readHeapType(reader);
  if (code === REF) return `(ref ${heapType})`;
  return NULLABLE_SHORTHANDS[heapType] ?? `(ref null ${heapType})`;
}

/** Formats a byte as two hex digits. */
export function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

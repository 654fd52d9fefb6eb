/**
 * Skipping of constant expressions (global initializers, table initializers,
 * segment offsets) without evaluating them.
 *
 * @module
 */

import type { ByteReader } from "./_bytes.ts";
import { hex, readHeapType } from "./_value_type.ts";

const END = 0x0b;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const F32_CONST = 0x43;
const F64_CONST = 0x44;
const GLOBAL_GET = 0x23;
const REF_NULL = 0xd0;
const REF_FUNC = 0xd2;
const GC_PREFIX = 0xfb;
const SIMD_PREFIX = 0xfd;
const V128_CONST = 12;

/** Extended-const arithmetic: `i32.add/sub/mul`, `i64.add/sub/mul`. */
const ARITHMETIC = new Set([0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e]);

/** GC instructions allowed in constant expressions, by sub-opcode, with their index immediates. */
const GC_CONST_IMMEDIATES: ReadonlyMap<number, number> = new Map([
  [0, 1], // struct.new typeidx
  [1, 1], // struct.new_default typeidx
  [6, 1], // array.new typeidx
  [7, 1], // array.new_default typeidx
  [8, 2], // array.new_fixed typeidx n
  [26, 0], // any.convert_extern
  [27, 0], // extern.convert_any
  [28, 0], // ref.i31
]);

/**
 * Advances `reader` past a constant expression, including its final `end`.
 *
 * @throws {BinaryFormatError} On an opcode that is not allowed in constant expressions.
 */
export function skipConstExpr(reader: ByteReader): void {
  while (true) {
    const start = reader.pos;
    const opcode = reader.u8();
    if (opcode === END) return;
    if (!skipInstruction(reader, opcode)) {
      reader.fail(`Unexpected opcode 0x${hex(opcode)} in constant expression`, start);
    }
  }
}

function skipInstruction(reader: ByteReader, opcode: number): boolean {
  switch (opcode) {
    case I32_CONST:
      reader.s32();
      return true;
    case I64_CONST:
      reader.s64();
      return true;
    case F32_CONST:
      reader.take(4);
      return true;
    case F64_CONST:
      reader.take(8);
      return true;
    case GLOBAL_GET:
    case REF_FUNC:
      reader.u32();
      return true;
    case REF_NULL:
      readHeapType(reader);
      return true;
    case SIMD_PREFIX:
      return skipSimdInstruction(reader);
    case GC_PREFIX:
      return skipGcInstruction(reader);
    default:
      return ARITHMETIC.has(opcode);
  }
}

function skipSimdInstruction(reader: ByteReader): boolean {
  if (reader.u32() !== V128_CONST) return false;
  reader.take(16);
  return true;
}

function skipGcInstruction(reader: ByteReader): boolean {
  const immediates = GC_CONST_IMMEDIATES.get(reader.u32());
  if (immediates === undefined) return false;
  for (let i = 0; i < immediates; i++) reader.u32();
  return true;
}

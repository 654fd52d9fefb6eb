/**
 * The instruction table of the WebAssembly code section: for every opcode the
 * instrumenter accepts, the kind of its immediates and its role in control
 * flow.
 *
 * Coverage is what V8 15 (Deno 2.9) accepts without flags: the MVP,
 * sign-extension, non-trapping float-to-int, multi-value, bulk memory, reference
 * types, typed function references, tail calls, SIMD and relaxed SIMD,
 * multi-memory, memory64, exception handling (`try_table` and the legacy
 * `try`/`catch`/`delegate`), threads and GC. Every other opcode is unknown.
 *
 * @module
 */

/** Kinds of immediates following an opcode. */
export const Imm = {
  /** No immediate. */
  None: 0,
  /** A block type: `0x40`, a value type, or an s33 type index. */
  BlockType: 1,
  /** One u32 LEB128 (index or label). */
  U32: 2,
  /** Two u32 LEB128s. */
  U32x2: 3,
  /** `br_table`: a vector of labels and a default label. */
  BrTable: 4,
  /** `select t*`: a vector of value types. */
  SelectT: 5,
  /** `try_table`: a block type and a vector of catch clauses. */
  TryTable: 6,
  /** A memory argument: flags (bit 6: explicit memory index), memory index, u64 offset. */
  MemArg: 7,
  /** A memory argument followed by a lane byte. */
  MemArgLane: 8,
  /** An s32 LEB128. */
  I32: 9,
  /** An s64 LEB128. */
  I64: 10,
  /** Four raw bytes. */
  Bytes4: 11,
  /** Eight raw bytes. */
  Bytes8: 12,
  /** Sixteen raw bytes (`v128.const`, `i8x16.shuffle`). */
  Bytes16: 13,
  /** One raw byte (lane index, `atomic.fence` reserved byte). */
  Byte: 14,
  /** A heap type (s33). */
  HeapType: 15,
  /** `br_on_cast`: flags byte, label, two heap types. */
  BrOnCast: 16,
  /** Marks an opcode that does not exist. */
  Invalid: 255,
} as const;

/** Roles of instructions in control flow, as the passes see them. */
export const Ctl = {
  /** Straight-line instruction. */
  None: 0,
  /** `block`, `try_table`: opens a label that is targeted at its end. */
  Block: 1,
  /** `loop`: opens a label targeted at its start. */
  Loop: 2,
  /** `if`: conditional entry of a block. */
  If: 3,
  /** `else`. */
  Else: 4,
  /** `end`. */
  End: 5,
  /** Legacy `try`. */
  Try: 6,
  /** Legacy `catch` and `catch_all`. */
  Catch: 7,
  /** Legacy `delegate`: closes a `try`. */
  Delegate: 8,
  /** Unconditional transfer: `br`, `br_table`, `return`, `unreachable`, `throw`, ... */
  Jump: 9,
  /** Conditional branch that may fall through: `br_if`, `br_on_null`, `br_on_cast`, ... */
  Branch: 10,
  /** Call that returns to the next instruction. */
  Call: 11,
  /** Tail call: `return_call`, `return_call_indirect`, `return_call_ref`. */
  TailCall: 12,
} as const;

/** Opcode prefixes, whose sub-opcode follows as a u32 LEB128. */
export const Prefix = { Gc: 0xfb, Misc: 0xfc, Simd: 0xfd, Atomic: 0xfe } as const;

function table(size: number): Uint8Array {
  return new Uint8Array(size).fill(Imm.Invalid);
}

function set(target: Uint8Array, from: number, to: number, kind: number): void {
  for (let op = from; op <= to; op++) target[op] = kind;
}

/** Immediate kind of each single-byte opcode (prefixes are `Invalid` here). */
export const SINGLE_IMM: Uint8Array = table(256);
/** Control role of each single-byte opcode. */
export const SINGLE_CTL: Uint8Array = new Uint8Array(256);

{
  const imm = SINGLE_IMM;
  const ctl = SINGLE_CTL;
  const define = (op: number, kind: number, role: number = Ctl.None): void => {
    imm[op] = kind;
    ctl[op] = role;
  };
  define(0x00, Imm.None, Ctl.Jump); // unreachable
  define(0x01, Imm.None); // nop
  define(0x02, Imm.BlockType, Ctl.Block);
  define(0x03, Imm.BlockType, Ctl.Loop);
  define(0x04, Imm.BlockType, Ctl.If);
  define(0x05, Imm.None, Ctl.Else);
  define(0x06, Imm.BlockType, Ctl.Try);
  define(0x07, Imm.U32, Ctl.Catch); // catch tag
  define(0x08, Imm.U32, Ctl.Jump); // throw tag
  define(0x09, Imm.U32, Ctl.Jump); // rethrow label
  define(0x0a, Imm.None, Ctl.Jump); // throw_ref
  define(0x0b, Imm.None, Ctl.End);
  define(0x0c, Imm.U32, Ctl.Jump); // br
  define(0x0d, Imm.U32, Ctl.Branch); // br_if
  define(0x0e, Imm.BrTable, Ctl.Jump);
  define(0x0f, Imm.None, Ctl.Jump); // return
  define(0x10, Imm.U32, Ctl.Call); // call
  define(0x11, Imm.U32x2, Ctl.Call); // call_indirect type table
  define(0x12, Imm.U32, Ctl.TailCall); // return_call
  define(0x13, Imm.U32x2, Ctl.TailCall); // return_call_indirect
  define(0x14, Imm.U32, Ctl.Call); // call_ref type
  define(0x15, Imm.U32, Ctl.TailCall); // return_call_ref type
  define(0x18, Imm.U32, Ctl.Delegate);
  define(0x19, Imm.None, Ctl.Catch); // catch_all
  define(0x1a, Imm.None); // drop
  define(0x1b, Imm.None); // select
  define(0x1c, Imm.SelectT);
  define(0x1f, Imm.TryTable, Ctl.Block);
  set(imm, 0x20, 0x24, Imm.U32); // local.*, global.*
  set(imm, 0x25, 0x26, Imm.U32); // table.get/set
  set(imm, 0x28, 0x3e, Imm.MemArg); // loads and stores
  set(imm, 0x3f, 0x40, Imm.U32); // memory.size/grow memidx
  define(0x41, Imm.I32);
  define(0x42, Imm.I64);
  define(0x43, Imm.Bytes4);
  define(0x44, Imm.Bytes8);
  set(imm, 0x45, 0xc4, Imm.None); // numeric, sign extension
  define(0xd0, Imm.HeapType); // ref.null
  define(0xd1, Imm.None); // ref.is_null
  define(0xd2, Imm.U32); // ref.func
  define(0xd3, Imm.None); // ref.eq
  define(0xd4, Imm.None); // ref.as_non_null
  define(0xd5, Imm.U32, Ctl.Branch); // br_on_null
  define(0xd6, Imm.U32, Ctl.Branch); // br_on_non_null
}

/** Immediate kinds of `0xFB` (GC) sub-opcodes. */
export const GC_IMM: Uint8Array = table(0x22);
{
  const t = GC_IMM;
  t[0] = t[1] = Imm.U32; // struct.new(_default) type
  set(t, 2, 5, Imm.U32x2); // struct.get(_s/_u)/set type field
  t[6] = t[7] = Imm.U32; // array.new(_default) type
  t[8] = t[9] = t[10] = Imm.U32x2; // array.new_fixed/_data/_elem
  set(t, 11, 14, Imm.U32); // array.get(_s/_u)/set type
  t[15] = Imm.None; // array.len
  t[16] = Imm.U32; // array.fill
  t[17] = t[18] = t[19] = Imm.U32x2; // array.copy, array.init_data/_elem
  set(t, 20, 23, Imm.HeapType); // ref.test, ref.cast (null)
  t[24] = t[25] = Imm.BrOnCast; // br_on_cast(_fail)
  set(t, 26, 30, Imm.None); // any/extern convert, ref.i31, i31.get_s/u
  t[32] = t[33] = Imm.U32; // struct.new_desc, struct.new_default_desc (V8 accepts)
}

/** Immediate kinds of `0xFC` sub-opcodes. */
export const MISC_IMM: Uint8Array = table(18);
{
  const t = MISC_IMM;
  set(t, 0, 7, Imm.None); // trunc_sat
  t[8] = Imm.U32x2; // memory.init data mem
  t[9] = Imm.U32; // data.drop
  t[10] = Imm.U32x2; // memory.copy
  t[11] = Imm.U32; // memory.fill
  t[12] = Imm.U32x2; // table.init
  t[13] = Imm.U32; // elem.drop
  t[14] = Imm.U32x2; // table.copy
  set(t, 15, 17, Imm.U32); // table.grow/size/fill
}

/** Immediate kinds of `0xFD` (SIMD, relaxed SIMD) sub-opcodes. */
export const SIMD_IMM: Uint8Array = table(0x114);
{
  const t = SIMD_IMM;
  set(t, 0, 11, Imm.MemArg); // v128.load*, v128.store
  t[12] = Imm.Bytes16; // v128.const
  t[13] = Imm.Bytes16; // i8x16.shuffle
  set(t, 14, 20, Imm.None); // swizzle, splats
  set(t, 21, 34, Imm.Byte); // extract/replace lane
  set(t, 35, 83, Imm.None);
  set(t, 84, 91, Imm.MemArgLane); // load/store lane
  t[92] = t[93] = Imm.MemArg; // load32_zero, load64_zero
  set(t, 94, 255, Imm.None);
  // Opcodes the SIMD proposal left unassigned.
  for (const gap of [154, 162, 165, 166, 175, 176, 178, 179, 180, 187, 194, 197, 198, 207, 208]) {
    t[gap] = Imm.Invalid;
  }
  for (const gap of [210, 211, 212, 226, 238]) t[gap] = Imm.Invalid;
  set(t, 0x100, 0x113, Imm.None); // relaxed SIMD
}

/** Immediate kinds of `0xFE` (threads) sub-opcodes. */
export const ATOMIC_IMM: Uint8Array = table(0x4f);
{
  const t = ATOMIC_IMM;
  set(t, 0, 2, Imm.MemArg); // notify, wait32, wait64
  t[3] = Imm.Byte; // atomic.fence
  set(t, 0x10, 0x4e, Imm.MemArg); // loads, stores, read-modify-write
}

/** Control role of a prefixed instruction (only GC casts branch). */
export function prefixedCtl(prefix: number, sub: number): number {
  return prefix === Prefix.Gc && (sub === 24 || sub === 25) ? Ctl.Branch : Ctl.None;
}

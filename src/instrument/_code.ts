/**
 * Decoding and encoding of function bodies.
 *
 * {@linkcode CodeReader} walks a body one instruction at a time without
 * allocating: it skips immediates using the table in `_opcodes.ts` and reports
 * each instruction's control role, which is all the passes need. Nesting is
 * tracked by the caller with an explicit stack, never by recursion, so deeply
 * nested blocks cannot overflow the host stack. {@linkcode CodeWriter} is the
 * growable output buffer the rewriter splices into, with fixed-width LEB128
 * slots that can be patched once a value is known.
 *
 * @module
 */

import { BinaryFormatError, encodeS64 } from "./_bytes.ts";
import {
  ATOMIC_IMM,
  Ctl,
  GC_IMM,
  Imm,
  MISC_IMM,
  Prefix,
  prefixedCtl,
  SIMD_IMM,
  SINGLE_CTL,
  SINGLE_IMM,
} from "./_opcodes.ts";

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

/** A cursor over one function body that decodes it instruction by instruction. */
export class CodeReader {
  /** The whole module. */
  readonly bytes: Uint8Array;
  /** Absolute position of the cursor. */
  pos: number;
  /** Absolute end of the body. */
  readonly end: number;
  /** Start of the instruction last returned by {@linkcode CodeReader.next}. */
  start = 0;
  /** Opcode of that instruction: its byte, or `prefix << 24 | sub` for prefixed ones. */
  op = 0;

  /**
   * Creates a reader over `bytes[start, end)`, offsets being absolute in `bytes`.
   *
   * @param bytes The module bytes.
   * @param start Absolute start of the body (its locals vector).
   * @param end Absolute end of the body.
   */
  constructor(bytes: Uint8Array, start: number, end: number) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  /** Throws a {@linkcode BinaryFormatError} at `at` (the cursor by default). */
  fail(message: string, at: number = this.pos): never {
    throw new BinaryFormatError(message, at);
  }

  /** Reads one byte. */
  u8(): number {
    if (this.pos >= this.end) this.fail("Unexpected end of function body");
    return this.bytes[this.pos++]!;
  }

  /** Reads an unsigned LEB128 of at most 32 bits. */
  u32(): number {
    const start = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.u8();
      if (shift === 28 && (byte & 0x70) !== 0) this.fail("Integer too large", start);
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
    }
    return this.fail("Integer representation too long", start);
  }

  /** Skips a LEB128 of at most `maxBytes` bytes. */
  skipLeb(maxBytes: number): void {
    const start = this.pos;
    const bytes = this.bytes;
    const end = Math.min(this.end, start + maxBytes);
    let p = start;
    while (p < end) {
      if ((bytes[p++]! & 0x80) === 0) {
        this.pos = p;
        return;
      }
    }
    if (p >= this.end) this.fail("Unexpected end of function body", p);
    this.fail("Integer representation too long", start);
  }

  /** Skips a value type (one byte, or a reference type with a heap type); returns its first byte. */
  skipValueType(): number {
    const byte = this.u8();
    if (byte === 0x63 || byte === 0x64) this.skipLeb(5);
    return byte;
  }

  /**
   * Bytes the declared locals of the body last read by {@linkcode readLocals}
   * take (see {@linkcode localBytes}): what the engine zeroes on every entry.
   */
  localBytes = 0;

  /**
   * Reads the locals vector at the start of the body.
   *
   * @returns The number of locals it declares; `pos` is then at the first instruction.
   */
  readLocals(): number {
    const groups = this.u32();
    let count = 0;
    let bytes = 0;
    for (let i = 0; i < groups; i++) {
      const run = this.u32();
      count += run;
      bytes += run * valueBytes(this.skipValueType());
    }
    this.localBytes = bytes;
    return count;
  }

  /**
   * Decodes the next instruction and moves past it.
   *
   * @returns Its control role, one of {@linkcode Ctl}.
   * @throws {BinaryFormatError} On an unknown opcode or malformed immediates.
   */
  next(): number {
    const start = this.pos;
    this.start = start;
    const op = this.u8();
    let kind = SINGLE_IMM[op]!;
    let ctl = SINGLE_CTL[op]!;
    this.op = op;
    if (kind === Imm.Invalid) {
      const sub = this.#prefixed(op, start);
      kind = prefixTable(op)[sub]!;
      ctl = prefixedCtl(op, sub);
      this.op = (op << 24 | sub) >>> 0;
    }
    if (kind !== Imm.None) this.#skipImmediates(kind);
    return ctl;
  }

  #prefixed(op: number, start: number): number {
    const table = prefixTable(op);
    if (table.length === 0) this.fail(`Unknown opcode ${hex(op)}`, start);
    const sub = this.u32();
    if (sub >= table.length || table[sub] === Imm.Invalid) {
      this.fail(`Unknown opcode ${hex(op)} ${sub}`, start);
    }
    return sub;
  }

  #skipImmediates(kind: number): void {
    switch (kind) {
      case Imm.U32:
        return this.skipLeb(5);
      case Imm.U32x2:
        this.skipLeb(5);
        return this.skipLeb(5);
      case Imm.I32:
        return this.skipLeb(5);
      case Imm.I64:
        return this.skipLeb(10);
      case Imm.MemArg:
        return this.#skipMemArg();
      case Imm.BlockType:
        return this.#skipBlockType();
      case Imm.Byte:
        this.#skipBytes(1);
        return;
      case Imm.Bytes4:
        return this.#skipBytes(4);
      case Imm.Bytes8:
        return this.#skipBytes(8);
      case Imm.Bytes16:
        return this.#skipBytes(16);
      case Imm.BrTable: {
        const count = this.u32();
        for (let i = 0; i <= count; i++) this.skipLeb(5);
        return;
      }
      case Imm.SelectT: {
        const count = this.u32();
        for (let i = 0; i < count; i++) this.skipValueType();
        return;
      }
      case Imm.TryTable:
        return this.#skipTryTable();
      case Imm.MemArgLane:
        this.#skipMemArg();
        return this.#skipBytes(1);
      case Imm.HeapType:
        return this.skipLeb(5);
      case Imm.BrOnCast:
        this.#skipBytes(1);
        this.skipLeb(5);
        this.skipLeb(5);
        return this.skipLeb(5);
    }
  }

  #skipBytes(n: number): void {
    if (this.pos + n > this.end) this.fail("Unexpected end of function body");
    this.pos += n;
  }

  #skipMemArg(): void {
    const flags = this.u32();
    if ((flags & 0x40) !== 0) this.skipLeb(5);
    this.skipLeb(10);
  }

  #skipBlockType(): void {
    const byte = this.u8();
    if ((byte & 0x80) !== 0) {
      this.pos--;
      this.skipLeb(5);
    } else if (byte === 0x63 || byte === 0x64) {
      this.skipLeb(5);
    }
  }

  #skipTryTable(): void {
    this.#skipBlockType();
    const count = this.u32();
    for (let i = 0; i < count; i++) {
      const at = this.pos;
      const kind = this.u8();
      if (kind > 3) this.fail(`Unknown catch clause kind ${hex(kind)}`, at);
      if (kind < 2) this.skipLeb(5);
      this.skipLeb(5);
    }
  }
}

const NO_TABLE = new Uint8Array(0);

function prefixTable(op: number): Uint8Array {
  switch (op) {
    case Prefix.Gc:
      return GC_IMM;
    case Prefix.Misc:
      return MISC_IMM;
    case Prefix.Simd:
      return SIMD_IMM;
    case Prefix.Atomic:
      return ATOMIC_IMM;
    default:
      return NO_TABLE;
  }
}

/** A growable byte buffer with patchable fixed-width LEB128 slots. */
export class CodeWriter {
  /** The buffer; only `buf[0, length)` is meaningful. */
  buf: Uint8Array<ArrayBuffer>;
  /** Number of bytes written. */
  length = 0;
  /**
   * Where to note the offsets of the `if`s {@linkcode CodeWriter.unlikelyIf}
   * writes (for a branch hint section), or `null` not to.
   */
  hints: number[] | null = null;

  /** Creates an empty writer. */
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Writes `if` of type `[] -> []` whose condition is rarely true, noting where it is. */
  unlikelyIf(): void {
    this.hints?.push(this.length);
    this.u8(0x04);
    this.u8(0x40);
  }

  /** Writes one byte. */
  u8(value: number): void {
    if (this.length >= this.buf.length) this.reserve(1);
    this.buf[this.length++] = value;
  }

  /** Writes an unsigned LEB128 (minimal encoding). */
  u32(value: number): void {
    let v = value >>> 0;
    this.reserve(5);
    do {
      let byte = v & 0x7f;
      v >>>= 7;
      if (v !== 0) byte |= 0x80;
      this.buf[this.length++] = byte;
    } while (v !== 0);
  }

  /** Writes a signed LEB128 of a 32-bit value (minimal encoding). */
  s32(value: number): void {
    let v = value | 0;
    this.reserve(5);
    while (true) {
      const byte = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
        this.buf[this.length++] = byte;
        return;
      }
      this.buf[this.length++] = byte | 0x80;
    }
  }

  /** Writes a signed LEB128 of a 64-bit value (minimal encoding). */
  s64(value: bigint): void {
    encodeS64(value, (byte) => this.u8(byte));
  }

  /** Writes `src[from, to)`. */
  copy(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (this.length + n > this.buf.length) this.reserve(n);
    if (n < 48) {
      // Short runs are the common case; a loop beats allocating a subarray.
      const buf = this.buf;
      let at = this.length;
      for (let i = from; i < to; i++) buf[at++] = src[i]!;
      this.length = at;
      return;
    }
    this.buf.set(src.subarray(from, to), this.length);
    this.length += n;
  }

  /** Writes all of `src`. */
  bytes(src: Uint8Array): void {
    this.copy(src, 0, src.length);
  }

  /** Writes a 5-byte signed LEB128 slot holding zero; returns its position for {@linkcode CodeWriter.patch5}. */
  slot5(): number {
    this.reserve(5);
    const at = this.length;
    const buf = this.buf;
    buf[at] = 0x80;
    buf[at + 1] = 0x80;
    buf[at + 2] = 0x80;
    buf[at + 3] = 0x80;
    buf[at + 4] = 0x00;
    this.length += 5;
    return at;
  }

  /** Stores a non-negative value below 2^34 in a slot made by {@linkcode CodeWriter.slot5}. */
  patch5(at: number, value: number): void {
    const buf = this.buf;
    buf[at] = (value & 0x7f) | 0x80;
    buf[at + 1] = ((value >>> 7) & 0x7f) | 0x80;
    buf[at + 2] = ((value >>> 14) & 0x7f) | 0x80;
    buf[at + 3] = ((value >>> 21) & 0x7f) | 0x80;
    buf[at + 4] = Math.floor(value / 2 ** 28) & 0x3f;
  }

  /** Returns a copy of the bytes written. */
  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

/** One decoded instruction of a function body. */
export interface Instruction {
  /** Opcode: its byte, or `prefix << 24 | sub` for prefixed instructions. */
  readonly op: number;
  /** Control role, one of {@linkcode Ctl}. */
  readonly ctl: number;
  /** Absolute offset of the opcode. */
  readonly start: number;
  /** Absolute offset just past the immediates. */
  readonly end: number;
}

/** A function body decoded into its locals header and a flat instruction list. */
export interface DecodedBody {
  /** Absolute range of the locals vector. */
  readonly localsStart: number;
  /** Absolute offset where the locals vector ends and code begins. */
  readonly localsEnd: number;
  /** Number of locals declared (parameters excluded). */
  readonly localCount: number;
  /** The instructions, the final `end` included. */
  readonly instructions: Instruction[];
}

/**
 * Decodes a function body into a flat instruction list, checking that blocks
 * nest properly and that the body ends exactly with its final `end`.
 *
 * @param bytes The module bytes.
 * @param start Absolute start of the body (after its size).
 * @param end Absolute end of the body.
 * @throws {BinaryFormatError} When the body is malformed.
 */
export function decodeBody(bytes: Uint8Array, start: number, end: number): DecodedBody {
  const reader = new CodeReader(bytes, start, end);
  const localCount = reader.readLocals();
  const localsEnd = reader.pos;
  const instructions: Instruction[] = [];
  const nesting = new Nesting();
  while (true) {
    const ctl = reader.next();
    instructions.push({ op: reader.op, ctl, start: reader.start, end: reader.pos });
    if (nesting.step(reader, ctl)) break;
  }
  nesting.finish(reader);
  return { localsStart: start, localsEnd, localCount, instructions };
}

/**
 * Encodes a decoded body back to bytes (the inverse of {@linkcode decodeBody}).
 *
 * @param bytes The module bytes the body was decoded from.
 * @param body The decoded body.
 */
export function encodeBody(bytes: Uint8Array, body: DecodedBody): Uint8Array<ArrayBuffer> {
  const out = new CodeWriter(body.instructions.at(-1)?.end ?? 16);
  out.copy(bytes, body.localsStart, body.localsEnd);
  for (const instruction of body.instructions) out.copy(bytes, instruction.start, instruction.end);
  return out.finish();
}

/** Kinds of open blocks on the {@linkcode Nesting} stack. */
export const Frame = { Function: 0, Block: 1, Loop: 2, If: 3, Try: 4 } as const;

/** An explicit stack of open blocks, so that nesting depth never costs host stack. */
export class Nesting {
  #kinds = new Uint8Array(64);
  /** Number of open blocks, the function's included. */
  depth = 1;
  /** Whether the last `end` stepped over closed a `loop`. */
  endedLoop = false;

  /** Empties the stack for the next body. */
  reset(): void {
    this.depth = 1;
    this.endedLoop = false;
  }

  /** Kind of the innermost open block. */
  get top(): number {
    return this.#kinds[this.depth - 1]!;
  }

  /** Kind of the frame at index `d` (0 is the function), also just after it closed. */
  kindAt(d: number): number {
    return this.#kinds[d]!;
  }

  /** Opens a block of `kind`. */
  push(kind: number): void {
    if (this.depth === this.#kinds.length) {
      const next = new Uint8Array(this.depth * 2);
      next.set(this.#kinds);
      this.#kinds = next;
    }
    this.#kinds[this.depth++] = kind;
  }

  /**
   * Applies an instruction's effect on nesting.
   *
   * @returns Whether it was the function's final `end`.
   * @throws {BinaryFormatError} On `else`/`catch`/`delegate` outside their block.
   */
  step(reader: CodeReader, ctl: number): boolean {
    switch (ctl) {
      case Ctl.Block:
        this.push(Frame.Block);
        return false;
      case Ctl.Loop:
        this.push(Frame.Loop);
        return false;
      case Ctl.If:
        this.push(Frame.If);
        return false;
      case Ctl.Try:
        this.push(Frame.Try);
        return false;
      case Ctl.Else:
        if (this.top !== Frame.If) reader.fail("Unexpected else outside if", reader.start);
        return false;
      case Ctl.Catch:
        if (this.top !== Frame.Try) reader.fail("Unexpected catch outside try", reader.start);
        return false;
      case Ctl.Delegate:
        if (this.top !== Frame.Try) reader.fail("Unexpected delegate outside try", reader.start);
        this.depth--;
        return false;
      case Ctl.End:
        this.depth--;
        this.endedLoop = this.#kinds[this.depth] === Frame.Loop;
        return this.depth === 0;
      default:
        return false;
    }
  }

  /** Checks that the body ends right after the function's final `end`. */
  finish(reader: CodeReader): void {
    if (reader.pos !== reader.end) {
      reader.fail("Expected the function body to end after its final end", reader.pos);
    }
  }
}

/** Writes `global.get global; local.set local`. */
export function emitGlobalToLocal(out: CodeWriter, global: number, local: number): void {
  out.u8(0x23); // global.get
  out.u32(global);
  out.u8(0x21); // local.set
  out.u32(local);
}

/** Writes `local.get local; global.set global`. */
export function emitLocalToGlobal(out: CodeWriter, local: number, global: number): void {
  out.u8(0x20); // local.get
  out.u32(local);
  out.u8(0x24); // global.set
  out.u32(global);
}

/** Entries a pass appends to a module, per section id: how many, and their bytes. */
export type AppendedSections = Map<number, { count: number; out: CodeWriter }>;

/** Counts one more entry appended to `section` and returns the writer to write it with. */
export function appendEntry(added: AppendedSections, section: number): CodeWriter {
  let entry = added.get(section);
  if (entry === undefined) {
    entry = { count: 0, out: new CodeWriter(64) };
    added.set(section, entry);
  }
  entry.count++;
  return entry.out;
}

/** Bytes of a value of the type with code `code`: 4, 8 or 16 (a reference: 8). */
function valueBytes(code: number): number {
  return code === 0x7f || code === 0x7d ? 4 : code === 0x7b ? 16 : 8;
}

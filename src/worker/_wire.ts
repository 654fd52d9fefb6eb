/**
 * The message format of the call channel between the host and a plugin's
 * worker: an opcode and a list of tagged values (numbers, bigints, strings,
 * bytes, null, undefined), written into a growable SharedArrayBuffer.
 *
 * Messages are compact (an int32 takes 5 bytes, `null` 1) because a call's
 * request and answer should fit in the cache line that also holds the
 * channel's counters: on the machines measured, every further 64-byte line
 * the two threads hand each other costs ≈ 0.25 µs a round trip.
 *
 * @module
 */

import { copyBytes, lenientUtf8 } from "../common/mod.ts";

/** A value that crosses the channel. */
export type WireValue = number | bigint | string | Uint8Array | null | undefined;

/** A decoded message. */
export interface WireMessage {
  readonly op: number;
  readonly values: WireValue[];
}

const TAG_NUMBER = 0;
const TAG_BIGINT = 1;
const TAG_NULL = 2;
const TAG_UNDEFINED = 3;
const TAG_STRING = 4;
const TAG_BYTES = 5;
const TAG_INT32 = 6;
/** A bigint in [2^63, 2^64): the same 64 bits as an i64, read back unsigned (an externref's value). */
const TAG_BIGUINT = 7;

/** Whether `value` travels as a 4-byte integer (-0 does not: it would come back as 0). */
function isInt32(value: number): boolean {
  return (value | 0) === value && !Object.is(value, -0);
}

const encoder = new TextEncoder();

/** Encoded short strings (function and service names repeat on every call). */
const encodedNames = new Map<string, Uint8Array>();

function encodeString(value: string): Uint8Array {
  if (value.length > 64) return encoder.encode(value);
  let encoded = encodedNames.get(value);
  if (encoded === undefined) {
    if (encodedNames.size > 1024) encodedNames.clear();
    encoded = encoder.encode(value);
    encodedNames.set(value, encoded);
  }
  return encoded;
}

/**
 * Views of a channel's data buffer. They have a fixed length, remade when
 * the buffer has grown (either side may grow it): V8 reads and writes
 * through length-tracking views of a growable buffer about 20 times slower.
 */
export class WireBuffer {
  readonly buffer: SharedArrayBuffer;
  /** The byte offset messages start at (the bytes before it are the channel's). */
  readonly start: number;
  #length = -1;
  #view!: DataView;
  #bytes!: Uint8Array;
  /** The buffer's first cache line from `start` on (see {@linkcode HEAD_BYTES}). */
  readonly head: Uint8Array;
  /**
   * Where a message that ends in the first line is written first: this
   * buffer's own (so no bytes of one channel's messages reach another's),
   * with views of all of it and of the part `head` copies.
   */
  readonly stage: DataView;
  readonly stageBytes: Uint8Array;
  readonly stageHead: Uint8Array;
  /**
   * A fresh buffer that the next bytes value read (not as a view) of exactly
   * its length is copied into, instead of one made then: the host makes it
   * while the worker works on a call whose output length it expects (a new
   * buffer costs 0.5–1 µs in Deno 2.9). Used once; a reader may drop it.
   */
  spare: Uint8Array | undefined;

  constructor(buffer: SharedArrayBuffer, start = 0) {
    this.buffer = buffer;
    this.start = start;
    const headEnd = Math.max(start, Math.min(HEAD_BYTES, buffer.byteLength));
    this.head = new Uint8Array(buffer, start, headEnd - start);
    this.stageBytes = new Uint8Array(HEAD_BYTES);
    this.stage = new DataView(this.stageBytes.buffer);
    this.stageHead = this.stageBytes.subarray(start, headEnd);
    this.refresh();
  }

  /** Remakes the views when the buffer's length changed, and returns them. */
  refresh(): this {
    // Both sides only grow the buffer.
    const length = this.buffer.byteLength;
    if (length !== this.#length) {
      this.#length = length;
      this.#view = new DataView(this.buffer, 0, length);
      this.#bytes = new Uint8Array(this.buffer, 0, length);
    }
    return this;
  }

  /** A DataView of the whole buffer as of the last {@linkcode refresh}. */
  get view(): DataView {
    return this.#view;
  }

  /** The bytes of the whole buffer as of the last {@linkcode refresh}. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }
}

/**
 * Wraps a (growable) shared buffer for {@linkcode writeMessage} and
 * {@linkcode readMessage}; messages start at byte `start`.
 */
export function wireBuffer(buffer: SharedArrayBuffer, start = 0): WireBuffer {
  return new WireBuffer(buffer, start);
}

/** Strings this short are decoded by hand when they are ASCII (`TextDecoder` costs ≈ 1.5 µs a call). */
const SHORT_STRING = 64;

/** Decodes `length` bytes at `at` as UTF-8 text. */
function decodeString(bytes: Uint8Array, at: number, length: number): string {
  if (length <= SHORT_STRING) {
    let text = "";
    let i = 0;
    for (; i < length; i++) {
      const byte = bytes[at + i]!;
      if (byte >= 0x80) break;
      text += String.fromCharCode(byte);
    }
    if (i === length) return text;
  }
  // slice() copies into an ordinary (unshared) buffer, which TextDecoder accepts.
  return lenientUtf8.decode(bytes.slice(at, at + length));
}

/**
 * The buffer's first cache line: a message that ends in it is written to
 * private memory first and copied in with one `set` of the line's bytes
 * after `start` (through views made once), since each store of its own
 * would take the line back from the other side, which polls it. Longer
 * messages are written in place.
 */
const HEAD_BYTES = 64;

/** The encoded strings of the message being written, by value index. */
const encoded: Uint8Array[] = [];

/**
 * Writes `op` and `values` at the buffer's message start (growing it when
 * needed) and returns the offset of the message's end; with `orNot`, writes
 * nothing and returns -1 if the message does not fit in the buffer's
 * maximum size. Kept whole: every call's message goes through its one loop
 * and switch over the value tags, on the hot path of a worker call.
 *
 * @throws {RangeError} If the message does not fit in the buffer's maximum size.
 */
export function writeMessage(
  wire: WireBuffer,
  op: number,
  values: readonly WireValue[],
  orNot = false,
): number {
  const count = values.length;
  let size = wire.start + 5;
  for (let i = 0; i < count; i++) {
    const value = values[i];
    if (typeof value === "number") {
      size += isInt32(value) ? 5 : 9;
    } else if (typeof value === "bigint") {
      size += 9;
    } else if (value === null || value === undefined) {
      size += 1;
    } else if (typeof value === "string") {
      const raw = encodeString(value);
      encoded[i] = raw;
      size += 5 + raw.length;
    } else {
      size += 5 + value.length;
    }
  }
  const { buffer } = wire;
  if (size > wire.bytes.length && size > buffer.byteLength) {
    if (size > buffer.maxByteLength) {
      encoded.length = 0;
      if (orNot) return -1;
      throw new RangeError(
        `Cannot send ${size} bytes to or from a plugin worker: the limit is ${buffer.maxByteLength}`,
      );
    }
    buffer.grow(Math.min(buffer.maxByteLength, Math.max(size, buffer.byteLength * 2)));
  }
  // A message ending in the first line is staged (see HEAD_BYTES).
  const staged = size <= wire.start + wire.head.length;
  // In place, the views must cover the message (this side or the other may have grown it).
  if (!staged && size > wire.bytes.length) wire.refresh();
  const view = staged ? wire.stage : wire.view;
  const bytes = staged ? wire.stageBytes : wire.bytes;
  let at = wire.start;
  view.setUint8(at, op);
  view.setUint32(at + 1, count, true);
  at += 5;
  for (let i = 0; i < count; i++) {
    const value = values[i];
    if (typeof value === "number") {
      if (isInt32(value)) {
        view.setUint8(at, TAG_INT32);
        view.setInt32(at + 1, value, true);
        at += 5;
      } else {
        view.setUint8(at, TAG_NUMBER);
        view.setFloat64(at + 1, value, true);
        at += 9;
      }
    } else if (typeof value === "bigint") {
      view.setUint8(at, value >= 0x8000_0000_0000_0000n ? TAG_BIGUINT : TAG_BIGINT);
      view.setBigInt64(at + 1, BigInt.asIntN(64, value), true);
      at += 9;
    } else if (value === null || value === undefined) {
      view.setUint8(at, value === null ? TAG_NULL : TAG_UNDEFINED);
      at += 1;
    } else {
      const raw = typeof value === "string" ? encoded[i]! : value;
      view.setUint8(at, typeof value === "string" ? TAG_STRING : TAG_BYTES);
      view.setUint32(at + 1, raw.length, true);
      const length = raw.length;
      if (length <= SHORT_STRING) {
        for (let j = 0; j < length; j++) bytes[at + 5 + j] = raw[j]!;
      } else {
        bytes.set(raw, at + 5);
      }
      at += 5 + length;
    }
  }
  encoded.length = 0;
  if (staged) wire.head.set(wire.stageHead);
  return at;
}

/**
 * Reads the message at the buffer's message start. Bytes are copied out, unless
 * `views` asks for views into the buffer, valid only until the next message
 * is written (for bytes that are consumed at once).
 */
export function readMessage(wire: WireBuffer, views = false): WireMessage {
  // The views are remade only when the message reaches past them: reading a growable
  // buffer's length on each message cost ≈ 0.07 µs a side here.
  let { view, bytes } = wire;
  let at = wire.start;
  const op = view.getUint8(at);
  const count = view.getUint32(at + 1, true);
  const values: WireValue[] = new Array(count);
  at += 5;
  for (let i = 0; i < count; i++) {
    if (at + 9 > bytes.length) ({ view, bytes } = wire.refresh());
    const tag = view.getUint8(at);
    switch (tag) {
      case TAG_INT32:
        values[i] = view.getInt32(at + 1, true);
        at += 5;
        break;
      case TAG_NUMBER:
        values[i] = view.getFloat64(at + 1, true);
        at += 9;
        break;
      case TAG_BIGINT:
        values[i] = view.getBigInt64(at + 1, true);
        at += 9;
        break;
      case TAG_BIGUINT:
        values[i] = view.getBigUint64(at + 1, true);
        at += 9;
        break;
      case TAG_NULL:
      case TAG_UNDEFINED:
        values[i] = tag === TAG_NULL ? null : undefined;
        at += 1;
        break;
      default: {
        const length = view.getUint32(at + 1, true);
        if (at + 5 + length > bytes.length) ({ view, bytes } = wire.refresh());
        if (views && tag === TAG_BYTES) {
          values[i] = bytes.subarray(at + 5, at + 5 + length);
        } else if (tag === TAG_STRING) {
          values[i] = decodeString(bytes, at + 5, length);
        } else if (tag === TAG_BYTES && wire.spare?.length === length) {
          const spare = wire.spare;
          wire.spare = undefined;
          copyBytes(spare, 0, bytes, at + 5, length);
          values[i] = spare;
        } else {
          values[i] = bytes.slice(at + 5, at + 5 + length);
        }
        at += 5 + length;
      }
    }
  }
  return { op, values };
}

/**
 * The message format of the call channel between the host and a plugin's
 * worker: an opcode and a list of tagged values (numbers, bigints, strings,
 * bytes, null, undefined), written into a growable SharedArrayBuffer.
 *
 * @module
 */

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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

/** Length-tracking views of a channel's data buffer, made once per buffer. */
export interface WireBuffer {
  readonly buffer: SharedArrayBuffer;
  readonly view: DataView;
  readonly bytes: Uint8Array;
}

/** Wraps a (growable) shared buffer for {@linkcode writeMessage} and {@linkcode readMessage}. */
export function wireBuffer(buffer: SharedArrayBuffer): WireBuffer {
  return { buffer, view: new DataView(buffer), bytes: new Uint8Array(buffer) };
}

/** Bytes needed to encode one value; strings are pre-encoded by the caller. */
function sizeOf(value: WireValue | Uint8Array): number {
  if (value instanceof Uint8Array) return 5 + value.length;
  return 9;
}

/**
 * Writes `op` and `values` at the start of `buffer` (growing it when needed)
 * and returns the number of bytes written.
 *
 * @throws {RangeError} If the message does not fit in the buffer's maximum size.
 */
export function writeMessage(wire: WireBuffer, op: number, values: readonly WireValue[]): number {
  const { buffer, view, bytes } = wire;
  const encoded = values.map((value) => typeof value === "string" ? encodeString(value) : value);
  let size = 5;
  for (const value of encoded) size += sizeOf(value);
  if (size > buffer.byteLength) {
    if (size > buffer.maxByteLength) {
      throw new RangeError(
        `Cannot send ${size} bytes to or from a plugin worker: the limit is ${buffer.maxByteLength}`,
      );
    }
    buffer.grow(Math.min(buffer.maxByteLength, Math.max(size, buffer.byteLength * 2)));
  }
  view.setUint8(0, op);
  view.setUint32(1, values.length, true);
  let at = 5;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === "number") {
      view.setUint8(at, TAG_NUMBER);
      view.setFloat64(at + 1, value, true);
      at += 9;
    } else if (typeof value === "bigint") {
      view.setUint8(at, TAG_BIGINT);
      view.setBigInt64(at + 1, BigInt.asIntN(64, value), true);
      at += 9;
    } else if (value === null || value === undefined) {
      view.setUint8(at, value === null ? TAG_NULL : TAG_UNDEFINED);
      at += 9;
    } else {
      const raw = encoded[i] as Uint8Array;
      view.setUint8(at, typeof value === "string" ? TAG_STRING : TAG_BYTES);
      view.setUint32(at + 1, raw.length, true);
      bytes.set(raw, at + 5);
      at += 5 + raw.length;
    }
  }
  return at;
}

/**
 * Reads the message at the start of `buffer`. Bytes are copied out, unless
 * `views` asks for views into the buffer, valid only until the next message
 * is written (for bytes that are consumed at once).
 */
export function readMessage(wire: WireBuffer, views = false): WireMessage {
  const { view, bytes } = wire;
  const op = view.getUint8(0);
  const count = view.getUint32(1, true);
  const values: WireValue[] = new Array(count);
  let at = 5;
  for (let i = 0; i < count; i++) {
    const tag = view.getUint8(at);
    switch (tag) {
      case TAG_NUMBER:
        values[i] = view.getFloat64(at + 1, true);
        at += 9;
        break;
      case TAG_BIGINT:
        values[i] = view.getBigInt64(at + 1, true);
        at += 9;
        break;
      case TAG_NULL:
      case TAG_UNDEFINED:
        values[i] = tag === TAG_NULL ? null : undefined;
        at += 9;
        break;
      default: {
        const length = view.getUint32(at + 1, true);
        if (views && tag === TAG_BYTES) {
          values[i] = bytes.subarray(at + 5, at + 5 + length);
        } else {
          // slice() copies into an ordinary (unshared) buffer, which TextDecoder accepts.
          const raw = bytes.slice(at + 5, at + 5 + length);
          values[i] = tag === TAG_STRING ? decoder.decode(raw) : raw;
        }
        at += 5 + length;
      }
    }
  }
  return { op, values };
}

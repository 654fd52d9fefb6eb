/**
 * Builds WebAssembly binaries for tests: from text with wabt (with the
 * post-MVP features the instrumentation tests need), or by hand from
 * section payloads when wabt cannot express the encoding under test.
 *
 * @module
 */

import initWabt from "wabt";
import { ByteWriter } from "../../src/instrument/_bytes.ts";

const wabt = await initWabt();

// multi_memory is accepted by wabt but missing from its type declarations.
const FEATURES = {
  exceptions: true,
  threads: true,
  memory64: true,
  multi_memory: true,
  extended_const: true,
  function_references: true,
  gc: true,
  simd: true,
};

/** Compiles a WAT module to a WebAssembly binary. */
export function wat(source: string): Uint8Array<ArrayBuffer> {
  const module = wabt.parseWat("test.wat", source, FEATURES);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** The 8-byte module header: magic and version 1. */
export const HEADER: readonly number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** A type section with one `() -> ()` type and a function section declaring one function of it. */
export const ONE_VOID_FUNCTION: readonly number[] = [
  0x01,
  0x04,
  0x01,
  0x60,
  0x00,
  0x00, // type section: [() -> ()]
  0x03,
  0x02,
  0x01,
  0x00, // function section: [type 0]
];

/** Unsigned LEB128 bytes of a 32-bit value. */
export function leb(value: number): number[] {
  const out: number[] = [];
  let rest = value >>> 0;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
}

/** Signed LEB128 bytes of a 32-bit value. */
export function sleb(value: number): number[] {
  const out: number[] = [];
  let rest = value | 0;
  while (true) {
    const byte = rest & 0x7f;
    rest >>= 7;
    if ((rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A section to assemble: its id and its payload (without the size). */
export type RawSection = readonly [id: number, payload: ArrayLike<number>];

/** Assembles a module from the header and sections, prefixing each payload with its size. */
export function assemble(...sections: RawSection[]): Uint8Array<ArrayBuffer> {
  const writer = new ByteWriter().bytes(new Uint8Array(HEADER));
  for (const [id, payload] of sections) {
    writer.u8(id).u32(payload.length).bytes(Uint8Array.from(payload));
  }
  return new Uint8Array(writer.finish());
}

/** A type section payload of `count` function types `() -> ()` (three bytes each). */
export function voidTypes(count: number): Uint8Array {
  const prefix = leb(count);
  const payload = new Uint8Array(prefix.length + 3 * count);
  payload.set(prefix);
  for (let at = prefix.length; at < payload.length; at += 3) payload[at] = 0x60;
  return payload;
}

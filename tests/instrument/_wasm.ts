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

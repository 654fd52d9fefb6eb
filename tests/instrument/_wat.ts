/**
 * Compiles WebAssembly text for the instrumenter's tests, with every feature
 * wabt knows turned on.
 *
 * @module
 */

import initWabt from "wabt";

const wabt = await initWabt();

const FEATURES = {
  exceptions: true,
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  simd: true,
  threads: true,
  function_references: true,
  multi_value: true,
  tail_call: true,
  bulk_memory: true,
  reference_types: true,
  gc: true,
  memory64: true,
  multi_memory: true,
  extended_const: true,
  relaxed_simd: true,
};

/** Compiles a module in text format to a binary (with a `name` section when `debugNames`). */
export function wat(
  source: string,
  options: { debugNames?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  const parsed = wabt.parseWat("test.wat", source, FEATURES);
  try {
    if (options.debugNames) parsed.generateNames();
    parsed.resolveNames();
    parsed.validate();
    return parsed.toBinary({ write_debug_names: options.debugNames ?? false }).buffer.slice();
  } finally {
    parsed.destroy();
  }
}

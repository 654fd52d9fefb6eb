/**
 * Compiles WebAssembly text for the instrumenter's tests, with every feature
 * wabt knows turned on.
 *
 * @module
 */

import initWabt from "wabt";
import { VALIDATE_FEATURES, WAT_FEATURES } from "../../src/compile/_wat.ts";

const wabt = await initWabt();

/** Compiles a module in text format to a binary (with a `name` section when `debugNames`). */
export function wat(
  source: string,
  options: { debugNames?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  const parsed = wabt.parseWat("test.wat", source, { ...WAT_FEATURES });
  try {
    if (options.debugNames) parsed.generateNames();
    parsed.resolveNames();
    // wabt's types omit validate()'s features, without which it refuses shared memories.
    (parsed as unknown as { validate(features: object): void }).validate({ ...VALIDATE_FEATURES });
    return parsed.toBinary({ write_debug_names: options.debugNames ?? false }).buffer.slice();
  } finally {
    parsed.destroy();
  }
}

/**
 * WAT to binary through `npm:wabt`, loaded only when WAT is first used.
 *
 * @module
 */

import { CompilationError } from "../errors.ts";

/** The part of wabt's API that is used here. */
interface WabtModule {
  resolveNames(): void;
  validate(features: Record<string, boolean>): void;
  toBinary(options: Record<string, never>): { buffer: Uint8Array };
  destroy(): void;
}

interface Wabt {
  parseWat(filename: string, text: string, features: Record<string, boolean>): WabtModule;
}

let wabtPromise: Promise<Wabt> | undefined;

function loadWabt(): Promise<Wabt> {
  wabtPromise ??= import("wabt").then((mod) => {
    const init = (mod as unknown as { default: () => Promise<Wabt> }).default;
    return init();
  });
  return wabtPromise;
}

/** Every proposal wabt knows, so WAT may use any feature V8 accepts. */
export const WAT_FEATURES: Readonly<Record<string, boolean>> = {
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
  annotations: true,
  code_metadata: true,
  memory64: true,
  extended_const: true,
  relaxed_simd: true,
  multi_memory: true,
  gc: true,
};

/**
 * The features wabt's validator checks with (it refuses shared memories and a
 * second memory unless told): not `function_references` and `gc`, with which
 * its typing rejects valid code (`ref.func` where a `funcref` is expected).
 */
export const VALIDATE_FEATURES: Readonly<Record<string, boolean>> = {
  ...WAT_FEATURES,
  function_references: false,
  gc: false,
};

/**
 * Compiles WebAssembly text to a binary module.
 *
 * @param name A file name for error messages.
 * @param text The WAT source.
 * @returns The binary module.
 * @throws {CompilationError} With wabt's message and the line and column of the first error.
 */
export async function watToBinary(name: string, text: string): Promise<Uint8Array> {
  const wabt = await loadWabt();
  let module: WabtModule | undefined;
  try {
    module = wabt.parseWat(`${name}.wat`, text, WAT_FEATURES);
    module.resolveNames();
    module.validate(VALIDATE_FEATURES);
    return module.toBinary({}).buffer.slice();
  } catch (err) {
    throw watError(name, err);
  } finally {
    module?.destroy();
  }
}

function watError(name: string, err: unknown): CompilationError {
  const raw = err instanceof Error ? err.message : String(err);
  const position = /:(\d+):(\d+): error: (.*)/.exec(raw);
  if (position === null) {
    return new CompilationError(`Cannot compile WAT "${name}": ${raw.trim()}`, { cause: err });
  }
  const line = Number(position[1]);
  const column = Number(position[2]);
  return new CompilationError(
    `Cannot compile WAT "${name}" at line ${line}, column ${column}: ${position[3]}`,
    { cause: err, line, column },
  );
}

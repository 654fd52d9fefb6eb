/**
 * WAT to binary through `npm:wabt`, loaded only when WAT is first used.
 *
 * wabt is C++ compiled to wasm, one instance shared by every compile. Text
 * that would overflow its stack is refused first (`_wat_nesting.ts`); if it
 * fails some other way than with a parse or validation error (a trap, an
 * abort), its memory may be corrupt, so that instance is dropped and the
 * next compile starts a fresh one. What it prints goes into the error, never
 * to the console.
 *
 * @module
 */

import { shownName, visibleText, withoutBom } from "../common/mod.ts";
import { CompilationError } from "../errors.ts";
import { findDeepNesting, MAX_WAT_NESTING } from "./_wat_nesting.ts";

/** The part of wabt's API that is used here. */
interface WabtModule {
  resolveNames(): void;
  validate(features: Record<string, boolean>): void;
  toBinary(options: Record<string, never>): { buffer: Uint8Array };
  destroy(): void;
}

/**
 * What the on-disk cache of WAT binaries keys by beside the text (see
 * `RuntimeConfig.cache.dir`): binaries compiled before the text went to wabt
 * as UTF-8 had the wrong bytes for non-ASCII string literals.
 */
export const WAT_CACHE_VERSION = "wasmplug-wat-2";

/**
 * WAT source as wabt must get it: bytes in a buffer of their own (wabt
 * copies a view's whole buffer, and writes a string's characters as their
 * low bytes, so "é" in a string literal became 0xe9, not 0xc3 0xa9), without
 * a leading byte order mark. Text is encoded as UTF-8; bytes (a `.wat`
 * file's) are taken as they are, as `wat2wasm` reads them: a byte that is
 * not UTF-8 in a comment is no error, and in a string it is that byte.
 *
 * @example
 * ```ts ignore
 * watSource("m", "\ufeff(module)"); // the bytes of "(module)"
 * ```
 *
 * @throws {CompilationError} If the text holds a lone surrogate (encoded, it
 *   would become U+FFFD: a string's bytes would change without a word).
 */
export function watSource(name: string, text: string | Uint8Array): Uint8Array {
  if (typeof text !== "string") {
    if (text.length > MAX_WAT_BYTES) {
      throw new CompilationError(
        `Cannot compile WAT ${shownName(name)}: ${text.length} bytes, more than ${MAX_WAT_BYTES}`,
      );
    }
    if ((text[0] === 0xff && text[1] === 0xfe) || (text[0] === 0xfe && text[1] === 0xff)) {
      throw new CompilationError(
        `Cannot compile WAT ${
          shownName(name)
        }: it is UTF-16 text (its byte order mark says so); save it as UTF-8`,
      );
    }
    const bom = text[0] === 0xef && text[1] === 0xbb && text[2] === 0xbf;
    // A copy in a buffer of its own (a Node Buffer's slice is a view into its pool), which
    // the caller cannot change during the compile.
    return new Uint8Array(text.subarray(bom ? 3 : 0));
  }
  if (!text.isWellFormed()) {
    throw new CompilationError(
      `Cannot compile WAT ${
        shownName(name)
      }: the text holds a lone surrogate, which is not Unicode (write bytes in strings as \\hh escapes)`,
    );
  }
  const bytes = new TextEncoder().encode(withoutBom(text));
  if (bytes.length > MAX_WAT_BYTES) {
    throw new CompilationError(
      `Cannot compile WAT ${
        shownName(name)
      }: ${bytes.length} bytes of UTF-8, more than ${MAX_WAT_BYTES}`,
    );
  }
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** The most bytes of WAT compiled: 256 MiB (the nesting scan reads them as one string). */
export const MAX_WAT_BYTES = 256 * 1024 * 1024;

/** Reads bytes a character each, for the nesting scan: only ASCII matters to it. */
const byteReader = new TextDecoder("latin1");

interface Wabt {
  parseWat(filename: string, text: Uint8Array, features: Record<string, boolean>): WabtModule;
}

/** What wabt's runtime prints (it prints only when it aborts), kept for the error. */
interface WabtOutput {
  printed: string[];
}

type WabtFactory = (
  options: { print(text: string): void; printErr(text: string): void },
) => Promise<Wabt>;

let wabtPromise: Promise<{ wabt: Wabt; output: WabtOutput }> | undefined;

function loadWabt(): Promise<{ wabt: Wabt; output: WabtOutput }> {
  wabtPromise ??= import("wabt").then(async (mod) => {
    const init = (mod as unknown as { default: WabtFactory }).default;
    const output: WabtOutput = { printed: [] };
    const keep = (text: string) => void output.printed.push(text);
    return { wabt: await init({ print: keep, printErr: keep }), output };
  });
  return wabtPromise;
}

/** The file name wabt is told (see {@linkcode watError}). */
const WABT_FILE_NAME = "module.wat";

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

/** Options of {@linkcode watToBinary}. */
export interface WatOptions {
  /** The deepest nesting handed to wabt. @default {MAX_WAT_NESTING} */
  maxNesting?: number;
}

/**
 * Compiles WebAssembly text to a binary module.
 *
 * @example
 * ```ts ignore
 * const bytes = await watToBinary("empty", "(module)");
 * ```
 *
 * @param name A file name for error messages.
 * @param text The WAT source: text, or bytes as {@linkcode watSource} made them.
 * @param options The nesting bound (its own tests lift it, to reach a failing wabt).
 * @returns The binary module.
 * @throws {CompilationError} With wabt's message and the line and column of the first error.
 */
export async function watToBinary(
  name: string,
  text: string | Uint8Array,
  options: WatOptions = {},
): Promise<Uint8Array> {
  const { maxNesting = MAX_WAT_NESTING } = options;
  const source = typeof text === "string" ? watSource(name, text) : text;
  // Positions count bytes, as wabt's do.
  const deep = findDeepNesting(byteReader.decode(source), maxNesting);
  if (deep !== null) {
    throw new CompilationError(
      `Cannot compile WAT ${
        shownName(name)
      } at line ${deep.line}, column ${deep.column}: it nests ` +
        `deeper than ${maxNesting} levels, more than the WAT compiler (wabt) can parse`,
      deep,
    );
  }
  // The instance to use now: a compile that waited for it while another compile broke it
  // (both waited for the same one) takes the fresh one instead. No await after this check.
  let loading: ReturnType<typeof loadWabt>;
  let loaded: Awaited<ReturnType<typeof loadWabt>>;
  do {
    loading = loadWabt();
    loaded = await loading;
  } while (wabtPromise !== loading);
  const { wabt, output } = loaded;
  output.printed.length = 0;
  let module: WabtModule | undefined;
  try {
    // Not `name`: wabt's messages begin with it, and the position is read from them.
    module = wabt.parseWat(WABT_FILE_NAME, source, WAT_FEATURES);
    module.resolveNames();
    module.validate(VALIDATE_FEATURES);
    return module.toBinary({}).buffer.slice();
  } catch (err) {
    if (!isReportedError(err)) {
      // A trap or an abort inside wabt: its memory cannot be trusted any more.
      module = undefined;
      if (wabtPromise === loading) wabtPromise = undefined;
      const printed = output.printed.splice(0).join(" ").trim();
      throw new CompilationError(
        `Cannot compile WAT ${shownName(name)}: the WAT compiler (wabt) failed: ${describe(err)}` +
          (printed === "" ? "" : ` (${printed})`),
        { cause: err },
      );
    }
    throw watError(name, err);
  } finally {
    module?.destroy();
  }
}

/** Whether wabt threw one of its own errors (parse, names, validation), not a trap or an abort. */
function isReportedError(err: unknown): boolean {
  return err instanceof Error && !(err instanceof WebAssembly.RuntimeError) &&
    !(err instanceof RangeError) && !err.message.startsWith("Aborted(");
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function watError(name: string, err: unknown): CompilationError {
  const raw = describe(err);
  const position = /(?:^|\n)module\.wat:(\d+):(\d+): error: (.*)/.exec(raw);
  if (position === null) {
    return new CompilationError(
      `Cannot compile WAT ${shownName(name)}: ${visibleText(raw.trim())}`,
      {
        cause: err,
      },
    );
  }
  const line = Number(position[1]);
  const column = Number(position[2]);
  return new CompilationError(
    `Cannot compile WAT ${shownName(name)} at line ${line}, column ${column}: ${
      visibleText(position[3]!)
    }`,
    { cause: err, line, column },
  );
}

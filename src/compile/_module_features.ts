/**
 * Module features wasmplug refuses to load because no limit could bound
 * them: the WebAssembly GC heap, and exceptions larger or more numerous
 * than a small bound.
 *
 * `maxMemoryPages` bounds linear memory, but objects a module allocates on the
 * GC heap live in V8's own heap, which nothing bounds per plugin: one global
 * initialised with `array.new_default` of 400 MiB, or arrays allocated in a
 * loop, end the whole host process with a fatal out-of-memory error before any
 * fuel or deadline check can run. So every module that defines a type other
 * than a function type — a `struct` or `array` (inside a `rec` group or a
 * `sub` type or not), and any composite type wasmplug does not know (a
 * continuation, a `shared` type) — fails to compile with a
 * `CompilationError`. Function types stay allowed, including in `rec` groups
 * and with declared supertypes (typed function references allocate nothing).
 *
 * What allocates without a defined type, and why it stays allowed:
 *
 * - `struct.new*`, `array.new*` (`_default`, `_fixed`, `_data`, `_elem`)
 *   name their type: without a struct or array type they do not validate.
 * - `ref.i31` makes an unboxed small integer: no allocation.
 * - `any.convert_extern`/`extern.convert_any` convert a reference the module
 *   already holds; the only `externref`s a guest gets come from the host.
 * - Exceptions (`throw`) allocate a package of the tag's parameters on V8's
 *   heap, which a guest may keep in an `exnref` (a local, a global, a table
 *   slot) or pass in another exception. So what one can hold is bounded
 *   here (see {@linkcode assertBoundedExceptions}): a tag's payload is at
 *   most {@linkcode MAX_TAG_PAYLOAD_BYTES} and holds no exception reference
 *   (exceptions would chain without end: 64 KiB packages chained in one
 *   call ended the host process), and a module declares at most
 *   {@linkcode MAX_EXCEPTION_GLOBALS} globals of an exception type. What is
 *   left is small: a few hundred bytes a package, in locals the wasm stack
 *   bounds, globals and table slots (`maxTableElements`).
 * - `ref.func` makes at most one reference per function.
 * - JS string builtins (`wasm:js-string`) need a compile option wasmplug does
 *   not pass; without it those imports are ordinary imports that only a
 *   `Linker` (the host's own code) could satisfy. The `stringref` proposal's
 *   types and section are not WebAssembly that wasmplug (or V8 by default)
 *   reads.
 *
 * @module
 */

import { CompilationError } from "../errors.ts";
import { Cursor, Malformed } from "./_cursor.ts";
import type { ModuleInfo } from "../instrument/mod.ts";

const TYPE_SECTION = 1;
const CODE_SECTION = 10;
const REC = 0x4e;
const SUB = 0x50;
const SUB_FINAL = 0x4f;
const FUNC = 0x60;
const REF = 0x64;
const REF_NULL = 0x63;

/** Names of the composite type forms, for the error message. */
const FORMS: Readonly<Record<number, string>> = {
  0x5f: "struct",
  0x5e: "array",
  0x5d: "continuation",
  0x65: "shared",
};

/** A type definition that would let a module allocate on the GC heap. */
export interface GcTypeDefinition {
  /** Its index in the type index space. */
  readonly index: number;
  /** Its form: `"struct"`, `"array"`, or a description of an unknown form. */
  readonly form: string;
  /** Byte offset of its form code in the module. */
  readonly offset: number;
}

/**
 * Finds the first type definition of `bytes` that is not a function type,
 * reading only the section headers and the type section. Returns `undefined`
 * when there is none, or when the bytes are too malformed to tell (the
 * module's parser rejects those anyway).
 */
export function findGcTypeDefinition(bytes: Uint8Array): GcTypeDefinition | undefined {
  try {
    const cursor = new Cursor(bytes, 8, bytes.length);
    while (cursor.pos < cursor.end) {
      const id = cursor.u8();
      const size = cursor.leb();
      const end = cursor.pos + size;
      if (end > bytes.length) return undefined;
      if (id === TYPE_SECTION) return scanTypes(new Cursor(bytes, cursor.pos, end));
      cursor.pos = end;
    }
  } catch (err) {
    if (err instanceof Malformed) return undefined;
    throw err;
  }
  return undefined;
}

function scanTypes(cursor: Cursor): GcTypeDefinition | undefined {
  let index = 0;
  for (let groups = cursor.leb(); groups > 0; groups--) {
    let count = 1;
    if (cursor.bytes[cursor.pos] === REC) {
      cursor.pos++;
      count = cursor.leb();
    }
    for (; count > 0; count--, index++) {
      const code = cursor.bytes[cursor.pos];
      if (code === SUB || code === SUB_FINAL) {
        cursor.pos++;
        for (let supers = cursor.leb(); supers > 0; supers--) cursor.leb();
      }
      const offset = cursor.pos;
      const form = cursor.u8();
      if (form !== FUNC) {
        return { index, form: FORMS[form] ?? `0x${form.toString(16)}`, offset };
      }
      for (let lists = 0; lists < 2; lists++) {
        for (let types = cursor.leb(); types > 0; types--) skipValueType(cursor);
      }
    }
  }
  return undefined;
}

function skipValueType(cursor: Cursor): void {
  const code = cursor.u8();
  // Numeric, vector and abstract reference types are one byte; `ref`/`ref null` add a heap type.
  if (code === REF || code === REF_NULL) cursor.leb();
}

/**
 * Refuses a module that can allocate on the GC heap (see the module doc).
 * `info`, the module's description when it parsed, answers at once for a
 * module of function types only; the type section is read again only to
 * locate a GC type.
 *
 * @throws {CompilationError} Naming the first such type and its offset.
 */
export function assertNoGcHeap(bytes: Uint8Array, info?: ModuleInfo): void {
  // parseModule refuses type forms other than func, struct and array.
  if (info !== undefined && !hasAggregateType(info)) return;
  const found = findGcTypeDefinition(bytes);
  if (found === undefined) return;
  throw new CompilationError(
    `Cannot compile module: type ${found.index} is a GC ${found.form} type, and wasmplug refuses WebAssembly GC types because no limit bounds the GC heap (maxMemoryPages bounds linear memory only)`,
    { offset: found.offset },
  );
}

/**
 * The most memories, and the most tables, a module may have (imported and
 * defined): each costs the host about 1.4 KiB (100 000 empty memories, which
 * the engine takes, held 140 MB per worker plugin); modules use a few.
 */
export const MAX_MEMORIES_OR_TABLES = 1024;

/**
 * Refuses a module with more than {@linkcode MAX_MEMORIES_OR_TABLES}
 * memories or tables: within `maxMemoryPages` (empty ones hold no page),
 * they would make the host hold far more than the module's size.
 *
 * @throws {CompilationError} Naming the count.
 */
export function assertFewMemoriesAndTables(info: ModuleInfo): void {
  for (const kind of ["memory", "table"] as const) {
    const defined = kind === "memory" ? info.memories.length : info.tables.length;
    let count = defined;
    for (const entry of info.imports) if (entry.kind === kind) count++;
    if (count > MAX_MEMORIES_OR_TABLES) {
      throw new CompilationError(
        `Cannot compile module: it has ${count} ${
          kind === "memory" ? "memories" : "tables"
        }, and wasmplug allows at most ${MAX_MEMORIES_OR_TABLES}, since each costs the host memory of its own`,
      );
    }
  }
}

/** Declared locals every module may have, whatever its size (see {@linkcode maxDeclaredLocals}). */
export const FREE_DECLARED_LOCALS = 1 << 20;

/**
 * The most locals a module of `byteLength` bytes may declare in all its
 * functions together: {@linkcode FREE_DECLARED_LOCALS}, and one more per 4
 * bytes. The engine validates a module in time that grows with its declared
 * locals, not its bytes (about a nanosecond each): one declaration of 50 000
 * locals takes 4 bytes, and a 1 MB module of such functions held the host's
 * thread for seconds. Real modules declare one local per 80-1 000 bytes
 * (esbuild, pyodide, biome, sql.js, QuickJS).
 */
export function maxDeclaredLocals(byteLength: number): number {
  return FREE_DECLARED_LOCALS + Math.floor(byteLength / 4);
}

/**
 * Refuses a module whose functions declare more locals than
 * {@linkcode maxDeclaredLocals} allows, reading only the section headers and
 * the locals of each body, before the engine reads it. Bytes too malformed
 * to tell pass: the module's parser rejects those.
 *
 * @example
 * ```ts ignore
 * assertFewDeclaredLocals(bytes); // before WebAssembly.validate(bytes)
 * ```
 *
 * @throws {CompilationError} Naming the count and the bound.
 */
export function assertFewDeclaredLocals(bytes: Uint8Array): void {
  const limit = maxDeclaredLocals(bytes.length);
  let declared: number;
  try {
    declared = countDeclaredLocals(bytes, limit);
  } catch (err) {
    if (err instanceof Malformed) return;
    throw err;
  }
  if (declared > limit) {
    throw new CompilationError(
      `Cannot compile module: its functions declare more than ${limit} locals, the most wasmplug allows a module of ${bytes.length} bytes (the engine's validation time grows with them)`,
    );
  }
}

/** Declared locals of every body, counted until they pass `limit`. */
function countDeclaredLocals(bytes: Uint8Array, limit: number): number {
  const cursor = new Cursor(bytes, 8, bytes.length);
  while (cursor.pos < cursor.end) {
    const id = cursor.u8();
    const size = cursor.leb();
    const end = cursor.pos + size;
    if (end > bytes.length) throw new Malformed();
    if (id !== CODE_SECTION) {
      cursor.pos = end;
      continue;
    }
    const code = new Cursor(bytes, cursor.pos, end);
    let declared = 0;
    for (let bodies = code.leb(); bodies > 0 && declared <= limit; bodies--) {
      const bodyEnd = code.leb() + code.pos;
      for (let groups = code.leb(); groups > 0; groups--) {
        declared += code.leb();
        skipValueType(code);
      }
      code.pos = bodyEnd;
    }
    return declared;
  }
  return 0;
}

/** The most bytes of values a tag may carry (C++ and Rust exceptions carry one pointer). */
export const MAX_TAG_PAYLOAD_BYTES = 64;

/** The most globals of an exception reference type a module may declare. */
export const MAX_EXCEPTION_GLOBALS = 1024;

/** Bytes a value of `type` takes in an exception's payload (a reference: a pointer). */
function payloadBytes(type: string): number {
  switch (type) {
    case "i32":
    case "f32":
      return 4;
    case "v128":
      return 16;
    default:
      return 8;
  }
}

/** Whether `type` is a reference to an exception (`exnref`, `(ref exn)`, `(ref null exn)`). */
function isExceptionReference(type: string): boolean {
  return type === "exnref" || type === "(ref exn)" || type === "(ref null exn)";
}

/**
 * Refuses a module whose exceptions could hold more of V8's heap than their
 * limits allow (see the module doc): a tag that carries an exception
 * reference or more than {@linkcode MAX_TAG_PAYLOAD_BYTES} bytes of values,
 * or more than {@linkcode MAX_EXCEPTION_GLOBALS} globals of an exception type.
 *
 * @throws {CompilationError} Naming the tag or the globals.
 */
export function assertBoundedExceptions(info: ModuleInfo): void {
  const tagTypes = [
    ...info.imports.flatMap((entry) => entry.kind === "tag" ? [entry.typeIndex] : []),
    ...info.tags,
  ];
  tagTypes.forEach((typeIndex, tag) => {
    const type = info.types[typeIndex];
    if (type === undefined || type.kind !== "func") return;
    if (type.params.some(isExceptionReference)) {
      throw new CompilationError(
        `Cannot compile module: tag ${tag} carries an exception reference, and wasmplug refuses those because exceptions could then hold one another on V8's heap without a limit`,
      );
    }
    const bytes = type.params.reduce((sum, param) => sum + payloadBytes(param), 0);
    if (bytes > MAX_TAG_PAYLOAD_BYTES) {
      throw new CompilationError(
        `Cannot compile module: tag ${tag} carries ${bytes} bytes of values, and wasmplug allows at most ${MAX_TAG_PAYLOAD_BYTES}, since every exception thrown lives on V8's heap, outside maxMemoryPages`,
      );
    }
  });
  let exceptionGlobals = 0;
  for (const global of info.globals) {
    if (isExceptionReference(global.type.valueType)) exceptionGlobals++;
  }
  for (const entry of info.imports) {
    if (entry.kind === "global" && isExceptionReference(entry.type.valueType)) exceptionGlobals++;
  }
  if (exceptionGlobals > MAX_EXCEPTION_GLOBALS) {
    throw new CompilationError(
      `Cannot compile module: it declares ${exceptionGlobals} globals of an exception type, and wasmplug allows at most ${MAX_EXCEPTION_GLOBALS}, since each may hold an exception on V8's heap`,
    );
  }
}

function hasAggregateType({ types }: ModuleInfo): boolean {
  // An indexed loop: a million types take milliseconds, where an iterator in cold code takes 100+.
  for (let i = 0; i < types.length; i++) if (types[i]!.kind !== "func") return true;
  return false;
}

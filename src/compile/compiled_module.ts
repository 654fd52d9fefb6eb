/**
 * The result of compiling a module: what it is, what it imports and exports,
 * its memories, tables and custom sections, and the compiled code it keeps
 * privately for `createPlugin()`.
 *
 * @module
 */

import { grantCompiledModuleAccess } from "./_compiled_module_access.ts";
import type { Capability } from "../capability.ts";
import type { PluginManifest } from "../plugin_manifest.ts";

/**
 * The kind of an import or export, as in `WebAssembly.Module.exports()`.
 *
 * @example
 * ```ts
 * import type { ExternKind } from "@wasmplug/wasmplug";
 * const kind: ExternKind = "function";
 * ```
 */
export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

/**
 * One import or export of a module, with its signature when it is a function.
 *
 * @example
 * ```ts
 * import type { ModuleItem } from "@wasmplug/wasmplug";
 * const add: ModuleItem = { name: "add", kind: "function", params: ["i32", "i32"], results: ["i32"] };
 * ```
 */
export interface ModuleItem {
  /** The import's module name; absent for exports. */
  readonly module?: string;
  /** The import's or export's name. */
  readonly name: string;
  /** What it is. */
  readonly kind: ExternKind;
  /** Parameter types of a function (`"i32"`, `"i64"`, `"f32"`, `"f64"`, `"v128"`, `"funcref"`…). */
  readonly params?: readonly string[];
  /** Result types of a function. */
  readonly results?: readonly string[];
  /**
   * For a function import, the capability a call through it needs when the
   * runtime provides it: a built-in host function's own (`null` for
   * `env.host_log`, always allowed), `"wasi"` for a `wasi_snapshot_preview1`
   * import (some WASI functions also check `"filesystem"` or `"random"` when
   * called), and `"call_host_function"` for any other import, which a
   * {@linkcode Linker} must provide. Absent for exports and other imports.
   *
   * @example Which capabilities a module's imports need
   * ```ts
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   *
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * const compiled = await runtime.compileWat("m", `(module
   *   (import "env" "host_log" (func (param i32 i32 i32)))
   *   (import "env" "host_now_ms" (func (result i64)))
   *   (import "env" "double" (func (param i32) (result i32))))`);
   * console.log(compiled.imports.map((item) => item.capability)); // [ null, "timer", "call_host_function" ]
   * ```
   */
  readonly capability?: Capability | null;
}

/**
 * One memory of a module, imported or defined, as it is declared.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat("m", '(module (memory (export "memory") 1 4))');
 * const [memory] = compiled.memories;
 * console.log(memory?.minPages, memory?.maxPages, memory?.exportNames); // 1 4 [ "memory" ]
 * ```
 */
export interface ModuleMemory {
  /** Its index in the module's memory index space: imported memories first. */
  readonly index: number;
  /** Whether the module imports it (the import is in {@linkcode CompiledModule.imports}). */
  readonly imported: boolean;
  /** The names it is exported under, in export order. */
  readonly exportNames: readonly string[];
  /** Declared minimum size, in 64 KiB pages. */
  readonly minPages: number;
  /** Declared maximum size, in 64 KiB pages, or `null` when it declares none. */
  readonly maxPages: number | null;
  /** Whether it is a shared memory (threads). */
  readonly shared: boolean;
  /** Whether it has 64-bit addresses (memory64). */
  readonly memory64: boolean;
}

/**
 * One table of a module, imported or defined, as it is declared.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat("m", "(module (table 2 10 funcref))");
 * const [table] = compiled.tables;
 * console.log(table?.elementType, table?.minElements, table?.maxElements); // funcref 2 10
 * ```
 */
export interface ModuleTable {
  /** Its index in the module's table index space: imported tables first. */
  readonly index: number;
  /** Whether the module imports it (the import is in {@linkcode CompiledModule.imports}). */
  readonly imported: boolean;
  /** The names it is exported under, in export order. */
  readonly exportNames: readonly string[];
  /** The type of its elements, e.g. `"funcref"` or `"externref"`. */
  readonly elementType: string;
  /** Declared minimum size, in elements. */
  readonly minElements: number;
  /**
   * Declared maximum size, in elements, or `null` when it declares none. A
   * 64-bit table may declare a maximum above `Number.MAX_SAFE_INTEGER`; it is
   * then the nearest number.
   */
  readonly maxElements: number | null;
  /** Whether it has 64-bit indices (table64). */
  readonly table64: boolean;
}

/**
 * One custom section of a module (names, producers, DWARF, a plugin manifest…).
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat("m", '(module (@custom "notes" "hello"))');
 * console.log(compiled.customSections); // [ { name: "notes", sizeBytes: 5 } ]
 * ```
 */
export interface ModuleCustomSection {
  /** The section's name. */
  readonly name: string;
  /** Size of its contents after the name, in bytes. */
  readonly sizeBytes: number;
}

/**
 * What a compiled module copies from the runtime's artifact of it (a
 * `ModuleArtifact` of `_artifact.ts`, which imports this file).
 */
interface ArtifactFacts {
  readonly bytes: Uint8Array;
  readonly hash: string;
  readonly imports: readonly ModuleItem[];
  readonly exports: readonly ModuleItem[];
  readonly manifest: PluginManifest | null;
  readonly memories: readonly ModuleMemory[];
  readonly tables: readonly ModuleTable[];
  readonly customSections: readonly ModuleCustomSection[];
}

/** Set while the runtime constructs a compiled module: nothing else may. */
let constructing = false;

/**
 * A compiled, validated module, ready to instantiate as many plugins as the
 * limits allow. Create it with `runtime.compile()` or `runtime.compileWat()`;
 * it describes the module (its imports, exports, memories, tables, custom
 * sections and manifest) and holds, privately, the compiled code that
 * `createPlugin()` instantiates.
 *
 * Pass the object itself: a copy (`{ ...compiled }`, `structuredClone()`,
 * JSON) keeps the description but not the compiled code, so
 * `createPlugin()` rejects it with a `TypeError` (TypeScript refuses a spread
 * copy already; `structuredClone()` is typed as returning its argument's type,
 * though it returns a plain object). Its fields are plain data, so copying,
 * logging or serializing it is safe and never exposes the module's bytes. It
 * works with any runtime, not only the one that compiled it.
 *
 * @example Compile and describe a module
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat(
 *   "math-module",
 *   '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))',
 * );
 * console.log(compiled.name, compiled.sizeBytes, compiled.exports[0]?.params); // math-module 41 [ "i32", "i32" ]
 * ```
 *
 * @example A copy is a description only
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat("m", "(module)");
 * const copy = { ...compiled };
 * console.log(copy.hash === compiled.hash); // true
 * // @ts-expect-error: a copy is not a CompiledModule
 * await runtime.createPlugin(copy).catch((err) => console.log(err.name)); // TypeError
 * ```
 */
export class CompiledModule {
  /** The name given at compilation. */
  readonly name: string;
  /** Size of the binary module, in bytes. */
  readonly sizeBytes: number;
  /** Time spent compiling (WAT to binary, validation and V8 compilation), in milliseconds. */
  readonly compileTimeMs: number;
  /** SHA-256 of the binary module, lowercase hex. */
  readonly hash: string;
  /** What the module imports, in import order. */
  readonly imports: readonly ModuleItem[];
  /** What the module exports, in export order. */
  readonly exports: readonly ModuleItem[];
  /** The manifest embedded in its `wasmplug.manifest` custom section, or `null`. */
  readonly manifest: PluginManifest | null;
  /** Its memories, imported ones first. */
  readonly memories: readonly ModuleMemory[];
  /** Its tables, imported ones first. */
  readonly tables: readonly ModuleTable[];
  /** Its custom sections, in module order. */
  readonly customSections: readonly ModuleCustomSection[];
  readonly #artifact: ArtifactFacts;

  private constructor(artifact: ArtifactFacts, name: string, compileTimeMs: number) {
    if (!constructing) {
      throw new TypeError(
        "Cannot construct a CompiledModule: use runtime.compile() or runtime.compileWat()",
      );
    }
    this.name = name;
    this.sizeBytes = artifact.bytes.length;
    this.compileTimeMs = compileTimeMs;
    this.hash = artifact.hash;
    this.imports = artifact.imports;
    this.exports = artifact.exports;
    this.manifest = artifact.manifest;
    this.memories = artifact.memories;
    this.tables = artifact.tables;
    this.customSections = artifact.customSections;
    this.#artifact = artifact;
    Object.freeze(this);
  }

  static {
    grantCompiledModuleAccess({
      create: (artifact, { name, compileTimeMs }) => {
        constructing = true;
        try {
          return new CompiledModule(artifact as ArtifactFacts, name, compileTimeMs);
        } finally {
          constructing = false;
        }
      },
      artifactOf: (value) => #artifact in value ? (value as CompiledModule).#artifact : undefined,
    });
  }
}

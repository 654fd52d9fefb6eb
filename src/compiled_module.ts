/**
 * The result of compiling a module: what it is, what it imports and exports.
 *
 * @module
 */

import type { PluginManifest } from "./plugin_manifest.ts";

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
}

/**
 * A compiled, validated module, ready to instantiate as many plugins as the
 * limits allow. Create it with `runtime.compile()` or `runtime.compileWat()`.
 *
 * @example
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
 */
export interface CompiledModule {
  /** The name given at compilation. */
  readonly name: string;
  /** Size of the binary module, in bytes. */
  readonly sizeBytes: number;
  /** Time spent compiling (WAT to binary, validation and V8 compilation), in milliseconds. */
  readonly compileTimeMs: number;
  /** SHA-256 of the binary module, lowercase hex. */
  readonly hash: string;
  /** What the module imports. */
  readonly imports: readonly ModuleItem[];
  /** What the module exports. */
  readonly exports: readonly ModuleItem[];
  /** The manifest embedded in its `wasmplug.manifest` custom section, or `null`. */
  readonly manifest: PluginManifest | null;
}

/**
 * Statistics of the compiled-module cache.
 *
 * @module
 */

/**
 * What `runtime.cacheStats()` returns.
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await runtime.compileWat("a", "(module)");
 * await runtime.compileWat("b", "(module)"); // same content: a hit
 * console.log(runtime.cacheStats()); // { hits: 1, misses: 1, entries: 1, hitRate: 0.5 }
 * ```
 */
export interface CacheStats {
  /** Compilations answered from the cache. */
  readonly hits: number;
  /** Compilations that compiled. */
  readonly misses: number;
  /** Modules held now. */
  readonly entries: number;
  /** `hits / (hits + misses)`, or 0 before any compilation. */
  readonly hitRate: number;
}

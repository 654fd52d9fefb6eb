/**
 * Entry module of `src/compile/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * From bytes or WAT to a `CompiledModule`: parsing and validating the
 * module, the custom manifest section, resource-limit overrides, the
 * instrumenter's rewrite and the caches (in memory and on disk) that make a
 * second compile of the same bytes free.
 *
 * @module
 */

export { artifactOf, buildArtifact, createCompiledModule, prepareModule } from "./_artifact.ts";
export type {
  Instrumentation,
  ModuleArtifact,
  PreparedModule,
  StorageImport,
} from "./_artifact.ts";
export { resolveLimits } from "./_limit_overrides.ts";
export { LruCache } from "./_lru_cache.ts";
export { parseManifest } from "./_plugin_manifest.ts";
export { sha256Hex } from "./_sha256.ts";
export { checkArguments } from "./_signature.ts";
export type { Signature } from "./_signature.ts";
export { WAT_CACHE_VERSION, watSource, watToBinary } from "./_wat.ts";
export { readCachedBinary, writeCachedBinary } from "./_wat_disk_cache.ts";

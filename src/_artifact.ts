/**
 * What the runtime keeps for a compiled module: the original bytes, their
 * parsed description, and the modules prepared (limits clamped, later
 * instrumented) for each set of limits plugins asked for.
 *
 * @module
 */

import type { CompiledModule, ModuleItem } from "./compiled_module.ts";
import { CompilationError, OutOfMemoryError, ResourceLimitError } from "./errors.ts";
import type { ResourceLimits } from "./resource_limits.ts";
import type { Signature } from "./_signature.ts";
import { BinaryFormatError } from "./instrument/_bytes.ts";
import { clampLimits, type ClampResult } from "./instrument/_limits.ts";
import { enforceTotals } from "./instrument/_totals.ts";
import {
  type DeadlineMode,
  instrument,
  type InstrumentMetadata,
  type InstrumentResult,
  RESERVED_EXPORT_PREFIX,
} from "./instrument/instrument.ts";
import { decodeManifestSection, MANIFEST_SECTION, type PluginManifest } from "./plugin_manifest.ts";
import { assertNoGcHeap } from "./_module_features.ts";
import {
  type CustomSection,
  describeExports,
  describeImports,
  indexSpaceSizes,
  listMemories,
  type ModuleInfo,
  parseModule,
} from "./instrument/_module.ts";

/** A module compiled for one set of limits. */
export interface PreparedModule {
  readonly module: WebAssembly.Module;
  readonly bytes: Uint8Array;
  /** What the instrumenter added, or `null` when no pass was applied. */
  readonly instrumentation: InstrumentMetadata | null;
}

/**
 * Which instrumentation passes a prepared module gets. A `"shared-flag"`
 * deadline is what worker plugins get, and only they: such modules also
 * export their state, so an idle worker can hand it over and be parked.
 */
export interface Instrumentation {
  readonly fuel: boolean;
  readonly callDepth: boolean;
  readonly deadline: DeadlineMode | false;
}

/** Everything derived from one binary module, shared by every plugin made from it. */
export interface ModuleArtifact {
  readonly bytes: Uint8Array;
  readonly hash: string;
  readonly info: ModuleInfo;
  readonly imports: readonly ModuleItem[];
  readonly exports: readonly ModuleItem[];
  /** Signatures of exported functions, by export name. */
  readonly signatures: ReadonlyMap<string, Signature>;
  /** Whether the module exports a memory the host can read (see `findExportedMemory`). */
  readonly memoryExports: readonly string[];
  /** The manifest embedded in a `wasmplug.manifest` section, if any. */
  readonly manifest: PluginManifest | null;
  /** Prepared modules by limits key. */
  readonly prepared: Map<string, Promise<PreparedModule>>;
}

const artifacts = new WeakMap<CompiledModule, ModuleArtifact>();

/** Associates a public {@linkcode CompiledModule} with its artifact. */
export function registerArtifact(compiled: CompiledModule, artifact: ModuleArtifact): void {
  artifacts.set(compiled, artifact);
}

/**
 * Returns the artifact of a module compiled by a runtime.
 *
 * @throws {TypeError} If `compiled` did not come from `compile`/`compileWat`.
 */
export function artifactOf(compiled: CompiledModule): ModuleArtifact {
  const artifact = typeof compiled === "object" && compiled !== null
    ? artifacts.get(compiled)
    : undefined;
  if (artifact === undefined) {
    throw new TypeError(
      "Cannot create a plugin: expected a CompiledModule returned by runtime.compile() or compileWat()",
    );
  }
  return artifact;
}

/**
 * Parses and validates a binary module.
 *
 * @throws {CompilationError} With the engine's message and the byte offset.
 */
export async function buildArtifact(bytes: Uint8Array, hash: string): Promise<ModuleArtifact> {
  let info: ModuleInfo;
  try {
    info = parseModule(bytes);
  } catch (err) {
    if (!(err instanceof BinaryFormatError)) throw err;
    // The engine's message is the authoritative one when it also rejects the module.
    await compileOrThrow(bytes, err.offset);
    throw new CompilationError(`Cannot compile module: ${err.message}`, {
      cause: err,
      offset: err.offset,
    });
  }
  // Before the engine sees it: instantiating a GC module can end the process (see the check).
  assertNoGcHeap(bytes);
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) await compileOrThrow(bytes);
  const exports = describeExports(info);
  const signatures = new Map<string, Signature>();
  for (const item of exports) {
    if (item.kind === "function") {
      signatures.set(item.name, { params: item.params ?? [], results: item.results ?? [] });
    }
  }
  const memoryExports = listMemories(info).flatMap((memory) => memory.exportNames);
  return {
    bytes,
    hash,
    info,
    imports: deepFreeze(describeImports(info)),
    exports: deepFreeze(exports),
    signatures,
    memoryExports,
    manifest: embeddedManifest(bytes, info),
    prepared: new Map(),
  };
}

function embeddedManifest(bytes: Uint8Array, info: ModuleInfo): PluginManifest | null {
  const sections = info.customSections.filter((section) => section.name === MANIFEST_SECTION);
  if (sections.length === 0) return null;
  if (sections.length > 1) {
    throw new CompilationError(`The module has ${sections.length} "${MANIFEST_SECTION}" sections`);
  }
  const [section] = sections as [CustomSection];
  return decodeManifestSection(bytes.subarray(section.contentStart, section.end));
}

/**
 * Returns the module compiled for `limits`: memory and table maximums clamped
 * so that growth beyond the limits fails inside wasm, growth bounded by the
 * total over all memories and all tables, and instrumented with the fuel,
 * call-depth and deadline passes that `passes` asks for.
 *
 * @throws {OutOfMemoryError} If the declared minimum memories exceed `maxMemoryPages`.
 * @throws {ResourceLimitError} If the declared minimum tables exceed `maxTableElements`.
 * @throws {CompilationError} If the module exports a name the runtime reserves.
 */
export function prepareModule(
  artifact: ModuleArtifact,
  limits: Readonly<ResourceLimits>,
  passes: Instrumentation,
): Promise<PreparedModule> {
  const key = [
    limits.maxMemoryPages,
    limits.maxTableElements,
    passes.fuel,
    passes.callDepth,
    passes.deadline,
  ].join("/");
  let prepared = artifact.prepared.get(key);
  if (prepared === undefined) {
    prepared = compilePrepared(artifact, limits, passes);
    artifact.prepared.set(key, prepared);
    prepared.catch(() => artifact.prepared.delete(key));
  }
  return prepared;
}

async function compilePrepared(
  artifact: ModuleArtifact,
  limits: Readonly<ResourceLimits>,
  passes: Instrumentation,
): Promise<PreparedModule> {
  const { info } = artifact;
  // The runtime reads exports of that prefix (the memory total), instrumented or not.
  const reserved = info.exports.find((entry) => entry.name.startsWith(RESERVED_EXPORT_PREFIX));
  if (reserved !== undefined) {
    throw new CompilationError(
      `Cannot prepare the module: its export "${reserved.name}" uses the reserved prefix "${RESERVED_EXPORT_PREFIX}"`,
    );
  }
  const clamped = clampLimits(artifact.bytes, limits, { info });
  throwIfTooLarge(clamped);
  let bytes: Uint8Array<ArrayBuffer> = clamped.bytes;
  let instrumentation: InstrumentMetadata | null = null;
  if (passes.fuel || passes.callDepth || passes.deadline !== false) {
    ({ bytes, ...instrumentation } = instrumentOrThrow(bytes, passes));
  }
  // After instrumenting, so the instrumenter's code and budgets stay as they are; its own
  // memory and table come after the plugin's and are not counted.
  const sizes = indexSpaceSizes(info);
  if (sizes.memory > 1 || sizes.table > 1) {
    bytes = enforceTotals(bytes, limits, { memories: sizes.memory, tables: sizes.table }).bytes;
  }
  const module = await compileOrThrow(bytes);
  return { module, bytes, instrumentation };
}

/** Throws the error of the first memory or table, or sum of them, that cannot fit. */
function throwIfTooLarge({ violations, totals }: ClampResult): void {
  const violation = violations[0];
  if (violation !== undefined) {
    const what = `${
      violation.imported ? "Imported" : "Declared"
    } ${violation.kind} ${violation.index}`;
    if (violation.kind === "memory") {
      throw new OutOfMemoryError(
        `${what} needs at least ${violation.declaredMinimum} pages, above the limit maxMemoryPages = ${violation.limit}`,
      );
    }
    throw new ResourceLimitError(
      "maxTableElements",
      `${what} needs at least ${violation.declaredMinimum} elements, above the limit maxTableElements = ${violation.limit}`,
    );
  }
  const total = totals[0];
  if (total === undefined) return;
  if (total.kind === "memory") {
    throw new OutOfMemoryError(
      `The ${total.count} memories need at least ${total.declaredMinimum} pages together, above the limit maxMemoryPages = ${total.limit}`,
    );
  }
  throw new ResourceLimitError(
    "maxTableElements",
    `The ${total.count} tables need at least ${total.declaredMinimum} elements together, above the limit maxTableElements = ${total.limit}`,
  );
}

function instrumentOrThrow(bytes: Uint8Array, passes: Instrumentation): InstrumentResult {
  try {
    return instrument(bytes, {
      fuel: passes.fuel,
      callDepth: passes.callDepth,
      deadline: passes.deadline,
      exportState: passes.deadline === "shared-flag",
      validate: false,
    });
  } catch (err) {
    if (err instanceof BinaryFormatError) {
      throw new CompilationError(`Cannot instrument the module: ${err.message}`, {
        cause: err,
        offset: err.offset,
      });
    }
    if (err instanceof TypeError) throw new CompilationError(err.message, { cause: err });
    throw err;
  }
}

/** Compiles with the engine; `offset` is the failure's position when the engine gives none. */
async function compileOrThrow(bytes: Uint8Array, offset?: number): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /@\+(\d+)/.exec(message);
    const detail = message.replace(/^WebAssembly\.compile\(\): /, "");
    throw new CompilationError(`Cannot compile module: ${detail}`, {
      cause: err,
      ...(at !== null ? { offset: Number(at[1]) } : offset !== undefined ? { offset } : {}),
    });
  }
}

function deepFreeze<T extends object[]>(items: T): T {
  for (const item of items) {
    for (const value of Object.values(item)) if (Array.isArray(value)) Object.freeze(value);
    Object.freeze(item);
  }
  return Object.freeze(items);
}

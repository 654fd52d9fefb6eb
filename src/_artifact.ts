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
import { EngineLimitError } from "./instrument/_engine_limits.ts";
import { clampLimits, type ClampResult } from "./instrument/_limits.ts";
import { enforceTotals, type TotalsOptions } from "./instrument/_totals.ts";
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
  /**
   * Settles once the engine has validated `bytes`, rejecting with the
   * {@linkcode CompilationError} when it refused them. Prepared modules are
   * compiled only after it: an invalid module could turn valid instrumented.
   */
  readonly validated: Promise<void>;
}

/** Options of {@linkcode buildArtifact}. */
export interface BuildOptions {
  /**
   * Work to start on the artifact while the engine validates the module on
   * its own threads, typically preparing it for the runtime's limits; its
   * failure is ignored here (using the prepared module reports it again).
   */
  alongside?: (artifact: ModuleArtifact) => Promise<unknown>;
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
export async function buildArtifact(
  bytes: Uint8Array,
  hash: string,
  options: BuildOptions = {},
): Promise<ModuleArtifact> {
  const pacer = new Pacer();
  const verdict = engineVerdict(bytes);
  let info: ModuleInfo;
  try {
    info = parseModule(bytes);
  } catch (err) {
    if (!(err instanceof BinaryFormatError)) throw err;
    // The engine's message is the authoritative one when it also rejects the module.
    const refused = await verdict;
    if (refused !== null) throw compilationError(refused.error, err.offset);
    throw new CompilationError(`Cannot compile module: ${err.message}`, {
      cause: err,
      offset: err.offset,
    });
  }
  await pacer.pause();
  assertNoGcHeap(bytes, info);
  const validated = verdict.then((refused) => {
    if (refused !== null) throw compilationError(refused.error);
  });
  validated.catch(() => {}); // awaited below, and by every compile of a prepared module
  let artifact: ModuleArtifact;
  try {
    artifact = describeArtifact(bytes, { hash, info, validated });
  } catch (err) {
    // The engine's verdict comes first, as when the module was validated before being described.
    await validated;
    throw err;
  }
  const alongside = options.alongside?.(artifact);
  const [validation] = await Promise.allSettled([validated, alongside]);
  if (validation.status === "rejected") throw validation.reason;
  return artifact;
}

/** The artifact's description of a parsed module (its exports, imports, manifest). */
function describeArtifact(
  bytes: Uint8Array,
  { hash, info, validated }: { hash: string; info: ModuleInfo; validated: Promise<void> },
): ModuleArtifact {
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
    validated,
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
  const pacer = new Pacer();
  const clamped = clampLimits(artifact.bytes, limits, { info });
  throwIfTooLarge(clamped);
  // Each pass reads the module as the one before left it, described without parsing it again.
  let bytes: Uint8Array<ArrayBuffer> = clamped.bytes;
  let described: ModuleInfo | undefined = clamped.info;
  let instrumentation: InstrumentMetadata | null = null;
  if (passes.fuel || passes.callDepth || passes.deadline !== false) {
    await pacer.pause();
    ({ bytes, ...instrumentation } = instrumentOrThrow(bytes, described, passes));
    described = undefined;
  }
  // After instrumenting, so the instrumenter's code and budgets stay as they are; its own
  // memory and table come after the plugin's and are not counted.
  const sizes = indexSpaceSizes(info);
  if (sizes.memory > 1 || sizes.table > 1) {
    await pacer.pause();
    bytes = totalsOrThrow(bytes, limits, {
      memories: sizes.memory,
      tables: sizes.table,
      ...(described === undefined ? {} : { info: described }),
    });
  }
  await artifact.validated;
  await pacer.pause();
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

function instrumentOrThrow(
  bytes: Uint8Array,
  info: ModuleInfo,
  passes: Instrumentation,
): InstrumentResult {
  try {
    return instrument(bytes, {
      fuel: passes.fuel,
      callDepth: passes.callDepth,
      deadline: passes.deadline,
      exportState: passes.deadline === "shared-flag",
      validate: false,
      info,
    });
  } catch (err) {
    if (err instanceof BinaryFormatError) {
      throw new CompilationError(`Cannot instrument the module: ${err.message}`, {
        cause: err,
        offset: err.offset,
      });
    }
    if (err instanceof TypeError || err instanceof EngineLimitError) {
      throw new CompilationError(err.message, { cause: err });
    }
    throw err;
  }
}

function totalsOrThrow(
  bytes: Uint8Array,
  limits: Readonly<ResourceLimits>,
  options: TotalsOptions,
): Uint8Array<ArrayBuffer> {
  try {
    return enforceTotals(bytes, limits, options).bytes;
  } catch (err) {
    if (err instanceof EngineLimitError) throw new CompilationError(err.message, { cause: err });
    throw err;
  }
}

/** A synchronous stretch longer than this ends with a pause for the event loop. */
const PAUSE_AFTER_MS = 8;

/**
 * Keeps the host's event loop running while a large module is compiled:
 * between two phases, it yields a macrotask when the phases since the last
 * pause took longer than {@linkcode PAUSE_AFTER_MS}, and never for a small module.
 */
class Pacer {
  #since = performance.now();

  /** Yields to the event loop when the stretch since the last pause was long. */
  async pause(): Promise<void> {
    if (performance.now() - this.#since < PAUSE_AFTER_MS) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#since = performance.now();
  }
}

/** Modules up to this size are validated on this thread: it takes the engine a few milliseconds. */
const VALIDATE_IN_PLACE_BYTES = 1 << 20;

/**
 * Whether the engine accepts `bytes`: `null`, or the error it compiles them
 * with. A large module is validated by compiling it, which the engine does on
 * its own threads while this one reads the module, since `WebAssembly.validate`
 * would hold this thread (a third of a second for a million types); a small
 * one is validated in place, quicker than the threads' hand-offs. Compiling
 * is safe for any module: instantiating a GC module is what
 * {@linkcode assertNoGcHeap} prevents.
 */
function engineVerdict(bytes: Uint8Array): Promise<{ error: unknown } | null> {
  const source = bytes as Uint8Array<ArrayBuffer>;
  if (bytes.length <= VALIDATE_IN_PLACE_BYTES && WebAssembly.validate(source)) {
    return Promise.resolve(null);
  }
  return WebAssembly.compile(source).then(() => null, (error: unknown) => ({ error }));
}

/** Compiles with the engine. */
async function compileOrThrow(bytes: Uint8Array): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw compilationError(err);
  }
}

/** The engine's compile error; `offset` is the failure's position when the engine gives none. */
function compilationError(err: unknown, offset?: number): CompilationError {
  const message = err instanceof Error ? err.message : String(err);
  const at = /@\+(\d+)/.exec(message);
  const detail = message.replace(/^WebAssembly\.compile\(\): /, "");
  return new CompilationError(`Cannot compile module: ${detail}`, {
    cause: err,
    ...(at !== null ? { offset: Number(at[1]) } : offset !== undefined ? { offset } : {}),
  });
}

function deepFreeze<T extends object[]>(items: T): T {
  for (const item of items) {
    for (const value of Object.values(item)) if (Array.isArray(value)) Object.freeze(value);
    Object.freeze(item);
  }
  return Object.freeze(items);
}

/**
 * What the runtime keeps for a compiled module: the original bytes, their
 * parsed description, and the modules prepared (limits clamped, later
 * instrumented) for each set of limits plugins asked for.
 *
 * @module
 */

import { shownName, visibleText } from "../common/mod.ts";
import type {
  CompiledModule,
  ModuleCustomSection,
  ModuleItem,
  ModuleMemory,
  ModuleTable,
} from "./compiled_module.ts";
// Evaluating the class grants the access that createCompiledModule and artifactOf use.
import "./compiled_module.ts";
import { compiledModuleAccess, type CompiledModuleInit } from "./_compiled_module_access.ts";
import { Capability } from "../capability.ts";
import { builtinCapability } from "../host/mod.ts";
import { CompilationError, OutOfMemoryError, ResourceLimitError, WasmError } from "../errors.ts";
import type { ResourceLimits } from "../resource_limits.ts";
import type { Signature } from "./_signature.ts";
import { BinaryFormatError } from "../instrument/mod.ts";
import { EngineLimitError, UnboundedThrowError } from "../instrument/mod.ts";
import { clampLimits, type ClampResult } from "../instrument/mod.ts";
import { enforceTotals, type TotalsOptions } from "../instrument/mod.ts";
import {
  type DeadlineMode,
  type InstrumentMetadata,
  type InstrumentResult,
  instrumentSteps,
  RESERVED_EXPORT_PREFIX,
} from "../instrument/mod.ts";
import { decodeManifestSection, MANIFEST_SECTION } from "./_plugin_manifest.ts";
import { hideUnprintableNames } from "./_guest_names.ts";
import type { PluginManifest } from "../plugin_manifest.ts";
import {
  assertBoundedExceptions,
  assertFewDeclaredLocals,
  assertFewMemoriesAndTables,
  assertNoGcHeap,
} from "./_module_features.ts";
import {
  type CustomSection,
  describeExports,
  describeImports,
  indexSpaceSizes,
  type Limits,
  listMemories,
  listTables,
  type ModuleInfo,
  parseModule,
} from "../instrument/mod.ts";

/** A module compiled for one set of limits. */
export interface PreparedModule {
  readonly module: WebAssembly.Module;
  readonly bytes: Uint8Array;
  /** What the instrumenter added, or `null` when no pass was applied. */
  readonly instrumentation: InstrumentMetadata | null;
  /**
   * Every memory and table the module imports, in the module's order, as
   * clamped: each instance is given new ones of those its plan accepts.
   */
  readonly storageImports: readonly StorageImport[];
}

/**
 * A memory or table import's module, name and limits (in 64 KiB pages or
 * elements), which a new memory or table must match.
 */
export interface StorageImport {
  readonly kind: "memory" | "table";
  readonly module: string;
  readonly name: string;
  readonly initial: number;
  readonly maximum: number | undefined;
  /** A table's elements, as `WebAssembly.Table` names them (none for other reference types). */
  readonly element?: "anyfunc" | "externref";
}

/** Which instrumentation passes a prepared module gets. */
export interface Instrumentation {
  readonly fuel: boolean;
  readonly callDepth: boolean;
  readonly deadline: DeadlineMode | false;
  /**
   * Whether the module exports its state, so that an idle worker can hand it
   * over and be parked (worker plugins).
   */
  readonly exportState?: boolean;
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
  /** Memories as declared, imported ones first. */
  readonly memories: readonly ModuleMemory[];
  /** Tables as declared, imported ones first. */
  readonly tables: readonly ModuleTable[];
  /** Custom sections, in module order. */
  readonly customSections: readonly ModuleCustomSection[];
  /** Prepared modules by limits key. */
  readonly prepared: Map<string, Promise<PreparedModule>>;
  /** The bytes it holds: the module's, and those of each module prepared from it. */
  readonly held: { bytes: number };
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

/** Creates the public {@linkcode CompiledModule} that holds `artifact`. */
export function createCompiledModule(
  artifact: ModuleArtifact,
  init: CompiledModuleInit,
): CompiledModule {
  return compiledModuleAccess().create(artifact, init) as CompiledModule;
}

/**
 * Returns the artifact of a module compiled by a runtime.
 *
 * @throws {TypeError} If `compiled` did not come from `compile`/`compileWat`,
 *   naming the mistake when it is a copy of one.
 */
export function artifactOf(compiled: CompiledModule): ModuleArtifact {
  const artifact = typeof compiled === "object" && compiled !== null
    ? compiledModuleAccess().artifactOf(compiled) as ModuleArtifact | undefined
    : undefined;
  if (artifact !== undefined) return artifact;
  const expected =
    "Cannot create a plugin: expected a CompiledModule returned by runtime.compile() or compileWat()";
  if (typeof compiled === "object" && compiled !== null && typeof compiled.hash === "string") {
    throw new TypeError(
      `${expected}, received a copy of one (module "${String(compiled.name)}"): ` +
        "a copy such as { ...compiled } or structuredClone(compiled) has no compiled code, " +
        "pass the CompiledModule itself",
    );
  }
  throw new TypeError(expected);
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
  // Before the engine validates it: that would hold this thread for seconds.
  assertFewDeclaredLocals(bytes);
  // Names the engine prints in errors and stack frames: hidden when a guest chose unprintable ones.
  bytes = hideUnprintableNames(bytes);
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
  assertBoundedExceptions(info);
  assertFewMemoriesAndTables(info);
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
  const memories = listMemories(info);
  const memoryExports = memories.flatMap((memory) => memory.exportNames);
  const imports: ModuleItem[] = describeImports(info).map((item) =>
    item.kind === "function"
      ? { ...item, capability: importCapability(item.module, item.name) }
      : item
  );
  return {
    bytes,
    hash,
    info,
    imports: deepFreeze(imports),
    exports: deepFreeze(exports),
    signatures,
    memoryExports,
    manifest: embeddedManifest(bytes, info),
    memories: deepFreeze(memories.map(({ index, import: from, exportNames, limits }) => ({
      index,
      imported: from !== null,
      exportNames,
      minPages: Number(limits.min),
      maxPages: maximumOf(limits),
      shared: limits.shared,
      memory64: limits.address === "i64",
    }))),
    tables: deepFreeze(
      listTables(info).map(({ index, import: from, exportNames, limits, refType }) => ({
        index,
        imported: from !== null,
        exportNames,
        elementType: refType,
        minElements: Number(limits.min),
        maxElements: maximumOf(limits),
        table64: limits.address === "i64",
      })),
    ),
    customSections: deepFreeze(info.customSections.map((section) => ({
      name: section.name,
      sizeBytes: section.end - section.contentStart,
    }))),
    prepared: new Map(),
    held: { bytes: bytes.length },
    validated,
  };
}

/**
 * The capability a call through a function import needs when the runtime
 * provides it; see {@linkcode ModuleItem.capability}.
 */
function importCapability(module: string | undefined, name: string): Capability | null {
  if (module === "wasi_snapshot_preview1") return Capability.Wasi;
  if (module === "env") {
    const capability = builtinCapability(name);
    if (capability !== undefined) return capability as Capability | null;
  }
  return Capability.CallHostFunction;
}

/** A declared maximum as a number (a 64-bit table's may round), or `null`. */
function maximumOf(limits: Limits): number | null {
  return limits.max === null ? null : Number(limits.max);
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
    passes.exportState === true,
  ].join("/");
  let prepared = artifact.prepared.get(key);
  if (prepared === undefined) {
    prepared = compilePrepared(artifact, limits, passes);
    artifact.prepared.set(key, prepared);
    // A typed failure is the module's and these limits' for good: kept, so that a host retrying
    // the load does not pay for the whole preparation again. Anything else may pass next time.
    prepared.catch((err) => {
      if (!(err instanceof WasmError)) artifact.prepared.delete(key);
    });
  }
  return prepared;
}

/** From this size a module is validated before it is instrumented, not alongside. */
const VERDICT_FIRST_BYTES = 256 * 1024;

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
      `Cannot prepare the module: its export ${
        shownName(reserved.name)
      } uses the reserved prefix "${RESERVED_EXPORT_PREFIX}"`,
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
    // A large module waits for the engine's verdict first: instrumenting one the engine refuses
    // would cost its caller up to seconds for nothing.
    if (artifact.bytes.length > VERDICT_FIRST_BYTES) await artifact.validated;
    await pacer.pause();
    ({ bytes, ...instrumentation } = await instrumentOrThrow(bytes, described, passes, pacer));
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
  artifact.held.bytes += bytes.length;
  return { module, bytes, instrumentation, storageImports: storageImportsOf(info, clamped) };
}

/** The `WebAssembly.Table` element of each table type the runtime can make. */
const TABLE_ELEMENTS: Readonly<Record<string, "anyfunc" | "externref">> = {
  funcref: "anyfunc",
  externref: "externref",
};

/**
 * The memory and table imports of the clamped module, read back from its
 * bytes (their maximums are the clamped ones), all of them in order: which
 * the runtime makes is `_import_plan.ts`'s decision alone.
 */
function storageImportsOf(info: ModuleInfo, clamped: ClampResult): StorageImport[] {
  if (!info.imports.some((entry) => entry.kind === "memory" || entry.kind === "table")) return [];
  const imports = clamped.changed ? parseModule(clamped.bytes).imports : info.imports;
  const found: StorageImport[] = [];
  for (const entry of imports) {
    if (entry.kind !== "memory" && entry.kind !== "table") continue;
    const limits = entry.kind === "memory" ? entry.limits : entry.type.limits;
    const element = entry.kind === "table" ? TABLE_ELEMENTS[entry.type.refType] : undefined;
    found.push({
      kind: entry.kind,
      module: entry.module,
      name: entry.name,
      initial: Number(limits.min),
      maximum: limits.max === null ? undefined : Number(limits.max),
      ...(element === undefined ? {} : { element }),
    });
  }
  return found;
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
      `${what} needs at least ${violation.declaredMinimum} elements, above the limit maxTableElements = ${violation.limit}`,
      { limit: "maxTableElements" },
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
    `The ${total.count} tables need at least ${total.declaredMinimum} elements together, above the limit maxTableElements = ${total.limit}`,
    { limit: "maxTableElements" },
  );
}

async function instrumentOrThrow(
  bytes: Uint8Array,
  info: ModuleInfo,
  passes: Instrumentation,
  pacer: Pacer,
): Promise<InstrumentResult> {
  try {
    const steps = instrumentSteps(bytes, {
      fuel: passes.fuel,
      callDepth: passes.callDepth,
      deadline: passes.deadline,
      exportState: passes.exportState === true,
      validate: false,
      info,
    });
    // In steps, with the event loop's turns between them: a megabyte of small functions held
    // the thread for a second in one stretch.
    for (let step = steps.next();; step = steps.next()) {
      if (step.done) return step.value;
      await pacer.pause();
    }
  } catch (err) {
    if (err instanceof BinaryFormatError) {
      throw new CompilationError(`Cannot instrument the module: ${err.message}`, {
        cause: err,
        offset: err.offset,
      });
    }
    if (
      err instanceof TypeError || err instanceof EngineLimitError ||
      err instanceof UnboundedThrowError
    ) {
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
  // The engine's offset ends its message (a name it quotes may hold another "@+").
  const at = /@\+(\d+)$/.exec(message);
  // The engine quotes the guest's names (exports, functions): shown escaped, in the cause too
  // (an uncaught error prints its causes).
  const detail = visibleText(message.replace(/^WebAssembly\.compile\(\): /, ""));
  return new CompilationError(`Cannot compile module: ${detail}`, {
    cause: err instanceof WebAssembly.CompileError
      ? new WebAssembly.CompileError(visibleText(message))
      : err,
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

/**
 * The limits V8 puts on the size of a module (`src/wasm/wasm-limits.h`), as
 * the engine Deno ships enforces them: a module past one is rejected however
 * well-formed it is. The parser checks each count before reading the entries
 * it announces, so a module declaring millions of them fails at once instead
 * of after they are decoded; the instrumenter checks that what it appends
 * keeps a module within them.
 *
 * @module
 */

/** Counts and sizes V8 accepts at most; each was checked against the engine by experiment. */
export const ENGINE_LIMITS = {
  /** Bytes of a module. */
  moduleSize: 1024 * 1024 * 1024,
  /** Entries of the type index space, and type section entries (rec groups). */
  types: 1_000_000,
  /** Entries of the import section. */
  imports: 1_000_000,
  /** Defined functions. */
  functions: 1_000_000,
  /** Defined tables. */
  tables: 100_000,
  /** Defined memories. */
  memories: 100_000,
  /** Defined globals. */
  globals: 1_000_000,
  /** Defined tags. */
  tags: 1_000_000,
  /** Entries of the export section. */
  exports: 1_000_000,
  /** Element segments. */
  elementSegments: 10_000_000,
  /** Data segments. */
  dataSegments: 100_000,
  /** Parameters of a function type. */
  params: 1_000,
  /** Results of a function type. */
  results: 1_000,
  /** Fields of a struct type. */
  structFields: 10_000,
  /** Locals of a function, its parameters included. */
  locals: 50_000,
  /** Bytes of a function body. */
  functionSize: 7_654_321,
} as const;

/** What an {@linkcode ENGINE_LIMITS} entry counts. */
export type EngineLimit = keyof typeof ENGINE_LIMITS;

/**
 * Instrumenting (or limiting the totals of) a module would take one of its
 * counts past the engine's limit: the module is fine as it is, but cannot be
 * given what the limits need.
 */
export class EngineLimitError extends RangeError {
  /** What would exceed the limit. */
  readonly limit: EngineLimit;

  /**
   * Creates the error.
   *
   * @param limit What would exceed the limit.
   * @param message What the module has, what would be added and the limit.
   */
  constructor(limit: EngineLimit, message: string) {
    super(message);
    this.name = "EngineLimitError";
    this.limit = limit;
  }
}

/**
 * Says what was expected and found when `count` exceeds the engine's `limit`
 * (the parser's message), or returns `null` when it is within it.
 */
export function overLimit(limit: EngineLimit, count: number): string | null {
  const max = ENGINE_LIMITS[limit];
  if (count <= max) return null;
  return `Expected at most ${max} ${LABELS[limit]}, the engine's limit, found ${count}`;
}

/** A count of a module and what a pass adds to it, for {@linkcode checkAddition}. */
export interface Addition {
  /** What the module has. */
  readonly count: number;
  /** What the pass would add. */
  readonly added: number;
  /** What fails, for the message, e.g. `"Cannot instrument the module"`. */
  readonly action: string;
  /** Whose count it is, for the message, e.g. `"function 3"`; the module by default. */
  readonly subject?: string;
}

/**
 * Throws an {@linkcode EngineLimitError} when a module within the engine's
 * `limit` would exceed it once a pass adds what it needs. A module already
 * past the limit is left to the engine to reject, with its own message.
 */
export function checkAddition(limit: EngineLimit, addition: Addition): void {
  const max = ENGINE_LIMITS[limit];
  const { count, added, action, subject = "it" } = addition;
  if (count > max || count + added <= max) return;
  const has = `${subject} has ${count} ${LABELS[limit]}`;
  throw new EngineLimitError(
    limit,
    `${action}: ${has} and needs ${added} more, above the engine's limit of ${max}`,
  );
}

/** What a pass appended to a module's vector sections, for {@linkcode checkAppended}. */
export interface Appended {
  /** The entries appended to each vector section, by section id (only `count` is read). */
  readonly sections: ReadonlyMap<number, { readonly count: number }>;
  /** What fails, for the message, e.g. `"Cannot instrument the module"`. */
  readonly action: string;
}

/** The vector sections of a module whose lengths {@linkcode checkAppended} counts (a `ModuleInfo`). */
export interface ModuleCounts {
  readonly types: { readonly length: number };
  readonly functions: { readonly length: number };
  readonly tables: { readonly length: number };
  readonly memories: { readonly length: number };
  readonly globals: { readonly length: number };
  readonly exports: { readonly length: number };
}

/**
 * Checks what a pass appended to the vector sections of `info`'s module,
 * before it does the work of assembling the new module.
 *
 * @throws {EngineLimitError} At the first count the additions take past the engine's limit.
 */
export function checkAppended(info: ModuleCounts, appended: Appended): void {
  // The vector sections passes append to, by section id: types, functions, tables, memories,
  // globals and exports.
  const counts: readonly [number, EngineLimit, number][] = [
    [1, "types", info.types.length],
    [3, "functions", info.functions.length],
    [4, "tables", info.tables.length],
    [5, "memories", info.memories.length],
    [6, "globals", info.globals.length],
    [7, "exports", info.exports.length],
  ];
  for (const [section, limit, count] of counts) {
    const added = appended.sections.get(section)?.count ?? 0;
    checkAddition(limit, { count, added, action: appended.action });
  }
}

const LABELS: Readonly<Record<EngineLimit, string>> = {
  moduleSize: "bytes",
  types: "types",
  imports: "imports",
  functions: "functions",
  tables: "tables",
  memories: "memories",
  globals: "globals",
  tags: "tags",
  exports: "exports",
  elementSegments: "element segments",
  dataSegments: "data segments",
  params: "parameters",
  results: "results",
  structFields: "struct fields",
  locals: "locals",
  functionSize: "bytes of code",
};

/**
 * Decides, before anything is instantiated, who provides each import of a
 * module: the application's linker, a built-in host function, WASI, or (for
 * an imported memory or table) the runtime, which gives each instance a new
 * one of the import's limits as clamped to `maxMemoryPages` or
 * `maxTableElements`. Anything else (a global import, a shared or 64-bit
 * memory, a 64-bit table or one of typed references) is an
 * {@linkcode ImportNotFoundError} at load time.
 *
 * @module
 */

import { ImportNotFoundError, InstantiationError } from "../errors.ts";
import { builtinType, type HostCallable, isBuiltin } from "../host/mod.ts";
import { shownName } from "../common/mod.ts";
import type { ImportPlan } from "./_instance_spec.ts";
import type { ImportEntry, Limits, TableType, TypeEntry } from "../instrument/mod.ts";
import { checkedLinkerFunction } from "./_host_result.ts";
import { timedHostFunction } from "../host/mod.ts";
import type { Linker } from "../linker.ts";
import { PREVIEW1_FUNCTIONS, wasiType } from "../wasi/mod.ts";

function isWasiFunction(name: string): boolean {
  return (PREVIEW1_FUNCTIONS as readonly string[]).includes(name);
}

/** A memory the runtime can make for an import: 32-bit, unshared, of 64 KiB pages. */
function isPlainMemory(limits: Limits): boolean {
  return limits.address === "i32" && !limits.shared && limits.pageSizeLog2 === null;
}

/**
 * Refuses an import of a host function the runtime provides (a built-in, a
 * WASI function) declared with another type than it has: the engine would
 * convert its arguments and results as declared, and the call fail later
 * with an engine's message (a BigInt where an i32 is declared), or read
 * arguments that were never passed.
 *
 * @throws {InstantiationError} Naming both types.
 */
function checkImportType(
  module: string,
  name: string,
  declared: TypeEntry | undefined,
  expected: { readonly params: readonly string[]; readonly results: readonly string[] } | undefined,
): void {
  if (expected === undefined || declared?.kind !== "func") return;
  const same = (a: readonly string[], b: readonly string[]): boolean =>
    a.length === b.length && a.every((type, i) => type === b[i]);
  if (same(declared.params, expected.params) && same(declared.results, expected.results)) return;
  throw new InstantiationError(
    `Cannot link the import "${module}"."${name}": it is declared ${
      funcTypeText(declared.params, declared.results)
    }, but the host function is ${funcTypeText(expected.params, expected.results)}`,
  );
}

/** A function type as WAT writes it, e.g. `(func (param i32 i32) (result i32))`. */
function funcTypeText(params: readonly string[], results: readonly string[]): string {
  const param = params.length === 0 ? "" : ` (param ${params.join(" ")})`;
  const result = results.length === 0 ? "" : ` (result ${results.join(" ")})`;
  return `(func${param}${result})`;
}

/** A table the runtime can make for an import: 32-bit, of `funcref` or `externref`. */
function isPlainTable(type: TableType): boolean {
  return type.limits.address === "i32" &&
    (type.refType === "funcref" || type.refType === "externref");
}

/** The plan, and the linker functions its `index` fields point at. */
export interface PlannedImports {
  readonly plan: ImportPlan[];
  readonly linkerFunctions: HostCallable[];
}

/**
 * Plans how every import is provided. Linker functions are wrapped so that
 * their results are checked against the import's type (`types` is the
 * module's type section), and against what crosses to a worker when the
 * plugin runs in one (`crossesToWorker`).
 *
 * @throws {ImportNotFoundError} For an import nobody provides.
 */
export function planImports(
  imports: readonly ImportEntry[],
  types: readonly TypeEntry[],
  linker: Linker | undefined,
  crossesToWorker: boolean,
): PlannedImports {
  const plan: ImportPlan[] = [];
  const linkerFunctions: HostCallable[] = [];
  for (const entry of imports) {
    const { module, name, kind } = entry;
    const linked = kind === "function" ? linker?.get(module, name) : undefined;
    const type = kind === "function" ? types[entry.typeIndex] : undefined;
    if (linked !== undefined && type?.kind === "func") {
      plan.push({ module, name, kind: "linker", index: linkerFunctions.length });
      const checked = checkedLinkerFunction(linked as HostCallable, type, crossesToWorker);
      linkerFunctions.push(timedHostFunction(`${module}.${name}`, checked));
    } else if (module === "env" && kind === "function" && isBuiltin(name)) {
      checkImportType(module, name, type, builtinType(name));
      plan.push({ module, name, kind: "builtin", index: -1 });
    } else if (module === "wasi_snapshot_preview1" && kind === "function" && isWasiFunction(name)) {
      checkImportType(module, name, type, wasiType(name));
      plan.push({ module, name, kind: "wasi", index: -1 });
    } else if (kind === "memory" && isPlainMemory(entry.limits)) {
      plan.push({ module, name, kind: "memory", index: -1 });
    } else if (kind === "table" && isPlainTable(entry.type)) {
      plan.push({ module, name, kind: "table", index: -1 });
    } else {
      throw new ImportNotFoundError(unprovidedReason(entry), { module, importName: name });
    }
  }
  return { plan, linkerFunctions };
}

/**
 * Why nobody provides an import a linker cannot provide either (a linker
 * defines functions only), or `undefined` for the default message.
 */
function unprovidedReason(entry: ImportEntry): string | undefined {
  const named = `Import not found: ${shownName(entry.module)}.${shownName(entry.name)}`;
  switch (entry.kind) {
    case "memory": {
      const { address, shared, pageSizeLog2 } = entry.limits;
      const what = shared
        ? "a shared memory"
        : address !== "i32"
        ? "a 64-bit memory"
        : `a memory of ${2 ** (pageSizeLog2 ?? 16)}-byte pages`;
      return `${named} is ${what}, which cannot be imported: the runtime gives each instance a ` +
        "new unshared 32-bit memory of 64 KiB pages for an imported one, and a linker defines " +
        "functions only";
    }
    case "table":
      return `${named} is a ${
        entry.type.limits.address === "i32" ? "" : "64-bit "
      }table of ${entry.type.refType}, which cannot be imported: the runtime makes 32-bit tables ` +
        "of funcref or externref for imported ones, and a linker defines functions only";
    case "global":
    case "tag":
      return `${named} is a ${entry.kind}, which cannot be imported: a linker defines functions only`;
    default:
      return undefined;
  }
}

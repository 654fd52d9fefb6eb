/**
 * What the runtime may do with a {@linkcode CompiledModule} that users may
 * not: create one, and read the artifact it keeps in a private field. The
 * class grants this access once, when its module is evaluated; nothing here
 * is exported from `mod.ts`.
 *
 * @module
 */

/** What a compiled module adds to its artifact. */
export interface CompiledModuleInit {
  /** The name given at compilation. */
  readonly name: string;
  /** Time spent compiling, in milliseconds. */
  readonly compileTimeMs: number;
}

/**
 * The privileged operations on compiled modules. Typed loosely (`object`),
 * so that this file imports neither the class nor the artifact and no import
 * cycle forms; `_artifact.ts` restores the types.
 */
export interface CompiledModuleAccess {
  /** Creates a compiled module holding `artifact` (a `ModuleArtifact`). */
  create(artifact: object, init: CompiledModuleInit): object;
  /** The artifact of `value`, or `undefined` when `value` is no compiled module. */
  artifactOf(value: object): object | undefined;
}

let granted: CompiledModuleAccess | undefined;

/**
 * Called by the `CompiledModule` class, once.
 *
 * @throws {Error} If access was already granted: only the class may grant it.
 */
export function grantCompiledModuleAccess(access: CompiledModuleAccess): void {
  if (granted !== undefined) throw new Error("CompiledModule access is granted once");
  granted = access;
}

/** The access the `CompiledModule` class granted. */
export function compiledModuleAccess(): CompiledModuleAccess {
  if (granted === undefined) throw new Error("The CompiledModule class is not loaded");
  return granted;
}

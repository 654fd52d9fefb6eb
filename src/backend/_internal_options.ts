/**
 * Runtime options that are not part of the public API. wasmplug's own tests
 * use them to run plugin workers from another script (one that crashes or
 * hangs in ways a guest cannot make it) and to watch workers spawn and park.
 * They live under a symbol key of the runtime config: nothing outside the
 * package can name it, and `assertKnownKeys` only looks at string keys.
 *
 * @module
 */

import type { RuntimeConfig } from "../runtime_config.ts";

/** The key of the internal options in a runtime config. */
export const internalOptions: unique symbol = Symbol("wasmplug.internalOptions");

/**
 * What happened to a plugin's worker: an instance was set up in it
 * (`"spawned"`, also for a kept worker), it was a kept worker (`"reused"`,
 * before its `"spawned"`), or its instance was parked.
 */
export type WorkerEvent = "spawned" | "parked" | "reused" | "kept";

/** What a runtime config may hold under {@linkcode internalOptions}. */
export interface InternalOptions {
  /**
   * The script plugin workers run instead of the bundled entry. Such a script
   * loads its module graph, which takes read (or import) permission.
   */
  readonly workerUrl?: URL;
  /**
   * How long a worker may take to load and report ready.
   *
   * @default {30_000}
   */
  readonly workerBootTimeoutMs?: number;
  /**
   * Told each time one of the runtime's plugin workers is spawned, parked,
   * reused from the pool or kept (its state could not be parked), with its script.
   */
  readonly onWorkerEvent?: (event: WorkerEvent, script: URL) => void;
}

/**
 * `config` with internal options: a `RuntimeConfig` literal cannot name
 * their key, which its type does not declare.
 */
export function withInternalOptions(
  config: RuntimeConfig,
  options: InternalOptions,
): RuntimeConfig {
  const internal: { [internalOptions]: InternalOptions } = { [internalOptions]: options };
  return { ...config, ...internal };
}

/**
 * The internal options of a runtime config, `{}` when it has none.
 *
 * @throws {TypeError} If they are not an object.
 */
export function internalOptionsOf(config: object): InternalOptions {
  const options = (config as { [internalOptions]?: unknown })[internalOptions];
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot create a runtime: its internal options are not an object");
  }
  return options;
}

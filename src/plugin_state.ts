/**
 * The lifecycle of a plugin.
 *
 * @module
 */

/**
 * A plugin's lifecycle state:
 * `created -> initializing -> ready -> running -> ready … -> stopped`,
 * with `error` when initialization fails and `paused` between calls on request.
 *
 * @example
 * ```ts
 * import type { PluginState } from "@wasmplug/wasmplug";
 * const state: PluginState = "ready";
 * ```
 */
export type PluginState =
  | "created"
  | "initializing"
  | "ready"
  | "running"
  | "paused"
  | "error"
  | "stopped";

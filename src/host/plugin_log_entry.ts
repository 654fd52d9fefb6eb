/**
 * What plugins log with `host_log`.
 *
 * @module
 */

/**
 * One `host_log` call of a plugin, as given to the config's `onLog` (the same
 * entry also goes to LogTape under `["wasmplug", "plugin", <name>]`).
 *
 * @example
 * ```ts
 * import type { PluginLogEntry } from "@wasmplug/wasmplug";
 * const entry: PluginLogEntry = { pluginId: "p-1", level: "info", message: "hello" };
 * ```
 */
export interface PluginLogEntry {
  /** Id of the plugin that logged. */
  readonly pluginId: string;
  /** The level: guest levels 0, 1, 2, 3 are debug, info, warning, error. */
  readonly level: "debug" | "info" | "warning" | "error";
  /** The text, decoded as UTF-8 (invalid sequences become U+FFFD). */
  readonly message: string;
  /**
   * Set only on the host's own notice that records were dropped over the
   * rate limit: how many (a guest's record with the same text has none).
   */
  readonly droppedRecords?: number;
}

/**
 * The plain data types of the `PluginManager` API, apart from
 * the manager so that its dashboard can use them without importing it.
 *
 * @module
 */

import type { Capability } from "./capability.ts";
import type { PluginMetrics } from "./plugin_metrics.ts";
import type { PluginState } from "./plugin_state.ts";

/**
 * A reference to a plugin loaded in a `PluginManager`.
 *
 * @example
 * ```ts
 * import type { PluginHandle } from "@wasmplug/wasmplug";
 * const handle: PluginHandle = { id: "plugin-1" };
 * ```
 */
export interface PluginHandle {
  /** The plugin's id, unique in its manager. */
  readonly id: string;
}

/**
 * What `manager.getInfo()` returns.
 *
 * @example
 * ```ts
 * import type { PluginInfo } from "@wasmplug/wasmplug";
 * function show(info: PluginInfo): string {
 *   return `${info.name}: ${info.state}, ${info.metrics.callCount} calls`;
 * }
 * ```
 */
export interface PluginInfo {
  /** The plugin's id. */
  readonly id: string;
  /** The plugin's name. */
  readonly name: string;
  /** Its lifecycle state. */
  readonly state: PluginState;
  /** The capabilities granted to it. */
  readonly capabilities: readonly Capability[];
  /** Its metrics. */
  readonly metrics: PluginMetrics;
}

/**
 * What `manager.stats()` returns.
 *
 * @example
 * ```ts
 * import type { ManagerStats } from "@wasmplug/wasmplug";
 * const empty: ManagerStats = {
 *   totalLoaded: 0, totalUnloaded: 0, activePlugins: 0,
 *   totalCalls: 0, failedCalls: 0, totalExecutionTimeMs: 0,
 * };
 * ```
 */
export interface ManagerStats {
  /** Plugins loaded since the manager was created. */
  readonly totalLoaded: number;
  /** Plugins unloaded since the manager was created. */
  readonly totalUnloaded: number;
  /** Plugins loaded now. */
  readonly activePlugins: number;
  /** Calls made through the manager or on its plugins. */
  readonly totalCalls: number;
  /** Calls that failed. */
  readonly failedCalls: number;
  /** Time spent in calls, in milliseconds. */
  readonly totalExecutionTimeMs: number;
}

/**
 * Options of `manager.subscribe()`.
 *
 * @example
 * ```ts
 * import type { SubscribeOptions } from "@wasmplug/wasmplug";
 * const options: SubscribeOptions = { bufferSize: 64 };
 * ```
 */
export interface SubscribeOptions {
  /**
   * How many unread events to keep before dropping the oldest.
   *
   * @default {1024}
   */
  bufferSize?: number;
}

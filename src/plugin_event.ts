/**
 * The events a {@linkcode PluginManager} dispatches, and a {@linkcode WasmPlugin} about itself.
 *
 * @module
 */

import type { PluginMessage } from "./host/plugin_message.ts";
import type { AnomalyDetail } from "./observe/anomaly.ts";
import type { PluginState } from "./plugin_state.ts";

/**
 * The payload of each event type.
 *
 * @example
 * ```ts
 * import type { PluginEventDetails } from "@wasmplug/wasmplug";
 * const detail: PluginEventDetails["executed"] = { function: "add", durationMs: 0.01, success: true };
 * ```
 */
export interface PluginEventDetails {
  /** A plugin was loaded. */
  loaded: { readonly name: string };
  /** A plugin's initializers ran. */
  initialized: { readonly name: string };
  /** A plugin changed state. */
  state_changed: { readonly from: PluginState; readonly to: PluginState };
  /** A call ended. */
  executed: {
    readonly function: string;
    readonly durationMs: number;
    readonly success: boolean;
    readonly error?: string;
  };
  /** A plugin was unloaded. */
  unloaded: { readonly name: string };
  /** A call or lifecycle step failed. */
  error: { readonly error: unknown; readonly function?: string };
  /**
   * A plugin sent a message with `host_send_message`. Those its start
   * function sends while a manager loads it come once the load is done, the
   * first 1 024 of them (the config's `onMessage` gets every one).
   */
  message: PluginMessage;
  /** A plugin's calls departed from its learned baseline (see `AnomalyOptions`). */
  anomaly: AnomalyDetail;
}

/**
 * The name of a manager event.
 *
 * @example
 * ```ts
 * import type { PluginEventType } from "@wasmplug/wasmplug";
 * const type: PluginEventType = "executed";
 * ```
 */
export type PluginEventType = keyof PluginEventDetails;

/**
 * An event about one plugin, dispatched by a {@linkcode PluginManager}, or by the
 * {@linkcode WasmPlugin} itself (`state_changed`, `executed`, `error`, `anomaly`).
 *
 * @example
 * ```ts
 * import { PluginEvent } from "@wasmplug/wasmplug";
 * const event = new PluginEvent("loaded", "plugin-1", { name: "greeter" });
 * console.log(event.type, event.pluginId, event.detail.name); // loaded plugin-1 greeter
 * ```
 */
export class PluginEvent<T extends PluginEventType = PluginEventType> extends Event {
  /** The plugin the event is about. */
  readonly pluginId: string;
  /** The event's payload. */
  readonly detail: PluginEventDetails[T];
  /** When it happened (`Date.now()`). */
  readonly time: number;

  /**
   * Creates an event.
   *
   * @param type The event name.
   * @param pluginId The plugin it is about.
   * @param detail The payload.
   */
  constructor(type: T, pluginId: string, detail: PluginEventDetails[T]) {
    super(type);
    this.pluginId = pluginId;
    this.detail = detail;
    this.time = Date.now();
  }

  /**
   * The event's name, typed.
   *
   * @example
   * ```ts
   * import { PluginEvent } from "@wasmplug/wasmplug";
   * console.log(new PluginEvent("unloaded", "p-1", { name: "p" }).type); // unloaded
   * ```
   */
  override get type(): T {
    return super.type as T;
  }
}

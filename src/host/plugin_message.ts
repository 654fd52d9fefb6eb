/**
 * Messages that plugins send with `host_send_message`.
 *
 * @module
 */

/**
 * A message sent by a plugin through `env.host_send_message`.
 *
 * @example
 * ```ts
 * import type { PluginMessage } from "@wasmplug/wasmplug";
 * function onMessage(message: PluginMessage): void {
 *   console.log(`${message.from} -> ${message.to}: ${new TextDecoder().decode(message.data)}`);
 * }
 * ```
 */
export interface PluginMessage {
  /** Id of the sending plugin. */
  readonly from: string;
  /** The recipient named by the plugin. */
  readonly to: string;
  /** The payload, copied out of the plugin's memory. */
  readonly data: Uint8Array;
}

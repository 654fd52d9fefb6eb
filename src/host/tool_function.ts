/**
 * Host tools that plugins call with `host_call_tool`.
 *
 * @module
 */

/**
 * A host tool: takes the plugin's JSON arguments, returns a JSON-serializable
 * result, synchronously or as a promise (the guest waits, the host does not).
 *
 * @example
 * ```ts
 * import type { ToolFunction } from "@wasmplug/wasmplug";
 * const add: ToolFunction = (args) => {
 *   const { a, b } = args as { a: number; b: number };
 *   return { sum: a + b };
 * };
 * ```
 */
export type ToolFunction = (args: unknown) => unknown;

/** Small formatting helpers for error messages. @module */

/** Renders a value for an error message: `string "x"`, `undefined`, `object`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "bigint") return `bigint ${value}n`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

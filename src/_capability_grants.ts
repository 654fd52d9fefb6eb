/**
 * The capabilities a plugin config grants, checked.
 *
 * @module
 */

import { Capability } from "./capability.ts";
import { describeValue, shownName } from "./common/mod.ts";

const ALL_CAPABILITIES: ReadonlySet<string> = new Set(Object.values(Capability));

/**
 * Checks a list of capabilities from a config and returns it as a set.
 *
 * @param capabilities The list, or `undefined` for none.
 * @returns The granted set.
 * @throws {TypeError} If the list is not an array or names an unknown capability.
 */
export function parseCapabilities(
  capabilities: readonly Capability[] | undefined,
): ReadonlySet<Capability> {
  if (capabilities === undefined) return new Set();
  if (!Array.isArray(capabilities)) {
    throw new TypeError(
      `Cannot grant capabilities: expected an array of capability names, received ${
        describeValue(capabilities)
      }`,
    );
  }
  for (const capability of capabilities) {
    if (!ALL_CAPABILITIES.has(capability)) {
      throw new TypeError(
        `Cannot grant capability ${
          typeof capability === "string" ? shownName(capability) : describeValue(capability)
        }: expected one of ${[...ALL_CAPABILITIES].join(", ")}`,
      );
    }
  }
  return new Set(capabilities);
}

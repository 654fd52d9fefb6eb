/**
 * Reading and checking plugin manifests, from a config or from a module's
 * `wasmplug.manifest` custom section.
 *
 * @module
 */

import { isHiddenCode, shownName, visibleText } from "../common/mod.ts";
import { Capability } from "../capability.ts";
import { CompilationError } from "../errors.ts";
import { resolveLimits } from "./_limit_overrides.ts";
import type { PluginManifest } from "../plugin_manifest.ts";
import { DEFAULT_LIMITS, type ResourceLimits } from "../resource_limits.ts";

/** Name of the custom section that carries a manifest. */
export const MANIFEST_SECTION = "wasmplug.manifest";

const decoder = new TextDecoder("utf-8", { fatal: true });
const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set(Object.values(Capability));
const MANIFEST_KEYS = new Set([
  "name",
  "version",
  "description",
  "capabilities",
  "exports",
  "limits",
]);

/** The longest plugin name a manifest may give. */
const MAX_NAME_LENGTH = 128;
/**
 * Whether a plugin name reads as what it is: some visible text (not only
 * spaces, fillers or a blank Braille pattern), without control characters,
 * line breaks, marks changing direction or characters a reader does not see
 * (one plugin could pass for another). Joiners, variation selectors and tags
 * are part of a spelling after a character beyond ASCII (an emoji sequence
 * "👨‍👩‍👧", Persian's zero-width non-joiner, an Indic conjunct), and only there.
 */
function isPrintableName(name: string): boolean {
  if (!name.isWellFormed()) return false;
  const codes = Array.from(name, (char) => char.codePointAt(0)!);
  let visible = false;
  let joinable = false;
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code < 0x20 || code === 0x7f) return false;
    if (code >= 0x80 && isHiddenCode(code)) {
      if (!(joinable && isJoiner(code)) && !isKeycapSelector(codes, i)) return false;
      continue;
    }
    joinable = code >= 0x80;
    if (code !== 0x2800 && String.fromCodePoint(code).trim() !== "") visible = true;
  }
  return visible;
}

/** Whether `codes[i]` is the emoji selector of a keycap ("1️⃣": a digit, `#` or `*`, U+FE0F, U+20E3). */
function isKeycapSelector(codes: readonly number[], i: number): boolean {
  const before = codes[i - 1];
  return codes[i] === 0xfe0f && codes[i + 1] === 0x20e3 && before !== undefined &&
    (before >= 0x30 && before <= 0x39 || before === 0x23 || before === 0x2a);
}

/** Zero-width (non-)joiners, variation selectors and tags: hidden, but part of a spelling. */
function isJoiner(code: number): boolean {
  return code === 0x200c || code === 0x200d || (code >= 0x180b && code <= 0x180f) ||
    (code >= 0xfe00 && code <= 0xfe0f) || (code >= 0xe0020 && code <= 0xe007f) ||
    (code >= 0xe0100 && code <= 0xe01ef);
}

/**
 * Checks that a value is a well-formed manifest.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./_plugin_manifest.ts";
 * const manifest = parseManifest({ name: "greeter", exports: ["greet_len"] });
 * console.log(manifest.exports); // [ "greet_len" ]
 * ```
 *
 * @param value The parsed JSON (or an object literal).
 * @param source Where it came from, for messages.
 * @returns The same manifest, frozen.
 * @throws {TypeError} Naming the first field that is wrong.
 */
export function parseManifest(value: unknown, source = "the manifest"): PluginManifest {
  const fail = (message: string): never => {
    throw new TypeError(`Cannot use ${source}: ${message}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("expected a JSON object");
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!MANIFEST_KEYS.has(key)) fail(`unknown field ${shownName(key)}`);
  }
  if (typeof record.name !== "string" || record.name === "") {
    fail("'name' must be a non-empty string");
  }
  // The name becomes the plugin's logger category and its label in metrics: a module's own
  // manifest must not write lines of its own into the host's log.
  const name = record.name as string;
  if (name.length > MAX_NAME_LENGTH || !isPrintableName(name)) {
    fail(
      `'name' must be at most ${MAX_NAME_LENGTH} characters of printable text, received ${
        shownName(name)
      }`,
    );
  }
  for (const key of ["version", "description"]) {
    if (record[key] !== undefined && typeof record[key] !== "string") {
      fail(`'${key}' must be a string`);
    }
  }
  const strings = (key: string): void => {
    const list = record[key];
    if (list === undefined) return;
    if (!Array.isArray(list) || list.some((item) => typeof item !== "string")) {
      fail(`'${key}' must be an array of strings`);
    }
  };
  strings("capabilities");
  strings("exports");
  for (const capability of (record.capabilities ?? []) as string[]) {
    if (!KNOWN_CAPABILITIES.has(capability)) {
      fail(
        `unknown capability ${
          typeof capability === "string" ? shownName(capability) : JSON.stringify(capability)
        }`,
      );
    }
  }
  if (record.limits !== undefined) {
    if (
      typeof record.limits !== "object" || record.limits === null || Array.isArray(record.limits)
    ) {
      fail("'limits' must be an object");
    }
    // An embedded manifest is the guest's: its limits are checked here, where a bad one
    // fails the compilation, not at load. One plugin cannot limit how many a runtime holds.
    if (Object.hasOwn(record.limits as object, "maxInstances")) {
      fail("'limits.maxInstances' limits a runtime's plugins: a plugin's manifest cannot set it");
    }
    try {
      resolveLimits(DEFAULT_LIMITS, record.limits as Partial<ResourceLimits>);
    } catch (error) {
      fail(`'limits' are invalid: ${(error as Error).message}`);
    }
  }
  return Object.freeze({ ...record }) as unknown as PluginManifest;
}

/**
 * Reads the manifest embedded in a module's `wasmplug.manifest` section.
 *
 * @param content The section's contents.
 * @throws {CompilationError} If the section is not UTF-8 JSON or not a valid manifest.
 *
 * @example
 * ```ts
 * import { decodeManifestSection } from "./_plugin_manifest.ts";
 * const manifest = decodeManifestSection(new TextEncoder().encode('{"name":"greeter"}'));
 * console.log(manifest.name); // greeter
 * ```
 */
export function decodeManifestSection(content: Uint8Array): PluginManifest {
  try {
    return parseManifest(
      JSON.parse(decoder.decode(content)),
      `the module's "${MANIFEST_SECTION}" section`,
    );
  } catch (cause) {
    // The parser's message quotes the guest's text: escaped, as its cause's.
    const message = visibleText(String((cause as Error)?.message));
    throw new CompilationError(
      `Cannot read the module's "${MANIFEST_SECTION}" section: ${message}`,
      // A parser's SyntaxError stays one; the manifest check's own errors escape their text.
      { cause: cause instanceof SyntaxError ? new SyntaxError(message) : cause },
    );
  }
}

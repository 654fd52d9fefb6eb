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
 * spaces, marks, fillers or a blank Braille pattern), without control
 * characters, line breaks, marks changing direction, characters a reader
 * does not see (one plugin could pass for another) or more than
 * {@linkcode MAX_STACKED_MARKS} combining marks on one character. The hidden
 * characters that are part of a spelling pass where they spell something
 * (see {@linkcode spells}): the joiners of emoji sequences and of scripts
 * that join ("👨‍👩‍👧", Persian, Indic conjuncts), emoji and keycap selectors,
 * ideographic and Mongolian variation selectors, a flag's tags.
 */
function isPrintableName(name: string): boolean {
  if (!name.isWellFormed()) return false;
  const codes = Array.from(name, (char) => char.codePointAt(0)!);
  let visible = false;
  let marks = 0;
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code < 0x20 || code === 0x7f) return false;
    if (code >= 0x80 && isHiddenCode(code)) {
      if (!spells(codes, i)) return false;
      continue;
    }
    const char = String.fromCodePoint(code);
    marks = MARK.test(char) ? marks + 1 : 0;
    if (marks > MAX_STACKED_MARKS) return false;
    if (marks === 0 && code !== 0x2800 && char.trim() !== "") visible = true;
  }
  return visible;
}

/** Combining marks one character of a name may carry (Vietnamese and Indic use up to 3). */
const MAX_STACKED_MARKS = 4;
const MARK = /^\p{M}$/u;
const PICTOGRAPHIC = /^\p{Extended_Pictographic}$/u;
/** Scripts in which the zero-width (non-)joiner changes how letters join. */
const JOINING_SCRIPTS = [
  "Arabic",
  "Syriac",
  "Nko",
  "Mongolian",
  "Devanagari",
  "Bengali",
  "Gurmukhi",
  "Gujarati",
  "Oriya",
  "Tamil",
  "Telugu",
  "Kannada",
  "Malayalam",
  "Sinhala",
  "Tibetan",
  "Myanmar",
  "Khmer",
].map((script) => `\\p{Script=${script}}`).join("");
/** A letter of a joining script. */
const JOINING_LETTER = new RegExp(`^(?=\\p{L})[${JOINING_SCRIPTS}]$`, "u");
/** A mark of a joining script (a virama). */
const JOINING_MARK = new RegExp(`^(?=\\p{M})[${JOINING_SCRIPTS}]$`, "u");
/** What may follow a word-ending joiner: a space, punctuation (`-`, `.`, `_`) or a digit. */
const WORD_END = /^[\s\p{P}\p{N}]$/u;

/**
 * Whether the joiner at `i` stands in a word of a joining script: after one
 * of its letters or marks (a virama), before another or at the word's end.
 */
function inJoiningWord(codes: readonly number[], i: number): boolean {
  // Marks of no script of their own (a kasra) sit on the letter before them.
  let base = i - 1;
  while (is(codes, base, MARK) && !is(codes, base, JOINING_MARK)) base--;
  const after = is(codes, base, JOINING_LETTER) || is(codes, base, JOINING_MARK);
  const next = codes[i + 1];
  return after &&
    (next === undefined || is(codes, i + 1, JOINING_LETTER) || is(codes, i + 1, JOINING_MARK) ||
      is(codes, i + 1, WORD_END));
}
const HAN = /^\p{Script=Han}$/u;
const MONGOLIAN_LETTER = /^(?=\p{L})\p{Script=Mongolian}$/u;

/** Whether the code point at `at` is one of `test`'s (`false` past either end). */
function is(codes: readonly number[], at: number, test: RegExp): boolean {
  const code = codes[at];
  return code !== undefined && test.test(String.fromCodePoint(code));
}

/**
 * Whether the hidden character at `i` is part of the name's spelling: a
 * zero-width joiner between pictographs (after a skin tone or an emoji
 * selector too), a joiner or non-joiner in a word of a joining script (after
 * a letter or a mark, before another or at the word's end: Persian
 * "کتابِ‌من", Malayalam's chillu "ന്‍", Indic conjuncts), an emoji
 * selector after a pictograph (or in a keycap, "1️⃣"), a variation selector
 * after a Han or Mongolian letter, or the tags of a flag ("🏴" and tags up to
 * a cancel tag).
 */
function spells(codes: readonly number[], i: number): boolean {
  const code = codes[i]!;
  const before = codes[i - 1];
  if (code === 0x200d) {
    const afterEmoji = is(codes, i - 1, PICTOGRAPHIC) || before === 0xfe0f ||
      (before !== undefined && before >= 0x1f3fb && before <= 0x1f3ff);
    if (afterEmoji) return is(codes, i + 1, PICTOGRAPHIC);
  }
  if (code === 0x200d || code === 0x200c) return inJoiningWord(codes, i);
  if (code === 0xfe0f || code === 0xfe0e) {
    const keycap = codes[i + 1] === 0x20e3 && before !== undefined &&
      ((before >= 0x30 && before <= 0x39) || before === 0x23 || before === 0x2a);
    return keycap || is(codes, i - 1, PICTOGRAPHIC);
  }
  if ((code >= 0xfe00 && code <= 0xfe0d) || (code >= 0xe0100 && code <= 0xe01ef)) {
    return is(codes, i - 1, HAN);
  }
  if (code >= 0x180b && code <= 0x180f) return is(codes, i - 1, MONGOLIAN_LETTER);
  if (code >= 0xe0020 && code <= 0xe007f) {
    // Back to the flag over the tags before; a cancel tag ends the run, a tag must not.
    let at = i - 1;
    while (at >= 0 && codes[at]! >= 0xe0020 && codes[at]! <= 0xe007e) at--;
    const flagged = codes[at] === 0x1f3f4 && at < i - (code === 0xe007f ? 1 : 0);
    const next = codes[i + 1];
    return flagged &&
      (code === 0xe007f || (next !== undefined && next >= 0xe0020 && next <= 0xe007f));
  }
  return false;
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
  // Characters are code points: an emoji is one, not two UTF-16 units.
  if (
    name.length > 4 * MAX_NAME_LENGTH || [...name].length > MAX_NAME_LENGTH ||
    !isPrintableName(name)
  ) {
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

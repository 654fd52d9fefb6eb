/**
 * The parse of a `callJson` output, bounded in the host memory it may take.
 *
 * `JSON.parse` runs on the host's thread after the call, and what it makes
 * can be many times the text: 56-62 bytes of heap for each array or object
 * (`[[[…]]]` takes 29 times its size, 461 MiB for a 16 MiB output, and ten
 * plugins returning one at once ended the host process out of memory), and
 * up to 24 for a number or a short string (`-0` is a boxed number). So an
 * output is parsed only if a scan of its structure estimates it within a
 * budget: {@linkcode JSON_HEAP_PER_MEMORY_BYTE} times the memory the plugin
 * may hold (`maxMemoryPages`), at least {@linkcode MIN_JSON_HEAP_BYTES}, and
 * at most an eighth of the heap the engine lets the process have (two plugins
 * with 4 096 pages each, whose 80 MiB outputs were each within 16 times their
 * memory, ended the host out of memory together), and nests at most
 * {@linkcode MAX_JSON_DEPTH} deep; outputs shorter than that depth are not
 * scanned. The decoded text counts too (twice its length in UTF-16 when a
 * character is beyond Latin-1).
 *
 * The bound is on memory, not time: a parse takes 7-20 ms per MB of common
 * JSON here, and up to 120-180 ms per MB of objects whose keys differ (the
 * engine makes each distinct key a hidden class, `{"k0":0},{"k1":0},…`), on
 * the host's thread. A host that calls untrusted plugins often with a large
 * `maxMemoryPages` should take such output with `callBytes`.
 *
 * @module
 */

import { getHeapStatistics } from "node:v8";
import { ResourceLimitError, TypeMismatchError } from "./errors.ts";

/** Heap a parse may take per byte of memory the plugin may hold: 16. */
export const JSON_HEAP_PER_MEMORY_BYTE = 16;
/** Heap a parse may take whatever the plugin's memory limit: 64 MiB. */
export const MIN_JSON_HEAP_BYTES = 64 * 1024 * 1024;

/**
 * Estimated heap of one array or object, of one more element or member, and
 * of a member's key (a key no other object has costs the engine a hidden
 * class of its own, some 130 bytes; one that objects share, about 8: objects
 * with unique keys take up to twice the estimate, within the heap share), in
 * bytes.
 */
const CONTAINER_BYTES = 56;
/** An element: its slot, and a boxed number or a string (`-0`, `1.5`, `"ab"` take 24). */
const ELEMENT_BYTES = 24;
const KEY_BYTES = 24;
/**
 * An object with a key that is an array index (`"9"`, `"4294967294"`): the
 * engine gives it a store of its own (chains of `{"99":{"99":…}}` took 28
 * times their size, 2.3 times an estimate without it).
 */
const INDEXED_OBJECT_BYTES = 200;
/**
 * The deepest nesting parsed: the engine keeps the nesting of a parse off the
 * heap (9 MB of `[[[…]]]` took 576 MB of memory for 224 MiB of heap), and no
 * real JSON nests this deep.
 */
export const MAX_JSON_DEPTH = 10_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;
const LETTER_U = 0x75;
const DIGIT_ZERO = 0x30;
const COLON = 0x3a;

/** An eighth of the engine's heap limit for this process. */
const HEAP_SHARE = Math.floor(v8HeapLimit() / 8);

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the output `bytes` of the call of `fn` as UTF-8 JSON, for a plugin
 * whose memories may hold `maxMemoryPages` pages.
 *
 * @example
 * ```ts ignore
 * parseJsonOutput("handle", new TextEncoder().encode('{"ok":true}'), 256); // { ok: true }
 * ```
 *
 * @throws {ResourceLimitError} If it would take more heap than the budget:
 *   `limit` is `"maxMemoryPages"` when that limit set it, else
 *   `"MAX_JSON_HEAP_SHARE"` (an eighth of the engine's heap limit).
 * @throws {TypeMismatchError} If it is not UTF-8 JSON.
 */
export function parseJsonOutput(fn: string, bytes: Uint8Array, maxMemoryPages: number): unknown {
  const byMemory = JSON_HEAP_PER_MEMORY_BYTE * maxMemoryPages * 65536;
  const budget = Math.max(MIN_JSON_HEAP_BYTES, Math.min(byMemory, HEAP_SHARE));
  // Shorter, it cannot nest too deep, and takes little whatever its shape.
  const estimate = bytes.length <= MAX_JSON_DEPTH ? 0 : estimateHeap(bytes, budget);
  if (estimate === DEEP) {
    throw new ResourceLimitError(
      `"${fn}" returned JSON nested more than ${MAX_JSON_DEPTH} deep; take it with callBytes`,
      { limit: "MAX_JSON_DEPTH" },
    );
  }
  if (estimate > budget) {
    // Raising maxMemoryPages helps only while the memory limit (or the floor below it) is
    // what set the budget.
    const share = byMemory > HEAP_SHARE;
    const floor = `${MIN_JSON_HEAP_BYTES / 1024 / 1024} MiB`;
    throw new ResourceLimitError(
      `"${fn}" returned ${bytes.length} bytes of JSON whose parse would take more than ${
        Math.round(budget / 1024 / 1024)
      } MiB of host memory (so many arrays and objects; ${
        share
          ? "an eighth of the engine's heap limit"
          : byMemory < MIN_JSON_HEAP_BYTES
          ? `${floor}, the least any plugin's JSON may take, more than ${JSON_HEAP_PER_MEMORY_BYTE} times what maxMemoryPages lets the plugin hold`
          : `${JSON_HEAP_PER_MEMORY_BYTE} times what maxMemoryPages lets the plugin hold`
      }); take it with callBytes`,
      { limit: share ? "MAX_JSON_HEAP_SHARE" : "maxMemoryPages" },
    );
  }
  try {
    return JSON.parse(utf8Decoder.decode(bytes));
  } catch (cause) {
    throw new TypeMismatchError(`"${fn}" returned ${bytes.length} bytes that are not UTF-8 JSON`, {
      cause,
    });
  }
}

/** What {@linkcode estimateHeap} answers for text nested deeper than {@linkcode MAX_JSON_DEPTH}. */
const DEEP = Infinity;

/**
 * The heap a parse of `bytes` would take, estimated from its arrays, objects,
 * separators and keys outside strings (an array or object that never closes
 * counts whole); it stops counting once past the bound, and answers
 * {@linkcode DEEP} for text nested too deep.
 */
function estimateHeap(bytes: Uint8Array, budget: number): number {
  let containers = 0;
  let separators = 0;
  let keys = 0;
  let depth = 0;
  let inString = false;
  // Whether the last string was digits only (a key that is an array index), and which open
  // objects, by depth, have such a key already.
  let digits = false;
  let indexKey = false;
  let indexedObjects = 0;
  const indexed = new Uint8Array(MAX_JSON_DEPTH + 1);
  // Whether a character is beyond Latin-1 (a lead byte from 0xc4): the decoded text is then
  // two bytes a character.
  let wide = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte >= 0xc4) wide = true;
      if (byte === BACKSLASH) {
        // An escape may stand for a digit (`"9\u0039"` is the index 99): it leaves the key
        // counted as one, which overcharges only keys made of escapes.
        i += bytes[i + 1] === LETTER_U ? 5 : 1;
      } else if (byte === QUOTE) {
        inString = false;
        indexKey = digits;
      } else if (byte < 0x30 || byte > 0x39) {
        digits = false;
      }
    } else if (byte === QUOTE) {
      inString = true;
      // "" is no index, nor a number with a leading zero ("01").
      const first = bytes[i + 1];
      digits = first !== QUOTE && !(first === DIGIT_ZERO && bytes[i + 2] !== QUOTE);
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > MAX_JSON_DEPTH) return DEEP;
      indexed[depth] = 0;
      // Checked every so often: the scan ends as soon as the answer is known.
      if (
        (++containers & 0xffff) === 0 &&
        estimate(bytes.length, containers, separators, keys) > budget
      ) {
        break;
      }
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    } else if (byte === COMMA) {
      separators++;
    } else if (byte === COLON) {
      keys++;
      if (indexKey && indexed[depth] === 0) {
        indexed[depth] = 1;
        indexedObjects++;
      }
    }
  }
  return estimate(bytes.length, containers, separators, keys) +
    indexedObjects * INDEXED_OBJECT_BYTES + (wide ? bytes.length : 0);
}

/**
 * The heap of a parse: the decoded text (held while it runs, at least a byte
 * a character), the strings made of it, and its structure.
 */
function estimate(length: number, containers: number, separators: number, keys: number): number {
  return 2 * length + containers * CONTAINER_BYTES + separators * ELEMENT_BYTES +
    keys * KEY_BYTES;
}

/** The engine's heap limit, or 4 GiB where it cannot be read. */
function v8HeapLimit(): number {
  try {
    const limit = getHeapStatistics().heap_size_limit;
    return typeof limit === "number" && limit > 0 ? limit : 4 * 1024 ** 3;
  } catch {
    return 4 * 1024 ** 3;
  }
}

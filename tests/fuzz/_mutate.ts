/**
 * Mutations of WebAssembly binaries and text for the fuzzers: byte-level
 * edits that mostly keep a module parseable, structural edits of whole
 * sections, and token-level edits of text that mostly keep it well-formed.
 * Every mutation draws from the `next` random source it is given, so a case
 * is reproducible from the seed.
 *
 * @module
 */

/** A source of random floats in [0, 1), e.g. `random(seed)` of `tests/instrument/_random_program.ts`. */
export type Next = () => number;

/** A random element of `list`. */
export function pick<T>(list: readonly T[], next: Next): T {
  return list[Math.floor(next() * list.length)]!;
}

/** A random integer in `[0, bound)`. */
export function below(bound: number, next: Next): number {
  return Math.floor(next() * bound);
}

/** Length of the module header (`\0asm` and the version). */
const HEADER_LENGTH = 8;

/** Applies one to three random byte-level mutations past the header. */
export function mutateBytes(bytes: Uint8Array, next: Next): Uint8Array {
  const out = Array.from(bytes);
  const rounds = 1 + below(3, next);
  for (let r = 0; r < rounds && out.length > HEADER_LENGTH; r++) {
    const at = HEADER_LENGTH + below(out.length - HEADER_LENGTH, next);
    const roll = next();
    if (roll < 0.3) out[at] = below(256, next);
    else if (roll < 0.6) out[at] = out[at]! ^ (1 << below(8, next));
    else if (roll < 0.7) out.splice(at, 0, below(256, next));
    else if (roll < 0.78) out.splice(at, 1 + below(4, next));
    else if (roll < 0.84) out.splice(at, 0, 0x80, 0x80, 0x80, 0x80, 0x80); // oversized LEB128
    else if (roll < 0.9) out[at] = out[at]! | 0x80; // a LEB128 that runs on
    else if (roll < 0.95) out.splice(at, 0, ...out.slice(at, at + 1 + below(16, next)));
    else out.length = at;
  }
  return new Uint8Array(out);
}

/** One section of a binary module: its id and its payload with the size prefix. */
interface Section {
  readonly id: number;
  readonly bytes: Uint8Array;
}

/** Splits a module into its sections, or returns `undefined` when it does not parse. */
function sections(bytes: Uint8Array): Section[] | undefined {
  const found: Section[] = [];
  let at = HEADER_LENGTH;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++]!;
    let size = 0;
    for (let shift = 0;; shift += 7) {
      if (at >= bytes.length || shift > 28) return undefined;
      const byte = bytes[at++]!;
      size += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
    }
    at += size;
    if (at > bytes.length) return undefined;
    found.push({ id, bytes: bytes.subarray(start, at) });
  }
  return found;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The module with its sections moved, doubled, dropped or taken from `donor`. */
function mutateSections(bytes: Uint8Array, donor: Uint8Array, next: Next): Uint8Array {
  const list = sections(bytes);
  if (list === undefined || list.length === 0) return mutateBytes(bytes, next);
  const header = bytes.subarray(0, HEADER_LENGTH);
  const roll = next();
  const at = below(list.length, next);
  if (roll < 0.3) {
    // Two sections swap places, which breaks the order the spec requires.
    const other = below(list.length, next);
    [list[at], list[other]] = [list[other]!, list[at]!];
  } else if (roll < 0.5) {
    list.splice(at, 0, list[at]!);
  } else if (roll < 0.7) {
    list.splice(at, 1);
  } else {
    // Crossover: a section of another module, in place of or next to one of this one's.
    const theirs = sections(donor);
    if (theirs !== undefined && theirs.length > 0) {
      list.splice(at, next() < 0.5 ? 1 : 0, pick(theirs, next));
    }
  }
  return concat([header, ...list.map((section) => section.bytes)]);
}

/** Random bytes, or a section with a random id and a size that may lie, after the module. */
function extend(bytes: Uint8Array, next: Next): Uint8Array {
  const tail = Array.from({ length: 1 + below(24, next) }, () => below(256, next));
  if (next() < 0.5) {
    // A section header: an id (custom, known or unknown) and a size, true or not.
    const size = next() < 0.5 ? tail.length : below(256, next);
    tail.unshift(pick([0, 1, 5, 6, 11, 12, 13, 14, 0x7f], next), size & 0x7f);
  }
  return concat([bytes, new Uint8Array(tail)]);
}

/** Flips one to eight bits anywhere, the header included. */
function flipBits(bytes: Uint8Array, next: Next): Uint8Array {
  const out = bytes.slice();
  if (out.length === 0) return out;
  const flips = 1 + below(8, next);
  for (let i = 0; i < flips; i++) {
    // Mostly past the header, so that the module still gets past the magic number.
    const at = next() < 0.05 ? below(out.length, next) : HEADER_LENGTH +
      below(Math.max(1, out.length - HEADER_LENGTH), next);
    if (at < out.length) out[at] = out[at]! ^ (1 << below(8, next));
  }
  return out;
}

/** How {@linkcode mutateModule} changed a module. */
export type ModuleMutation = "bytes" | "truncated" | "extended" | "bit-flipped" | "sections";

/**
 * Mutates a binary module with one strategy, picked at random: byte-level
 * edits ({@linkcode mutateBytes}), truncation (anywhere, the header
 * included), trailing bytes or a bogus section, bit flips, or section-level
 * edits (swapped, doubled, dropped, or crossed over from `donor`).
 */
export function mutateModule(
  bytes: Uint8Array,
  donor: Uint8Array,
  next: Next,
): { bytes: Uint8Array; mutation: ModuleMutation } {
  const roll = next();
  if (roll < 0.4) return { bytes: mutateBytes(bytes, next), mutation: "bytes" };
  if (roll < 0.5) {
    return { bytes: bytes.slice(0, below(bytes.length + 1, next)), mutation: "truncated" };
  }
  if (roll < 0.6) return { bytes: extend(bytes, next), mutation: "extended" };
  if (roll < 0.75) return { bytes: flipBits(bytes, next), mutation: "bit-flipped" };
  return { bytes: mutateSections(bytes, donor, next), mutation: "sections" };
}

/** Instructions that keep the text well-formed where an instruction stood. */
const INSTRUCTIONS = [
  "unreachable",
  "nop",
  "drop",
  "br 0",
  "br 1",
  "br_if 0",
  "return",
  "call 0",
  "call 1",
  "i32.const 0",
  "i32.const -1",
  "i64.const 9223372036854775807",
  "local.get 0",
  "local.tee 0",
  "memory.grow",
  "memory.size",
  "i32.load offset=65532",
  "i32.add",
  "i32.div_u",
  "i64.mul",
  "select",
  "global.get 0",
];

/** Anything at all, for mutations that break the syntax. */
const JUNK = [
  "(",
  ")",
  "end",
  "block",
  "loop",
  "if",
  "else",
  "0",
  "4294967296",
  "$fac",
  "(param i32)",
];

const NUMBERS = ["0", "1", "-1", "2", "65536", "2147483647", "4294967295", "100000"];

const INSTRUCTION_TOKEN =
  /^[a-z]+[0-9]*\.[a-z_0-9]+$|^(nop|drop|select|return|unreachable|br|br_if|call)$/;

/** Applies one or two token-level mutations to WebAssembly text, mostly keeping it well-formed. */
export function mutateText(text: string, next: Next): string {
  const tokens = text.split(/(\s+|[()])/).filter((t) => t.trim() !== "");
  const instructions: number[] = [];
  const numbers: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (INSTRUCTION_TOKEN.test(tokens[i]!)) instructions.push(i);
    else if (/^-?[0-9]+$/.test(tokens[i]!)) numbers.push(i);
  }
  const rounds = 1 + below(2, next);
  for (let r = 0; r < rounds; r++) {
    const roll = next();
    if (roll < 0.35 && instructions.length > 0) {
      tokens[pick(instructions, next)] = pick(INSTRUCTIONS, next);
    } else if (roll < 0.6 && instructions.length > 0) {
      const at = pick(instructions, next);
      tokens[at] = `${pick(INSTRUCTIONS, next)} ${tokens[at]}`;
    } else if (roll < 0.8 && numbers.length > 0) {
      tokens[pick(numbers, next)] = pick(NUMBERS, next);
    } else if (roll < 0.9) {
      tokens.splice(below(tokens.length, next), 1);
    } else if (roll < 0.97) {
      tokens.splice(below(tokens.length, next), 0, pick(JUNK, next));
    } else {
      tokens.length = Math.max(1, below(tokens.length, next));
    }
  }
  return tokens.join(" ").replaceAll("( ", "(").replaceAll(" )", ")");
}

/**
 * How deeply WAT text nests, checked before wabt parses it.
 *
 * wabt's parser recurses once per level of nesting on a 64 KiB stack that
 * nothing guards: past about 150 nested blocks it writes over its own heap,
 * then traps ("memory access out of bounds") or loops forever on the host's
 * thread (measured with npm:wabt 1.0.39: folded `(block` traps from 160
 * levels, flat `block`…`end` and folded `(if … (then` hang from 180, folded
 * expressions trap from 250). So text nesting deeper than
 * {@linkcode MAX_WAT_NESTING} levels is refused before wabt sees it.
 *
 * A level is an open parenthesis (folded instructions, fields, any
 * S-expression) or an open flat `block`, `loop`, `if`, `try` or
 * `try_table`, which `end` (or `delegate`) closes. Comments and strings do
 * not count, except the strings of a `(module quote "…")`, whose text wabt
 * parses as the module's: it is checked as if it stood there.
 *
 * @module
 */

/** The deepest nesting handed to wabt: below the shallowest depth measured to break it (160). */
export const MAX_WAT_NESTING = 128;

/** Where text nests too deeply: 1-based line and column of the opening token. */
export interface NestingPosition {
  readonly line: number;
  readonly column: number;
}

const FLAT_OPENERS = new Set(["block", "loop", "if", "try", "try_table"]);
const FLAT_CLOSERS = new Set(["end", "delegate"]);

/** Characters of a keyword or instruction name (`i32.add`, `try_table`). */
function isKeywordChar(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) ||
    code === 0x2e || code === 0x5f;
}

/**
 * Finds the first place where `text` nests deeper than `max` levels.
 *
 * @example Three levels
 * ```ts ignore
 * findDeepNesting("(module (func (block)))", 2); // { line: 1, column: 15 }
 * findDeepNesting("(module (func (block)))", 3); // null
 * ```
 *
 * @param text WAT source.
 * @param max The deepest nesting allowed.
 * @returns The position of the opening that goes past `max`, or `null`.
 */
export function findDeepNesting(text: string, max: number): NestingPosition | null {
  let parens = 0;
  let flat = 0;
  /** Whether the last token was `(`: the keyword after it is a folded form's head. */
  let afterParen = false;
  let i = 0;
  while (i < text.length) {
    const next = skipSpace(text, i);
    if (next !== i) {
      // Whitespace and comments keep `(` … `block` a folded head.
      i = next;
      continue;
    }
    const code = text.charCodeAt(i);
    if (code === 0x28 /* ( */) {
      parens++;
      if (parens + flat > max) return positionOf(text, i);
      afterParen = true;
      i++;
      continue;
    }
    if (code === 0x29 /* ) */) {
      if (parens > 0) parens--;
      i++;
    } else if (code === 0x22 /* " */) {
      i = skipString(text, i);
    } else if (isIdChar(text, i)) {
      const start = i;
      while (i < text.length && isIdChar(text, i)) i++;
      if (afterParen && text.startsWith("module", start) && i - start === 6) {
        // `(module quote "…")`: wabt parses the strings' text as the module's fields.
        const quoted = quotedText(text, i);
        if (quoted !== null) {
          if (findDeepNesting(quoted.text, max - parens - flat) !== null) {
            return positionOf(text, quoted.start);
          }
          i = quoted.end;
        }
      } else if (!afterParen && isKeywordChar(code)) {
        const word = text.slice(start, i);
        if (FLAT_OPENERS.has(word)) {
          flat++;
          if (parens + flat > max) return positionOf(text, start);
        } else if (FLAT_CLOSERS.has(word) && flat > 0) {
          flat--;
        }
      }
    } else {
      i++;
    }
    afterParen = false;
  }
  return null;
}

/** Other characters identifiers (`$a!b`) may hold, so that they are skipped whole. */
function isIdChar(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  return code > 0x20 && code < 0x7f && code !== 0x28 && code !== 0x29 && code !== 0x22 &&
    code !== 0x3b;
}

/** The `quote` strings after `(module` (ending at `from`), decoded, or `null` when there are none. */
function quotedText(
  text: string,
  from: number,
): { text: string; start: number; end: number } | null {
  let i = skipSpace(text, from);
  if (text.charCodeAt(i) === 0x24 /* $ */) {
    while (i < text.length && isIdChar(text, i)) i++;
    i = skipSpace(text, i);
  }
  if (!text.startsWith("quote", i) || isKeywordChar(text.charCodeAt(i + 5))) return null;
  i = skipSpace(text, i + 5);
  const start = i;
  let decoded = "";
  while (text.charCodeAt(i) === 0x22 /* " */) {
    const end = skipString(text, i);
    decoded += decodeString(text.slice(i + 1, end - 1));
    i = skipSpace(text, end);
  }
  return { text: decoded, start, end: i };
}

/**
 * Skips whitespace, comments and annotations from `i`: wabt drops an
 * annotation `(@…)` before its parser sees a token, so its words are no
 * instructions and it does not part `(module` from `quote`.
 */
function skipSpace(text: string, i: number): number {
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) i++;
    else if (code === 0x28 && text.charCodeAt(i + 1) === 0x3b) i = skipBlockComment(text, i);
    else if (code === 0x28 && text.charCodeAt(i + 1) === 0x40) i = skipAnnotation(text, i);
    else if (code === 0x3b && text.charCodeAt(i + 1) === 0x3b) i = skipLineComment(text, i);
    else break;
  }
  return i;
}

const ESCAPES: Record<string, string> = {
  t: "\t",
  n: "\n",
  r: "\r",
  '"': '"',
  "'": "'",
  "\\": "\\",
};

/** A WAT string's content with its escapes decoded (`\hh` bytes as Latin-1 characters). */
function decodeString(body: string): string {
  return body.replace(
    /\\(u\{[0-9a-fA-F_]+\}|[0-9a-fA-F]{2}|.)/g,
    (_, escape: string) => {
      if (escape.startsWith("u{")) {
        const code = Number.parseInt(escape.slice(2, -1).replaceAll("_", ""), 16);
        return code <= 0x10ffff ? String.fromCodePoint(code) : "";
      }
      if (escape.length === 2) return String.fromCharCode(Number.parseInt(escape, 16));
      return ESCAPES[escape] ?? escape;
    },
  );
}

/** The index after the annotation opening at `start`: its parentheses balanced, strings and comments skipped. */
function skipAnnotation(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x22 /* " */) {
      i = skipString(text, i);
    } else if (code === 0x28 && text.charCodeAt(i + 1) === 0x3b) {
      i = skipBlockComment(text, i);
    } else if (code === 0x3b && text.charCodeAt(i + 1) === 0x3b) {
      i = skipLineComment(text, i);
    } else {
      if (code === 0x28) depth++;
      else if (code === 0x29 && --depth === 0) return i + 1;
      i++;
    }
  }
  return i;
}

/**
 * The index of the newline ending the line comment at `start`: LF, CR or
 * CRLF (the spec's newline; wabt 1.0.39 reads so), or the text's end.
 */
function skipLineComment(text: string, start: number): number {
  let i = start + 2;
  while (i < text.length && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x0d) i++;
  return i;
}

/** The index after the block comment opening at `start` (they nest). */
function skipBlockComment(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    if (text.charCodeAt(i) === 0x28 && text.charCodeAt(i + 1) === 0x3b) {
      depth++;
      i += 2;
    } else if (text.charCodeAt(i) === 0x3b && text.charCodeAt(i + 1) === 0x29) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return i;
}

/** The index after the string opening at `start`. */
function skipString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x5c /* \ */) i += 2;
    else if (code === 0x22) return i + 1;
    else i++;
  }
  return i;
}

function positionOf(text: string, index: number): NestingPosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < index; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: index - lineStart + 1 };
}

/**
 * The CLI escapes what the library's messages escape: it uses only the
 * public API, so it keeps its own copy of the set (`HIDDEN` in `cli.ts`),
 * checked here against `isHiddenCode` over every code point.
 */
import assert from "node:assert/strict";
import { isHiddenCode } from "../../src/common/mod.ts";

Deno.test("cli.ts escapes exactly the controls and hidden characters the library does", {
  permissions: { read: true },
}, async () => {
  const source = await Deno.readTextFile(new URL("../../cli.ts", import.meta.url));
  const literal = /const HIDDEN =\s*(?:\/\/[^\n]*\n\s*)?\/(\[[^\n]*\])\/gu;/.exec(source);
  assert.ok(literal !== null, "cli.ts has no HIDDEN regex literal");
  const hidden = new RegExp(`^${literal[1]}$`, "u");
  const differ: string[] = [];
  for (let code = 0; code <= 0x10ffff; code++) {
    if (code >= 0xd800 && code <= 0xdfff) continue; // lone surrogates: the CLI escapes them too
    const library = code < 0x20 || code === 0x7f || (code >= 0x80 && isHiddenCode(code));
    if (hidden.test(String.fromCodePoint(code)) !== library) differ.push(code.toString(16));
  }
  assert.deepEqual(differ, []);
});

import assert from "node:assert/strict";
import { findDeepNesting, MAX_WAT_NESTING } from "../../src/compile/_wat_nesting.ts";

const DENO = Deno.execPath();

/** Runs `fixtures/wat_compiler.ts` on `texts` in a process of its own, killed after 60 s. */
async function compileEach(...texts: string[]): Promise<unknown[]> {
  const output = await new Deno.Command(DENO, {
    args: ["run", "--no-check", "tests/hostile/fixtures/wat_compiler.ts", ...texts],
    cwd: new URL("../..", import.meta.url),
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.equal(new TextDecoder().decode(output.stderr), "", "nothing reaches the console");
  return new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => JSON.parse(line));
}

/** What the fixture prints for a text refused at `line` and `column` for its nesting. */
function tooDeep(name: string, line: number, column: number): Record<string, unknown> {
  const message = `Cannot compile WAT "${name}" at line ${line}, column ${column}: it nests ` +
    `deeper than ${MAX_WAT_NESTING} levels, more than the WAT compiler (wabt) can parse`;
  return { name, error: { kind: "compilation", message, line, column } };
}

Deno.test(
  "WAT nested deeper than the WAT compiler can parse is a CompilationError, and the next compile works",
  {
    permissions: { run: [DENO], read: true },
  },
  async () => {
    // wabt's parser overflows its 64 KiB stack past about 150 levels: before the check,
    // 1000 folded blocks trapped inside it and left it corrupt, and 300 flat ones hung.
    const results = await compileEach(
      "foldedBlocks",
      "ok",
      "flatBlocks",
      "deepExpression",
      "quotedFlatBlocks",
      "ok",
    );
    assert.deepEqual(results, [
      tooDeep("foldedBlocks", 1, 897),
      { name: "ok", result: 7 },
      tooDeep("flatBlocks", MAX_WAT_NESTING, 1),
      tooDeep("deepExpression", 2, 2885),
      tooDeep("quotedFlatBlocks", 1, 15),
      { name: "ok", result: 7 },
    ]);
  },
);

Deno.test("A compile that waited for the WAT compiler while another broke it gets a fresh one", {
  permissions: { run: [DENO], read: true },
}, async () => {
  const [outcomes] = await compileEach("--concurrent-with-a-crash");
  assert.deepEqual(outcomes, [
    'Cannot compile WAT "crash": the WAT compiler (wabt) failed: memory access out of bounds',
    34,
  ]);
});

Deno.test("WAT nested as deeply as allowed compiles", {
  permissions: { run: [DENO], read: true },
}, async () => {
  assert.deepEqual(await compileEach("atTheLimit"), [{ name: "atTheLimit", result: null }]);
});

Deno.test("findDeepNesting counts parentheses and flat blocks, not comments or strings", () => {
  assert.equal(findDeepNesting("(module (func (block)))", 3), null);
  assert.deepEqual(findDeepNesting("(module (func (block)))", 2), { line: 1, column: 15 });
  // A flat block nests like a folded one; `end` and `delegate` close it.
  const flat = "(module (func\n  block\n    loop\n    end\n  end\n  try\n  delegate 0))";
  assert.equal(findDeepNesting(flat, 4), null);
  assert.deepEqual(findDeepNesting(flat, 3), { line: 3, column: 5 });
  // A folded form's head is one level, not two.
  assert.equal(findDeepNesting("(block (loop (if (then))))", 4), null);
  // The strings of a quoted module nest as its text would, escapes decoded; others do not.
  assert.deepEqual(findDeepNesting('(module quote "(func" "(block \\28)))")', 3), {
    line: 1,
    column: 15,
  });
  assert.equal(findDeepNesting('(module quote "(data \\"((((\\")")', 2), null);
  // Labels, comments and strings do not nest.
  assert.equal(
    findDeepNesting('(func $block $loop ;; ((((\n (; (( (; (( ;) ;) "((\\"((")', 1),
    null,
  );
  // An annotation's words are no instructions: its `end` closed a flat block, and 300
  // `block (@x end)` (which wabt reads as 300 open blocks, and hangs on) passed as 1 deep.
  assert.notEqual(findDeepNesting("(func " + "block (@x end) ".repeat(300) + ")", 128), null);
  // A line comment ends at CR too: the blocks after a `;;` ended by a bare CR were not counted.
  assert.notEqual(findDeepNesting("(func ;; note\r" + "block ".repeat(300) + ")", 128), null);
  assert.equal(findDeepNesting("(func ;; note\r block end)", 3), null);
  // wabt drops annotations before it parses: one between `(module` and `quote`, or between the
  // quoted strings, hid the quoted text from the scan (wabt hung on 170 `if (then`).
  const deep = '"' + "(if (then ".repeat(170) + ")".repeat(340) + '"';
  for (const text of [`(module (@x) quote ${deep})`, `(module quote "(func" (@x) ${deep} ")")`]) {
    assert.notEqual(findDeepNesting(text, 128), null, text.slice(0, 30));
  }
});

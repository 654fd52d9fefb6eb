/**
 * Runs every TypeScript code block of the README and of the public modules'
 * JSDoc, and checks that each `console.log(…); // expected` prints exactly
 * the expected text.
 */

import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const moduleUrl = new URL("mod.ts", root).href;
const testingUrl = new URL("testing.ts", root).href;

interface CodeBlock {
  readonly source: string;
  readonly line: number;
  readonly code: string;
}

function extractBlocks(source: string, text: string, prefix: RegExp): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i]!.replace(prefix, "").match(/^```(ts|typescript)\b(.*)$/);
    if (open === null || open[2]!.includes("ignore")) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j]!.replace(prefix, "");
      if (line.startsWith("```")) break;
      body.push(line);
    }
    blocks.push({ source, line: i + 1, code: body.join("\n") });
    i = j;
  }
  return blocks;
}

async function publicModules(): Promise<string[]> {
  const files = ["mod.ts", "testing.ts"];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(new URL(dir, root))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && entry.name !== "instrument") await walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.startsWith("_")) files.push(path);
    }
  }
  await walk("src");
  return files.sort();
}

function expectations(code: string): string[] {
  const expected: string[] = [];
  for (const line of code.split("\n")) {
    const match = line.match(/console\.log\(.*\);\s*\/\/ (.+)$/);
    if (match !== null) expected.push(match[1]!.trim());
  }
  return expected;
}

function format(args: unknown[]): string {
  return args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" ");
}

/** Imports a block as a module, collecting what it logs. */
async function run(block: CodeBlock): Promise<string[]> {
  const code = block.code
    .replaceAll('"@wasmplug/wasmplug/testing"', JSON.stringify(testingUrl))
    .replaceAll('"@wasmplug/wasmplug"', JSON.stringify(moduleUrl));
  const printed: string[] = [];
  const original = console.log;
  const originalTest = Deno.test;
  // An example that is a test registers it: run its body here instead.
  const tests: ((t: Deno.TestContext) => unknown)[] = [];
  const register = (_name: string, fn: (t: Deno.TestContext) => unknown): void => {
    tests.push(fn);
  };
  Object.defineProperty(Deno, "test", { value: register, configurable: true, writable: true });
  console.log = (...args: unknown[]) => printed.push(format(args));
  try {
    const bytes = new TextEncoder().encode(code);
    const base64 = btoa(String.fromCharCode(...bytes));
    await import(`data:application/typescript;base64,${base64}`);
    for (const fn of tests) await fn({} as Deno.TestContext);
  } finally {
    console.log = original;
    Object.defineProperty(Deno, "test", {
      value: originalTest,
      configurable: true,
      writable: true,
    });
  }
  return printed;
}

async function collectBlocks(): Promise<CodeBlock[]> {
  const blocks = extractBlocks(
    "README.md",
    await Deno.readTextFile(new URL("README.md", root)),
    /^/,
  );
  for (const file of await publicModules()) {
    const text = await Deno.readTextFile(new URL(file, root));
    blocks.push(...extractBlocks(file, text, /^\s*\* ?/));
  }
  return blocks;
}

Deno.test({
  name: "Documentation examples run and print what their comments say",
  permissions: { read: true, net: ["127.0.0.1"] },
  async fn(t) {
    const blocks = await collectBlocks();
    assert.ok(blocks.length > 50, `expected many examples, found ${blocks.length}`);
    for (const block of blocks) {
      await t.step(`${block.source}:${block.line}`, async () => {
        const printed = await run(block);
        let cursor = 0;
        for (const expected of expectations(block.code)) {
          const index = printed.indexOf(expected, cursor);
          assert.ok(
            index >= 0,
            `${block.source}:${block.line} should print ${JSON.stringify(expected)}; it printed ${
              JSON.stringify(printed.slice(cursor))
            }`,
          );
          cursor = index + 1;
        }
      });
    }
  },
});

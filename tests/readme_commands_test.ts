/**
 * The README's shell commands run as written (issue #15: "the README's own
 * commands run as tests"). Every command line of a `sh` block runs from the
 * repository's root through bash, with `npx -y deno@2` meaning this Deno;
 * it must exit 0, or with the exit code a `# exit N` comment on its line
 * names. A command that cannot run here (the suite itself, benchmarks,
 * toolchain builds, servers) is skipped only by a rule below that says why;
 * a new README command nobody thought about runs.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { RUN_SLOW, SLOW } from "./_helpers.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const readme = await Deno.readTextFile(`${root}README.md`);

/** Commands that do not run here, each with its reason. */
const NOT_RUN: readonly { pattern: RegExp; reason: string }[] = [
  { pattern: /\btask test\b|\bdeno test\b.*tests\/$/, reason: "it is this suite" },
  { pattern: /\btask (bench|soak|fuzz|conformance|test:slow)\b/, reason: "minutes long" },
  { pattern: /\btask (build:|screenshot)/, reason: "needs the plugin toolchains or Chromium" },
  { pattern: /\bserve\b/, reason: "a server that runs until stopped" },
  {
    pattern: /^(clang|rustc|wasm-ld)\b|\/asc\b/,
    reason: "guest toolchains: tests/guest runs their builds",
  },
  {
    pattern: /\bOTEL_DENO=true\b.*my_host\.ts/,
    reason: "the reader's own host script and collector",
  },
  { pattern: /\bdeno (add|install)\b|jsr:/, reason: "JSR is not reachable here" },
];

function isNotRun(command: string): boolean {
  return NOT_RUN.some(({ pattern }) => pattern.test(command));
}

/** A block of commands and the line of the README where it starts. */
interface Block {
  readonly line: number;
  readonly commands: readonly string[];
}

function shellBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i]!)) continue;
    const commands: string[] = [];
    const start = i + 1;
    let pending = "";
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) {
      const line = lines[i]!.trim();
      // A line ending in a backslash goes on on the next one.
      if (line.endsWith("\\")) {
        pending += `${line.slice(0, -1)} `;
        continue;
      }
      const command = pending + line;
      pending = "";
      if (command !== "" && !command.startsWith("#")) commands.push(command);
    }
    blocks.push({ line: start, commands });
  }
  return blocks;
}

/** The `# exit N` a command's comment promises, else 0. */
function expectedExit(command: string): number {
  const match = command.match(/#\s*exit (\d+)\s*$/);
  return match === null ? 0 : Number(match[1]);
}

/** A directory whose `deno` is this Deno, for the commands' PATH. */
const denoDir = dirname(Deno.execPath());

/** Drops a trailing `# comment` (one outside quotes). */
function withoutComment(command: string): string {
  for (const match of command.matchAll(/\s+#/g)) {
    const before = command.slice(0, match.index);
    const quotes = (before.match(/'/g)?.length ?? 0) + (before.match(/"/g)?.length ?? 0);
    if (quotes % 2 === 0) return before;
  }
  return command;
}

async function runBlock(commands: readonly string[], cwd: string): Promise<string[]> {
  const failures: string[] = [];
  // One bash per block, lines in its own shell, so `cd` and files made by
  // earlier lines carry on as they would for a reader typing them.
  const script = commands.map((command, index) => {
    if (isNotRun(command)) return `: skipped ${index}`;
    const line = withoutComment(command).replaceAll("npx -y deno@2", "deno");
    return `{ ${line}\n} > "$WASMPLUG_OUT/${index}" 2>&1 < /dev/null; echo $? > "$WASMPLUG_OUT/${index}.rc"`;
  }).join("\n");
  const out = await Deno.makeTempDir({ prefix: "wasmplug-readme-out-" });
  try {
    const { code, stderr } = await new Deno.Command("bash", {
      args: ["-c", script],
      cwd,
      env: { PATH: `${denoDir}:${Deno.env.get("PATH") ?? ""}`, WASMPLUG_OUT: out, NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, `the block's script ran: ${new TextDecoder().decode(stderr)}`);
    for (const [index, command] of commands.entries()) {
      if (isNotRun(command)) continue;
      const rc = Number(await Deno.readTextFile(`${out}/${index}.rc`));
      if (rc !== expectedExit(command)) {
        const output = await Deno.readTextFile(`${out}/${index}`);
        failures.push(`${command}\n  exit ${rc}, output:\n${output.slice(-2000)}`);
      }
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  return failures;
}

/**
 * A scratch copy of the checkout (without `.git`), so that commands that make
 * folders or files never touch the repository itself.
 */
async function scratchCheckout(): Promise<string> {
  const copy = await Deno.makeTempDir({ prefix: "wasmplug-readme-" });
  const { code } = await new Deno.Command("bash", {
    args: ["-c", 'tar -C "$0" --exclude=.git -cf - . | tar -C "$1" -xf -', root, copy],
    stdout: "null",
  }).output();
  assert.equal(code, 0, "the checkout was copied");
  return `${copy}/`;
}

Deno.test(`${SLOW}README: every shell command runs as written`, {
  ignore: !RUN_SLOW,
}, async (t) => {
  const blocks = shellBlocks(readme);
  assert.ok(blocks.length >= 3, "the README has its set-up blocks");
  for (const block of blocks) {
    const runnable = block.commands.filter((command) => !isNotRun(command));
    await t.step({
      name: `README.md:${block.line} ${runnable[0] ?? "(nothing runnable here)"}`,
      ignore: runnable.length === 0,
      fn: async () => {
        const checkout = await scratchCheckout();
        try {
          const folder = block.commands.find((c) => /^mkdir /.test(c))?.split(/\s+/)[1];
          // A block that makes a folder beside the examples finds it made and
          // holding the README's test file, as the text before it says.
          const commands = folder === undefined
            ? block.commands
            : block.commands.map((c) => c.replace(/^mkdir (\S+)/, "mkdir -p $1"));
          if (folder !== undefined) await prepareFolder(`${checkout}${folder}`);
          const failures = await runBlock(commands, checkout);
          assert.deepEqual(failures, [], failures.join("\n"));
        } finally {
          await Deno.remove(checkout, { recursive: true });
        }
      },
    });
  }
});

/** Puts the README's "Testing your plugins" example where its set-up block expects it. */
async function prepareFolder(path: string): Promise<void> {
  const section = readme.slice(readme.indexOf("## Testing your plugins"));
  const test = section.match(/```ts\n([\s\S]*?)```/)?.[1];
  assert.ok(test !== undefined, "the README shows a test of a plugin");
  await Deno.mkdir(path, { recursive: true });
  await Deno.writeTextFile(`${path}/my_plugin_test.ts`, test);
}

import assert from "node:assert/strict";
import { DEFAULT_LIMITS } from "../../mod.ts";
import { cli, shown } from "./_cli.ts";

const COMMANDS = ["inspect", "call", "run", "bench", "help"];

Deno.test("wasmplug --help lists every command, the options and the exit codes", async () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const output = await cli(args);
    assert.equal(output.code, 0, shown(output));
    assert.equal(output.stderr, "");
    for (const command of COMMANDS) {
      assert.match(output.stdout, new RegExp(`^  wasmplug ${command} `, "m"), shown(output));
      assert.match(output.stdout, new RegExp(`^  ${command} +\\S`, "m"), shown(output));
    }
    assert.match(output.stdout, /Exit codes: 0 success \(run: the guest's exit code\), 1 plugin/);
  }
});

Deno.test("wasmplug <command> --help prints that command's usage with every default", async (t) => {
  await t.step("call --help shows each option of call with its default", async () => {
    const output = await cli(["call", "--help"]);
    assert.equal(output.code, 0, shown(output));
    assert.match(output.stdout, /^Usage: wasmplug call <file> <function> \[args…\] \[options\]\n/);
    for (
      const [option, value] of [
        ["--max-fuel <n|none>", DEFAULT_LIMITS.maxFuel],
        ["--timeout <ms>", DEFAULT_LIMITS.maxExecutionTimeMs],
        ["--max-memory-pages <n>", DEFAULT_LIMITS.maxMemoryPages],
        ["--max-call-depth <n>", DEFAULT_LIMITS.maxCallDepth],
        ["--max-table-elements <n>", DEFAULT_LIMITS.maxTableElements],
        ["--isolation <worker|inline>", "worker"],
        ["--cap <name>", "none"],
      ] as const
    ) {
      const line = new RegExp(
        `^  ${option.replace(/[|]/g, "\\|")} [^]*?\\(default: ${value}\\)`,
        "m",
      );
      assert.match(output.stdout, line, `${option} shows its default ${value}`);
    }
    for (
      const option of ["--input <text>", "--input-file <path>", "--json", "--config <key=value>"]
    ) {
      assert.match(output.stdout, new RegExp(`^  ${option} `, "m"), option);
    }
    assert.doesNotMatch(output.stdout, /^ {2}--(dir|env|iterations) /m, "only the options of call");
  });

  await t.step("help is the same as --help, for each command", async () => {
    for (const command of COMMANDS) {
      const viaFlag = await cli([command, "--help"]);
      const viaHelp = await cli(["help", command]);
      assert.equal(viaFlag.code, 0, shown(viaFlag));
      assert.equal(viaHelp.code, 0, shown(viaHelp));
      assert.equal(viaHelp.stdout, viaFlag.stdout);
      assert.match(viaFlag.stdout, new RegExp(`^Usage: wasmplug ${command} `));
    }
  });

  await t.step("--help wins over the rest of the command line", async () => {
    const output = await cli(["run", "missing.wasm", "--bogus", "-h"]);
    assert.equal(output.code, 0, shown(output));
    assert.match(output.stdout, /^Usage: wasmplug run /);
  });

  await t.step("after --, --help is an argument of the guest", async () => {
    const output = await cli(["run", "tests/fixtures/nope.wasm", "--", "--help"]);
    assert.equal(output.code, 1, shown(output));
    assert.equal(output.stdout, "");
  });
});

Deno.test("wasmplug: bad usage exits 2 with a one-line error and the usage on stderr", async (t) => {
  for (
    const [what, args, error] of [
      ["no command", [], /^error: no command given\n[^]*Commands:/],
      ["an unknown command", ["frobnicate"], /^error: unknown command "frobnicate"\n[^]*Usage:/],
      [
        "help of an unknown command",
        ["help", "frobnicate"],
        /^error: unknown command "frobnicate"\n/,
      ],
      ["help of two commands", ["help", "call", "run"], /^error: help takes at most one command\n/],
      ["an unknown global option", ["--bogus"], /^error: unknown option "--bogus"\n/],
      [
        "an unknown option of a command, with that command's usage",
        ["inspect", "x.wat", "--bogus"],
        /^error: unknown option "--bogus" for inspect\nUsage: wasmplug inspect [^]*wasmplug help inspect/,
      ],
      [
        "a flag given a value",
        ["inspect", "x.wat", "--json=yes"],
        /^error: --json takes no value\n/,
      ],
      [
        "an option without its value",
        ["call", "x.wat", "f", "--timeout"],
        /^error: --timeout needs a value <ms>/,
      ],
      [
        "an option followed by another option",
        ["call", "x.wat", "f", "--cap", "--json"],
        /^error: --cap needs a value <name>/,
      ],
      ["inspect without a file", ["inspect"], /^error: inspect needs a file\n/],
      [
        "call without a function",
        ["call", "x.wat"],
        /^error: call needs a file and a function name\n/,
      ],
      ["run without a file", ["run"], /^error: run needs a file\n/],
      ["bench without a function", ["bench", "x.wat"], /^error: bench needs a file and a function/],
    ] as const
  ) {
    await t.step(what, async () => {
      const output = await cli(args);
      assert.equal(output.code, 2, shown(output));
      assert.equal(output.stdout, "");
      assert.match(output.stderr, error, shown(output));
    });
  }
});

Deno.test("wasmplug --version prints the package's version", async () => {
  const { version } = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  for (const flag of ["--version", "-V"]) {
    const output = await cli([flag]);
    assert.equal(output.code, 0);
    assert.equal(output.stdout, `wasmplug ${version}\n`);
  }
});

import assert from "node:assert/strict";
import { denoOptions } from "../../src/worker/_worker_options.ts";
import { DENO, runDeno } from "../_helpers.ts";

const FLAG = "--unstable-worker-options";

Deno.test("denoOptions() keeps the options Deno itself received", {
  permissions: "none",
}, async (t) => {
  const cases: [string, string[], string[]][] = [
    ["before the script", ["deno", "run", FLAG, "-A", "main.ts", "--x"], [FLAG, "-A"]],
    ["after the script, they are the script's", ["deno", "run", "main.ts", FLAG], []],
    ["the shorthand without run", ["deno", "main.ts", FLAG], []],
    ["the shorthand with options first", ["deno", FLAG, "main.ts"], [FLAG]],
    ["an option's own value", ["deno", "run", "--config", "main.ts", FLAG, "b.ts"], [
      "--config",
      "main.ts",
      FLAG,
    ]],
    ["deno test takes many files", ["deno", "test", "a_test.ts", FLAG, "b/"], [FLAG]],
    ["deno test passes what follows -- on", ["deno", "test", "a_test.ts", "--", FLAG], []],
  ];
  for (const [what, args, expected] of cases) {
    await t.step(what, () => assert.deepEqual(denoOptions(args), expected));
  }
});

Deno.test("Worker isolation without --unstable-worker-options fails with a clear error", {
  permissions: { run: [DENO] },
}, async (t) => {
  // Without the repository's deno.json, which enables worker options; its imports still apply.
  const script = [
    "--no-config",
    "--import-map=deno.json",
    "tests/worker/fixtures/worker_isolation.ts",
  ];
  // Deno 2.9 lets a program read its own command line only with --allow-all: with fewer
  // permissions the flag cannot be detected, and Deno ends the process at the first worker.
  const refused =
    /^TypeError: Cannot use isolation "worker": Deno needs the --unstable-worker-options flag/;

  await t.step("with the flag, worker plugins run", async () => {
    const { code, stdout, stderr } = await runDeno(["run", FLAG, "-A", ...script]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "42");
  });

  const without: [string, string[]][] = [
    ["without it", ["run", "-A", ...script]],
    // Deno 2 dropped the catch-all flag: it no longer enables worker options.
    ["with --unstable", ["run", "--unstable", "-A", ...script]],
    // After the script, the flag is the script's argument, not Deno's.
    ["with the flag after the script", ["run", "-A", ...script, FLAG]],
    // The repository's deno.json enables them, but Deno was told to use another config.
    ["with a --config that does not enable them", [
      "run",
      "-A",
      "--config=tests/worker/fixtures/plain_deno.json",
      "tests/worker/fixtures/worker_isolation.ts",
    ]],
  ];
  for (const [what, args] of without) {
    await t.step(what, async () => {
      // Deno itself would end the process with code 70 at the first worker.
      const { code, stdout, stderr } = await runDeno(args);
      assert.equal(code, 0, stderr);
      assert.match(stdout, refused);
    });
  }
});

import assert from "node:assert/strict";
import {
  denoOptions,
  type DetectionProbe,
  detectWorkerOptions,
  parseJsonc,
} from "../../src/worker/_worker_options.ts";
import { DENO, RUN_SLOW, runDeno, SLOW } from "../_helpers.ts";

const FLAG = "--unstable-worker-options";
const ENABLING = '{ "unstable": ["worker-options"] }';

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

Deno.test("parseJsonc() reads deno.jsonc: comments and trailing commas", {
  permissions: "none",
}, () => {
  const text = `{
    // "unstable": ["worker-options"],
    /* a block */ "unstable": ["kv",], "url": "http://x//y", "quote": "a\\"//b",
  }`;
  assert.deepEqual(parseJsonc(text), { unstable: ["kv"], url: "http://x//y", quote: 'a"//b' });
  assert.equal(parseJsonc("{ nope"), undefined);
});

/** A probe of a made-up process: `files` maps paths to text, `null` for a folder it cannot read. */
function probe(options: {
  args?: string[];
  files?: Record<string, string | null>;
  cwd?: string;
  mainModule?: string;
  standalone?: boolean;
}): DetectionProbe {
  const files = options.files ?? {};
  const unreadable = Object.entries(files).filter(([, text]) => text === null)
    .map(([dir]) => dir);
  return {
    commandLine: () => options.args,
    readText(path: string): string | null | undefined {
      if (unreadable.some((dir) => path.startsWith(`${dir}/`))) return undefined;
      return files[path] ?? null;
    },
    cwd: options.cwd ?? "/home/me/app",
    mainModule: options.mainModule ?? "file:///home/me/app/main.ts",
    standalone: options.standalone ?? false,
  };
}

Deno.test("detectWorkerOptions() finds the flag on the command line", {
  permissions: "none",
}, async (t) => {
  const cases: [string, string[], string][] = [
    ["before the script", ["deno", "run", FLAG, "main.ts"], "enabled"],
    ["the shorthand", ["deno", FLAG, "main.ts"], "enabled"],
    ["deno test, among the files", ["deno", "test", "a_test.ts", FLAG], "enabled"],
    ["missing", ["deno", "run", "-A", "main.ts"], "disabled"],
    ["after the script (the script's own)", ["deno", "run", "main.ts", FLAG], "disabled"],
    [
      "the catch-all --unstable (gone in Deno 2)",
      ["deno", "run", "--unstable", "main.ts"],
      "disabled",
    ],
  ];
  for (const [what, args, expected] of cases) {
    await t.step(what, () => assert.equal(detectWorkerOptions(probe({ args })), expected));
  }
});

Deno.test("detectWorkerOptions() reads the unstable list of the config Deno uses", {
  permissions: "none",
}, async (t) => {
  const run = ["deno", "run", "main.ts"];

  await t.step("deno run: the nearest config above the main module", () => {
    const files = { "/home/me/deno.json": ENABLING, "/home/me/app/deno.json": "{}" };
    assert.equal(detectWorkerOptions(probe({ args: run, files })), "disabled");
    assert.equal(
      detectWorkerOptions(probe({ args: run, files: { "/home/me/deno.json": ENABLING } })),
      "enabled",
    );
  });

  await t.step("deno run: the main module's folder, not the working one", () => {
    const files = { "/srv/tool/deno.json": ENABLING, "/home/me/app/deno.json": "{}" };
    const mainModule = "file:///srv/tool/main.ts";
    assert.equal(detectWorkerOptions(probe({ args: run, files, mainModule })), "enabled");
  });

  await t.step("deno test: the working folder, not the test file's", () => {
    const files = { "/srv/tool/deno.json": ENABLING, "/home/me/app/deno.json": "{}" };
    const args = ["deno", "test", "/srv/tool/a_test.ts"];
    const mainModule = "file:///srv/tool/a_test.ts";
    assert.equal(detectWorkerOptions(probe({ args, files, mainModule })), "disabled");
    assert.equal(
      detectWorkerOptions(probe({ args, files, mainModule, cwd: "/srv/tool" })),
      "enabled",
    );
  });

  await t.step("deno.jsonc, and a list that is only a comment", () => {
    const jsonc = '{ "unstable": [/* on */ "worker-options",], }';
    assert.equal(
      detectWorkerOptions(probe({ args: run, files: { "/home/me/app/deno.jsonc": jsonc } })),
      "enabled",
    );
    const commented = '{ // "unstable": ["worker-options"]\n }';
    assert.equal(
      detectWorkerOptions(probe({ args: run, files: { "/home/me/app/deno.jsonc": commented } })),
      "disabled",
    );
  });

  await t.step("--no-config and --config", () => {
    const files = { "/home/me/app/deno.json": ENABLING, "/home/me/app/plain.json": "{}" };
    const withArgs = (...options: string[]): string =>
      detectWorkerOptions(probe({ args: ["deno", "run", ...options, "main.ts"], files }));
    assert.equal(withArgs("--no-config"), "disabled");
    assert.equal(withArgs("--config=plain.json"), "disabled");
    assert.equal(withArgs("-c", "/home/me/app/plain.json"), "disabled");
    assert.equal(withArgs("--config", "deno.json"), "enabled");
    assert.equal(withArgs("--config=missing.json"), "unknown");
  });

  await t.step("a workspace member's list is ignored, its root's counts", () => {
    const member = "file:///home/me/app/member/main.ts";
    const root = (unstable: string): Record<string, string> => ({
      "/home/me/app/deno.json": `{ "workspace": ["./member"], "unstable": ${unstable} }`,
      "/home/me/app/member/deno.json": ENABLING,
    });
    assert.equal(
      detectWorkerOptions(probe({ args: run, files: root("[]"), mainModule: member })),
      "disabled",
    );
    assert.equal(
      detectWorkerOptions(
        probe({ args: run, files: root('["worker-options"]'), mainModule: member }),
      ),
      "enabled",
    );
  });

  await t.step("a config that cannot be parsed tells nothing", () => {
    const files = { "/home/me/app/deno.json": "{ nope" };
    assert.equal(detectWorkerOptions(probe({ args: run, files })), "unknown");
  });
});

Deno.test("detectWorkerOptions() says unknown when it cannot be sure", {
  permissions: "none",
}, async (t) => {
  await t.step("a deno compile binary keeps its flags off its command line", () => {
    const args = ["./app", FLAG];
    assert.equal(detectWorkerOptions(probe({ args, standalone: true })), "unknown");
  });

  await t.step("a folder on the way to the config cannot be read", () => {
    const files = { "/home/me/app": null, "/home/me/deno.json": ENABLING };
    assert.equal(detectWorkerOptions(probe({ args: ["deno", "main.ts"], files })), "unknown");
  });

  await t.step("without the command line, only an enabling config counts", () => {
    const enabling = { "/home/me/app/deno.json": ENABLING };
    assert.equal(detectWorkerOptions(probe({ files: enabling })), "enabled");
    // The flag may be on the command line all the same.
    assert.equal(
      detectWorkerOptions(probe({ files: { "/home/me/app/deno.json": "{}" } })),
      "unknown",
    );
    assert.equal(detectWorkerOptions(probe({})), "unknown");
  });

  await t.step("without the command line, deno run and deno test must find the same", () => {
    const files = { "/srv/tool/deno.json": ENABLING, "/home/me/app/deno.json": "{}" };
    const mainModule = "file:///srv/tool/main.ts";
    assert.equal(detectWorkerOptions(probe({ files, mainModule })), "unknown");
    assert.equal(detectWorkerOptions(probe({ files, mainModule, cwd: "/srv/tool" })), "enabled");
  });
});

/** A deno.json with the repository's imports and nothing else, in a temp folder. */
async function plainConfig(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "wasmplug_config_" });
  const { imports } = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  const path = `${dir}/deno.json`;
  await Deno.writeTextFile(path, JSON.stringify({ imports, lock: false }));
  return { path, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test(`${SLOW}A process's worker permission mode follows the flag Deno runs with`, {
  ignore: !RUN_SLOW,
  permissions: { run: [DENO], read: true, write: true },
}, async (t) => {
  // Without the repository's deno.json, which enables worker options; its imports still apply.
  const script = [
    "--no-config",
    "--import-map=deno.json",
    "tests/worker/fixtures/worker_isolation.ts",
  ];
  await using plain = await plainConfig();

  const cases: [string, string[], string][] = [
    // With --allow-all, Deno lets a program read its own command line.
    ["-A with the flag: narrow", ["run", FLAG, "-A", ...script], "42 narrow"],
    ["-A without it: inherit", ["run", "-A", ...script], "42 inherit"],
    // Deno 2 dropped the catch-all flag: it no longer enables worker options.
    ["--unstable: inherit", ["run", "--unstable", "-A", ...script], "42 inherit"],
    // After the script, the flag is the script's argument, not Deno's.
    ["the flag after the script: inherit", ["run", "-A", ...script, FLAG], "42 inherit"],
    // The repository's deno.json enables them, but Deno was told to use another config.
    ["a --config that does not enable them: inherit", [
      "run",
      "-A",
      `--config=${plain.path}`,
      "tests/worker/fixtures/worker_isolation.ts",
    ], "42 inherit"],
    // Without -A, the command line is hidden; the repository's deno.json enables them.
    ["--allow-read and the repository's deno.json: narrow", [
      "run",
      "--allow-read",
      "tests/worker/fixtures/worker_isolation.ts",
    ], "42 narrow"],
    // Asked for, and known to be impossible: a TypeError, not Deno's exit 70.
    ['"narrow" without the flag: a TypeError', ["run", "-A", ...script, "narrow"], "TypeError"],
  ];
  for (const [what, args, expected] of cases) {
    await t.step(what, async () => {
      const { code, stdout, stderr } = await runDeno(args);
      assert.equal(code, 0, stderr);
      assert.ok(stdout.startsWith(expected), stdout);
    });
  }
});

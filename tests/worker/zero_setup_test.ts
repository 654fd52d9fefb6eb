import assert from "node:assert/strict";
import { DENO, type DenoOutput, RUN_SLOW, SLOW, textOf } from "../_helpers.ts";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const ROOT = new URL("../../", import.meta.url);
const FLAG = "--unstable-worker-options";
/** WASI's `EACCES`: what `path_open` answers where Deno grants no write. */
const EACCES = 2;

/** A user's project of its own: a deno.json with wasmplug's imports, a script, a test file. */
interface Project extends AsyncDisposable {
  /** A folder the script's `FileSystem` plugins preopen. */
  readonly out: string;
  /** Runs `deno <args>` in the project. */
  run(args: readonly string[]): Promise<DenoOutput>;
  /** Runs `main.ts` (`fixtures/zero_setup_main.ts`) with Deno's `flags`, and parses its report. */
  report(flags: readonly string[], mode?: "narrow" | "inherit"): Promise<Report>;
}

/** What `fixtures/zero_setup_main.ts` prints. */
interface Report {
  readonly mode?: string;
  readonly answers?: number[];
  readonly readOnly?: number | string;
  readonly writable?: number | string;
  readonly error?: string;
  readonly warnings: string[];
}

/**
 * Creates a project in a temp folder, away from the repository's deno.json
 * (which enables worker options): its own deno.json lists them in `unstable`
 * only when asked. A `lasting` project keeps its folder from run to run, so
 * that `deno test` type-checks it once per machine, not once per run.
 */
async function project(options: { unstable?: boolean; lasting?: boolean } = {}): Promise<Project> {
  let dir = await Deno.makeTempDir({ prefix: "wasmplug_zero_setup_" });
  if (options.lasting) {
    await Deno.remove(dir);
    const checkout = await sha256Hex(ROOT.href);
    dir = `${dir.slice(0, dir.lastIndexOf("/"))}/wasmplug_zero_setup_${checkout.slice(0, 12)}`;
  }
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const config = {
    imports,
    lock: false,
    ...(options.unstable ? { unstable: ["worker-options"] } : {}),
  };
  const fixture = (name: string): string => new URL(`tests/worker/fixtures/${name}`, ROOT).href;
  const out = `${dir}/out`;
  await Deno.mkdir(out, { recursive: true });
  // The same text each time: concurrent runs of a lasting project write what is there already.
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
  await Deno.writeTextFile(`${dir}/main.ts`, `import "${fixture("zero_setup_main.ts")}";\n`);
  await Deno.writeTextFile(`${dir}/main_test.ts`, `import "${fixture("with_plugin_cases.ts")}";\n`);
  async function run(args: readonly string[]): Promise<DenoOutput> {
    const { code, stdout, stderr } = await new Deno.Command(DENO, {
      args: [...args],
      cwd: dir,
      stdin: "null",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(120_000),
    }).output();
    return { code, stdout: textOf(stdout), stderr: textOf(stderr) };
  }
  return {
    out,
    run,
    async report(flags, mode): Promise<Report> {
      const args = ["run", ...flags, "main.ts", `--dir=${out}`];
      if (mode !== undefined) args.push(`--mode=${mode}`);
      const { code, stdout, stderr } = await run(args);
      assert.equal(code, 0, stderr);
      return JSON.parse(stdout);
    },
    [Symbol.asyncDispose]: () =>
      options.lasting ? Promise.resolve() : Deno.remove(dir, { recursive: true }),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The refusal of a plugin that needs Deno permissions in its worker, in inherit mode. */
const REFUSED =
  /^InstantiationError: Cannot create plugin "(reader|writer)" in worker isolation: .*--unstable-worker-options.*execution\.workerPermissions "narrow"/;

Deno.test("A script with no permission flag at all runs worker plugins", {
  permissions: { run: [DENO], read: true, write: true },
}, async () => {
  await using user = await project();
  const report = await user.report([]);
  assert.equal(report.mode, "inherit");
  assert.deepEqual(report.answers, [42, 42]);
  // Plugins that need Deno permissions in their worker get a catchable error naming the flag.
  assert.match(String(report.readOnly), REFUSED);
  assert.match(String(report.writable), REFUSED);
  assert.equal(await exists(`${user.out}/made.txt`), false);
  // Once per process, however many plugins.
  assert.equal(report.warnings.length, 1, report.warnings.join("\n"));
  assert.match(report.warnings[0]!, /--unstable-worker-options/);
});

Deno.test("deno test with no flag runs withPlugin() in worker isolation", {
  permissions: { run: [DENO], read: true, write: true },
}, async () => {
  await using user = await project({ lasting: true });
  const { code, stdout, stderr } = await user.run(["test", "main_test.ts"]);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /ok \| 2 passed \| 0 failed/);
});

Deno.test(`${SLOW}With the flag on, each worker gets only its capabilities' Deno permissions`, {
  ignore: !RUN_SLOW,
  permissions: { run: [DENO], read: true, write: true },
}, async (t) => {
  /** The host may write anywhere; the plugin's worker only where `allowedPaths.write` says. */
  async function assertNarrowed(user: Project, report: Report): Promise<void> {
    assert.equal(report.mode, "narrow");
    assert.deepEqual(report.answers, [42, 42]);
    assert.equal(report.readOnly, EACCES);
    assert.equal(report.writable, 0);
    assert.equal(await exists(`${user.out}/made.txt`), true);
    assert.deepEqual(report.warnings, []);
  }

  await t.step("the flag seen on the command line (-A lets a program read it)", async () => {
    await using user = await project();
    await assertNarrowed(user, await user.report(["-A", FLAG]));
  });

  await t.step("the flag from the project's deno.json", async () => {
    await using user = await project({ unstable: true });
    await assertNarrowed(user, await user.report(["--allow-read", "--allow-write"]));
  });

  await t.step("the flag hidden (no -A): inherit, unless narrow is asked for", async () => {
    await using user = await project();
    const flags = [FLAG, "--allow-read", "--allow-write"];
    const inherited = await user.report(flags);
    assert.equal(inherited.mode, "inherit");
    assert.match(String(inherited.readOnly), REFUSED);
    await assertNarrowed(user, await user.report(flags, "narrow"));
  });
});

Deno.test("Asking for narrow without the flag is a TypeError, not Deno's exit 70", {
  permissions: { run: [DENO], read: true, write: true },
}, async () => {
  await using user = await project();
  const report = await user.report(["-A"], "narrow");
  assert.equal(report.mode, undefined);
  assert.match(
    report.error ?? "",
    /^TypeError: Cannot use 'execution\.workerPermissions' = "narrow": .*--unstable-worker-options/,
  );
});

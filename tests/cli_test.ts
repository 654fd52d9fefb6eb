/**
 * `wasmplug` as a user runs it: a real `deno run cli.ts` with the narrowest
 * Deno flags the README shows for each command, in each isolation, and the
 * process's exit codes. The commands' behaviour case by case is tested in
 * this process, in `tests/cli/`.
 */
import assert from "node:assert/strict";
import { denoCli, ROOT, shown } from "./cli/_cli.ts";
import { DENO, RUN_SLOW, SLOW } from "./_helpers.ts";

/** The test spawns Deno, which reads the repository; it makes a scratch folder for `run --dir`. */
const PERMISSIONS: Deno.PermissionOptionsObject = { run: [DENO], read: true, write: true };

/**
 * What the README's commands run with, from the repository: reading `deno.json` lets wasmplug
 * see its `"unstable": ["worker-options"]`, so each plugin worker gets only its capabilities'
 * permissions.
 */
const README_FLAGS = ["--allow-read=examples,deno.json"];

/** The README's example call: `sub -3 4` is -7. */
const SUB = ["call", "examples/wat/math.wat", "sub", "-3", "4"];

/** A scratch copy of `c_wasi`'s data folder; disposing it removes it. */
async function dataFolder(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.realPath(await Deno.makeTempDir({ prefix: "wasmplug-cli-" }));
  await Deno.copyFile(
    new URL("examples/c_wasi/data/greeting.txt", ROOT),
    `${path}/greeting.txt`,
  );
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** This repository's `deno.json` without `"unstable": ["worker-options"]`; disposing it removes it. */
async function configWithoutFlag(): Promise<AsyncDisposable & { path: string }> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const path = await Deno.makeTempFile({ prefix: "wasmplug-cli-", suffix: ".json" });
  // Its imports are all npm: specifiers, the same from any folder.
  await Deno.writeTextFile(path, JSON.stringify({ imports: config.imports }));
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

Deno.test({
  name: "wasmplug exits 1 on a plugin error, 2 on bad usage, and with the guest's code for run",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("1: a plugin error, its kind and message, no stack", async () => {
      const output = await denoCli(README_FLAGS, [
        "call",
        "examples/wat/math.wat",
        "nope",
      ]);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: invalid_function: Function not found: "nope"[^\n]*\n$/);
    });

    await t.step("2: bad usage", async () => {
      const output = await denoCli(README_FLAGS, ["call", "examples/wat/math.wat"]);
      assert.equal(output.code, 2, shown(output));
      assert.match(output.stderr, /^error: call needs a file and a function name\nUsage:/);
    });

    await t.step("run: the guest's exit code", async () => {
      const output = await denoCli(README_FLAGS, [
        "run",
        "examples/c_wasi/c_wasi.wasm",
        "--dir",
        "examples/c_wasi/data:/data",
      ]);
      assert.equal(output.code, 3, shown(output));
    });
  },
});

Deno.test({
  name: `${SLOW}wasmplug in worker isolation, the default: with the README's flags, and with fewer`,
  ignore: !RUN_SLOW,
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("inspect needs only to read the file", async () => {
      const output = await denoCli(["--allow-read=examples"], ["inspect", "examples/wat/math.wat"]);
      assert.equal(output.code, 0, shown(output));
      assert.match(output.stdout, /^exports \(4\):$/m);
    });

    await t.step("call: numbers, negative ones too", async () => {
      const output = await denoCli(README_FLAGS, [
        ...SUB,
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-7\n");
      assert.equal(output.stderr, "", "narrow worker permissions: no warning");
    });

    await t.step("call --input with --config, through the bytes ABI", async () => {
      const output = await denoCli(README_FLAGS, [
        "call",
        "examples/c_plugin/plugin.wasm",
        "transform",
        "--input",
        "hello",
        "--cap",
        "read_config",
        "--config",
        "prefix=C says: ",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "C says: HELLO");
    });

    await t.step("call --json --input from stdin", async () => {
      const output = await denoCli(README_FLAGS, [
        "call",
        "examples/rust_plugin/my_plugin.wasm",
        "handle",
        "--json",
        "--input-file",
        "-",
      ], { stdin: '{"greeting":"hi"}' });
      assert.equal(output.code, 0, shown(output));
      assert.deepEqual(JSON.parse(output.stdout), {
        ok: true,
        bytes: 17,
        echo: { greeting: "hi" },
      });
    });

    await t.step(
      "run --dir: the worker reads the folder, and writes it only with :rw",
      async () => {
        await using data = await dataFolder();
        const report = `${data.path}/report.txt`;
        const args = (mode: string) => [
          "run",
          "examples/c_wasi/c_wasi.wasm",
          "--dir",
          `${data.path}:/data${mode}`,
          "--env",
          "REPORT_PATH=/data/report.txt",
          "--",
          "one",
        ];
        // The CLI itself may write the folder; its worker may not, unless :rw says so.
        const flags = [
          `--allow-read=examples,deno.json,${data.path}`,
          `--allow-write=${data.path}`,
        ];
        const readOnly = await denoCli(flags, args(""), { stdin: "a\nb\n" });
        assert.equal(readOnly.code, 3, shown(readOnly));
        assert.match(readOnly.stdout, /^A\nB\nlines: 2\nargs: one\ngreeting: Hello from/);
        assert.match(
          readOnly.stdout,
          /^report \/data\/report\.txt: failed \(Permission denied\)$/m,
        );
        const readWrite = await denoCli(flags, args(":rw"), { stdin: "a\nb\n" });
        assert.equal(readWrite.code, 3, shown(readWrite));
        assert.equal(await Deno.readTextFile(report), "lines: 2\n");
      },
    );

    await t.step("run --dir …:rw without --allow-write is refused, not escalated", async () => {
      await using data = await dataFolder();
      const output = await denoCli([`--allow-read=examples,deno.json,${data.path}`], [
        "run",
        "examples/c_wasi/c_wasi.wasm",
        "--dir",
        `${data.path}:/data:rw`,
      ]);
      // Bad usage before the module loads, as inline (where the command started and its writes
      // failed with its own exit code).
      assert.equal(output.code, 2, shown(output));
      assert.match(output.stderr, /^error: --dir .*:rw needs --allow-write=/);
    });

    await t.step(
      "without reading deno.json: workers share the CLI's permissions, and say so",
      async () => {
        const output = await denoCli(["--allow-read=examples"], [
          ...SUB,
        ]);
        assert.equal(output.code, 0, shown(output));
        assert.equal(output.stdout, "-7\n");
        assert.match(output.stderr, /--unstable-worker-options/);
        const dir = await denoCli(["--allow-read=examples"], [
          "run",
          "examples/c_wasi/c_wasi.wasm",
          "--dir",
          "examples/c_wasi/data:/data",
        ]);
        assert.equal(dir.code, 1, shown(dir));
        assert.match(
          dir.stderr,
          /\nhint: when Deno runs with --unstable-worker-options, add --worker-permissions narrow/,
        );
        const told = await denoCli(["--allow-read=examples"], [
          "run",
          "examples/c_wasi/c_wasi.wasm",
          "--dir",
          "examples/c_wasi/data:/data",
          "--worker-permissions",
          "narrow",
        ]);
        assert.equal(told.code, 3, shown(told));
      },
    );

    await t.step("without the flag at all: workers share the CLI's permissions", async () => {
      await using config = await configWithoutFlag();
      // With -A, wasmplug reads Deno's command line, so it knows the flag is off.
      const flags = ["-A", `--config=${config.path}`];
      const output = await denoCli(flags, SUB);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-7\n");
      assert.match(output.stderr, /--unstable-worker-options/);
      const narrow = await denoCli(flags, [
        ...SUB,
        "--worker-permissions",
        "narrow",
      ]);
      assert.equal(narrow.code, 2, shown(narrow));
      assert.match(narrow.stderr, /^error: .*"narrow".*--unstable-worker-options/);
    });

    await t.step("without reading the file, nothing runs", async () => {
      const output = await denoCli([], SUB);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: Requires read access to "examples\/wat\/math\.wat"/);
    });
  },
});

Deno.test({
  name: "wasmplug with the README's flags: inline isolation",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("call needs only to read the file", async () => {
      const output = await denoCli(["--allow-read=examples"], [
        ...SUB,
        "--isolation",
        "inline",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-7\n");
      assert.equal(output.stderr, "");
    });

    await t.step("run --dir …:rw: the plugin has the CLI's permissions", async () => {
      await using data = await dataFolder();
      const output = await denoCli(
        [`--allow-read=examples,${data.path}`, `--allow-write=${data.path}`],
        [
          "run",
          "examples/c_wasi/c_wasi.wasm",
          "--dir",
          `${data.path}:/data:rw`,
          "--env",
          "REPORT_PATH=/data/report.txt",
          "--isolation",
          "inline",
        ],
      );
      assert.equal(output.code, 3, shown(output));
      assert.equal(await Deno.readTextFile(`${data.path}/report.txt`), "lines: 0\n");
    });
  },
});

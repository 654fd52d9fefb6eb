import assert from "node:assert/strict";
import { cli, shown } from "./_cli.ts";

const C_WASI = "examples/c_wasi/c_wasi.wasm";

/** `c_wasi` with its example data folder as `/data`. */
const RUN_WITH_DATA = ["run", C_WASI, "--dir", "examples/c_wasi/data:/data"];

/**
 * A folder holding what `c_wasi` reads (`greeting.txt`), beside a `secret.txt`
 * it must not reach; disposing it removes both. The command writes
 * `report.txt` in the folder when it may.
 */
async function dataFolder(): Promise<AsyncDisposable & { path: string; report: string }> {
  const root = await Deno.makeTempDir({ prefix: "wasmplug-cli-" });
  const path = `${root}/data`;
  await Deno.mkdir(path);
  await Deno.copyFile("examples/c_wasi/data/greeting.txt", `${path}/greeting.txt`);
  await Deno.writeTextFile(`${root}/secret.txt`, "secret");
  return {
    path,
    report: `${path}/report.txt`,
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

/** `run c_wasi` with the folder as `/data`, asking it to write `/data/report.txt`. */
function runWithReport(folder: string, ...options: string[]): string[] {
  return ["run", C_WASI, "--dir", folder, "--env", "REPORT_PATH=/data/report.txt", ...options];
}

/** The isolation `bench` measured, as it reports it. */
async function benchIsolation(...options: string[]): Promise<string> {
  const args = ["examples/wat/math.wat", "add", "1", "-2", "--iterations", "3", "--json"];
  const output = await cli(["bench", ...args, ...options]);
  assert.equal(output.code, 0, shown(output));
  return JSON.parse(output.stdout).isolation;
}

// The test may read and write everywhere; a plugin's worker gets only what the CLI grants it.
const PERMISSIONS: Deno.PermissionOptions = { read: true, write: true };

Deno.test({
  name: "wasmplug runs plugins in worker isolation by default",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("bench reports the isolation it measured", async () => {
      assert.equal(await benchIsolation(), "worker");
    });

    await t.step("run --dir: the worker may read the folder, not write it", async () => {
      await using data = await dataFolder();
      const output = await cli(runWithReport(`${data.path}:/data`));
      assert.equal(output.code, 3, shown(output));
      assert.match(output.stdout, /^greeting: Hello from the preopened \/data directory!$/m);
      assert.match(output.stdout, /^report \/data\/report\.txt: failed \(Permission denied\)$/m);
      await assert.rejects(Deno.lstat(data.report), Deno.errors.NotFound);
    });

    await t.step("run --dir …:rw: the worker may write it too", async () => {
      await using data = await dataFolder();
      const output = await cli(runWithReport(`${data.path}:/data:rw`));
      assert.equal(output.code, 3, shown(output));
      assert.match(output.stdout, /^report \/data\/report\.txt: written$/m);
      assert.equal(await Deno.readTextFile(data.report), "lines: 0\n");
    });

    await t.step("run --dir: nothing outside the folder", async () => {
      await using data = await dataFolder();
      const output = await cli([
        ...runWithReport(`${data.path}:/data:rw`),
        "--env",
        "PROBE_PATHS=/data/../secret.txt:/data/greeting.txt:/etc/passwd",
      ]);
      assert.equal(output.code, 3, shown(output));
      assert.match(output.stdout, /^probe \/data\/\.\.\/secret\.txt: denied/m);
      const { size } = await Deno.stat(`${data.path}/greeting.txt`);
      const inside = new RegExp(`^probe /data/greeting\\.txt: READ ${size} BYTES$`, "m");
      assert.match(output.stdout, inside, "the probe reads what it may");
      assert.match(output.stdout, /^probe \/etc\/passwd: denied/m);
    });

    await t.step("stdin reaches the command", async () => {
      const output = await cli(RUN_WITH_DATA, {
        stdin: "one\ntwo\n",
      });
      assert.equal(output.code, 3, shown(output));
      assert.match(output.stdout, /^ONE\nTWO\nlines: 2\n/);
    });
  },
});

Deno.test({
  name: "wasmplug --isolation inline runs on the CLI's thread, with the CLI's permissions",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("bench says so", async () => {
      assert.equal(await benchIsolation("--isolation", "inline"), "inline");
    });

    await t.step("a read-only --dir is read-only there too", async () => {
      await using data = await dataFolder();
      const output = await cli(runWithReport(`${data.path}:/data`, "--isolation", "inline"));
      assert.equal(output.code, 3, shown(output)); // the command runs, its write is refused
      await assert.rejects(Deno.lstat(data.report), Deno.errors.NotFound);
    });

    await t.step("a read-write --dir works", async () => {
      await using data = await dataFolder();
      const output = await cli(runWithReport(`${data.path}:/data:rw`, "--isolation", "inline"));
      assert.equal(output.code, 3, shown(output));
      assert.equal(await Deno.readTextFile(data.report), "lines: 0\n");
    });
  },
});

Deno.test({
  name: "wasmplug --worker-permissions states whether Deno narrows worker permissions",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("inherit: a plugin needing none still runs in its worker", async () => {
      const output = await cli([
        ...["call", "examples/wat/math.wat", "sub", "-3", "4"],
        ...["--worker-permissions", "inherit"],
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-7\n");
    });

    await t.step("inherit: run --dir is refused, with a hint for the CLI", async () => {
      const output = await cli([...RUN_WITH_DATA, "--worker-permissions", "inherit"]);
      assert.equal(output.code, 1, shown(output));
      assert.match(
        output.stderr,
        /^error: instantiation: .*--unstable-worker-options.*\nhint: when Deno runs with --unstable-worker-options, add --worker-permissions narrow/,
      );
    });

    await t.step("narrow: what the default is when the flag is seen", async () => {
      const output = await cli([...RUN_WITH_DATA, "--worker-permissions", "narrow"]);
      assert.equal(output.code, 3, shown(output));
      assert.match(output.stdout, /^greeting: Hello from the preopened \/data directory!$/m);
    });

    await t.step("anything else is bad usage", async () => {
      const output = await cli([
        "call",
        "examples/wat/math.wat",
        "add",
        "--worker-permissions",
        "all",
      ]);
      assert.equal(output.code, 2, shown(output));
      assert.match(
        output.stderr,
        /^error: --worker-permissions must be "narrow" or "inherit", received "all"\n/,
      );
    });

    await t.step("an unknown isolation is bad usage", async () => {
      const output = await cli(["call", "examples/wat/math.wat", "add", "--isolation", "vm"]);
      assert.equal(output.code, 2, shown(output));
      assert.match(
        output.stderr,
        /^error: --isolation must be "worker" or "inline", received "vm"\n/,
      );
    });
  },
});

Deno.test({
  name: "wasmplug run --max-open-files sets how many descriptors the command may hold",
  permissions: PERMISSIONS,
  async fn() {
    await using data = await dataFolder();
    const ok = await cli([...runWithReport(`${data.path}:/data:rw`), "--max-open-files", "8"]);
    assert.equal(ok.code, 3, shown(ok));
    const tooMany = await cli([...runWithReport(`${data.path}:/data`), "--max-open-files", "5000"]);
    assert.equal(tooMany.code, 2, shown(tooMany));
    assert.match(tooMany.stderr, /^error: --max-open-files must be at most 4096/);
    const tooFew = await cli([...runWithReport(`${data.path}:/data`), "--max-open-files", "3"]);
    assert.equal(tooFew.code, 2, shown(tooFew));
    assert.match(
      tooFew.stderr,
      /^error: --max-open-files must leave room for stdio and the 1 --dir/,
    );
  },
});

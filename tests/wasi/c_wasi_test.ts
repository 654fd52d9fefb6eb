/**
 * Runs the committed C WASI command (`examples/c_wasi/c_wasi.wasm`, built
 * from `main.c` with wasi-libc) against a temp directory, to check what a
 * real toolchain's libc does with this WASI: stdio, args, environ, files in
 * a preopen, escapes by `..` and by symlink, the network, and exit codes.
 */

import assert from "node:assert/strict";
import { type WasiOptions, WasiPreview1 } from "../../src/wasi/wasi_preview1.ts";

const SECRET = "host secret\n";
/** Temp dirs, and the committed binary. */
const PERMISSIONS = { permissions: { read: true, write: true } } as const;
const wasm = await Deno.readFile(new URL("../../examples/c_wasi/c_wasi.wasm", import.meta.url));
const command = await WebAssembly.compile(wasm);

interface Run {
  readonly exitCode: number;
  readonly stdout: string[];
  readonly stderr: string;
}

/** Runs the command to completion. */
async function run(options: WasiOptions): Promise<Run> {
  using wasi = new WasiPreview1(options);
  const instance = await WebAssembly.instantiate(command, {
    wasi_snapshot_preview1: wasi.imports(),
  });
  const exitCode = wasi.start(instance);
  const text = new TextDecoder();
  return {
    exitCode,
    stdout: text.decode(wasi.stdout).trimEnd().split("\n"),
    stderr: text.decode(wasi.stderr),
  };
}

/**
 * A temp dir with `data/greeting.txt` (preopened as /data), `secret.txt`
 * beside it, and `data/escape.txt` linking to the secret.
 */
async function tempData(): Promise<{ root: string } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "wasmplug_c_wasi_" });
  await Deno.mkdir(`${root}/data`);
  await Deno.writeTextFile(`${root}/data/greeting.txt`, "hi from a temp dir\n");
  await Deno.writeTextFile(`${root}/secret.txt`, SECRET);
  await Deno.symlink("../secret.txt", `${root}/data/escape.txt`);
  return { root, [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }) };
}

Deno.test(
  "C WASI command: stdio, args, a preopened file, and exit code 3",
  PERMISSIONS,
  async () => {
    await using data = await tempData();
    const result = await run({
      args: ["c_wasi", "one", "two words"],
      env: { REPORT_PATH: "/data/report.txt" },
      stdin: new TextEncoder().encode("abc\ndef\n"),
      preopens: { "/data": `${data.root}/data` },
      fileSystem: true,
    });
    assert.equal(result.exitCode, 3);
    assert.deepEqual(result.stdout, [
      "ABC",
      "DEF",
      "lines: 2",
      "args: one two words",
      "greeting: hi from a temp dir",
      "report /data/report.txt: written",
      "network: Function not implemented",
    ]);
    assert.equal(result.stderr, "");
    assert.equal(await Deno.readTextFile(`${data.root}/data/report.txt`), "lines: 2\n");
  },
);

Deno.test(
  "C WASI command: reads past the preopen fail and the host files are untouched",
  PERMISSIONS,
  async () => {
    await using data = await tempData();
    const result = await run({
      args: ["c_wasi"],
      env: {
        PROBE_PATHS: [
          "/data/../secret.txt",
          "/data/escape.txt",
          `${data.root}/secret.txt`,
          "/etc/hostname",
          "/data/greeting.txt",
        ].join(":"),
        // fopen(…, "w") truncates: through the link it would wipe the secret.
        REPORT_PATH: "/data/escape.txt",
      },
      preopens: { "/data": `${data.root}/data` },
      fileSystem: true,
    });
    assert.equal(result.exitCode, 3);
    assert.deepEqual(result.stdout.slice(3), [
      "report /data/escape.txt: failed (Capabilities insufficient)",
      "probe /data/../secret.txt: denied (Capabilities insufficient)",
      "probe /data/escape.txt: denied (Capabilities insufficient)",
      `probe ${data.root}/secret.txt: denied (Capabilities insufficient)`,
      "probe /etc/hostname: denied (Capabilities insufficient)",
      "probe /data/greeting.txt: READ 19 BYTES",
      "network: Function not implemented",
    ]);
    assert.equal(await Deno.readTextFile(`${data.root}/secret.txt`), SECRET);

    const writeOutside = await run({
      env: { REPORT_PATH: "/data/../pwned.txt" },
      preopens: { "/data": `${data.root}/data` },
      fileSystem: true,
    });
    assert.ok(
      writeOutside.stdout.includes("report /data/../pwned.txt: failed (Capabilities insufficient)"),
    );
    assert.deepEqual(
      [...Deno.readDirSync(data.root)].map((e) => e.name).sort(),
      ["data", "secret.txt"],
    );
  },
);

Deno.test(
  "C WASI command: without the file system capability it sees no directory",
  PERMISSIONS,
  async () => {
    await using data = await tempData();
    const result = await run({ preopens: { "/data": `${data.root}/data` } });
    assert.equal(result.exitCode, 1);
    assert.equal(result.stderr, "cannot open /data/greeting.txt: Capabilities insufficient\n");
  },
);

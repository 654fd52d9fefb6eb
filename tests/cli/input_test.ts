import assert from "node:assert/strict";
import { cli, denoCli, shown } from "./_cli.ts";
import { DENO } from "../_helpers.ts";

const BYTES = "tests/cli/fixtures/bytes.wat";
const RUST = "examples/rust_plugin/my_plugin.wasm";
const PERMISSIONS: Deno.PermissionOptions = { read: true };

Deno.test({
  name: "wasmplug call --input: the bytes ABI, output written as it is",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step(
      "--input is UTF-8 text, the output goes to stdout with nothing added",
      async () => {
        const output = await cli(["call", BYTES, "reverse", "--input", "hello, wörld"]);
        assert.equal(output.code, 0, shown(output));
        // Reversed byte by byte: the ö's two UTF-8 bytes swap places.
        const expected = new TextEncoder().encode("hello, wörld").reverse();
        assert.deepEqual(output.stdoutBytes, expected);
        assert.equal(output.stderr, "");
      },
    );

    await t.step("--input-file passes any bytes, and they come back unchanged", async () => {
      const bytes = new Uint8Array([0, 255, 128, 10, 13, 0]);
      const path = "examples/c_wasi/c_wasi.wasm";
      const file = await Deno.readFile(path);
      const output = await cli(["call", BYTES, "echo", "--input-file", path]);
      assert.equal(output.code, 0, shown(output));
      assert.deepEqual(output.stdoutBytes, file);
      const viaStdin = await cli(["call", BYTES, "echo", "--input-file", "-"], { stdin: bytes });
      assert.equal(viaStdin.code, 0, shown(viaStdin));
      assert.deepEqual(viaStdin.stdoutBytes, bytes);
    });

    await t.step("an empty input is an input", async () => {
      const output = await cli(["call", BYTES, "echo", "--input", ""]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdoutBytes.length, 0);
    });

    await t.step("a value that starts with a dash is written with =", async () => {
      const output = await cli(["call", BYTES, "reverse", "--input=-x-"]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-x-");
      const ambiguous = await cli(["call", BYTES, "reverse", "--input", "-x"]);
      assert.equal(ambiguous.code, 2, shown(ambiguous));
      assert.match(ambiguous.stderr, /--input needs a value <text> \(write --input=<value>/);
    });

    await t.step("--metrics goes to stderr, so stdout is the output alone", async () => {
      const output = await cli(["call", BYTES, "reverse", "--input", "ab", "--metrics"]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "ba");
      assert.match(output.stderr, /^callCount: 1\nsuccessCount: 1\n/);
    });

    await t.step("a function that is not bytes-shaped is a plugin error", async () => {
      const output = await cli(["call", "examples/wat/math.wat", "add", "--input", "x"]);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: [a-z_]+: /);
    });
  },
});

Deno.test({
  name: "wasmplug call --json --input: JSON in, callJson, JSON out",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("the input is parsed and the output printed as JSON", async () => {
      const output = await cli(["call", RUST, "handle", "--json", "--input", '{"greeting": "hi"}']);
      assert.equal(output.code, 0, shown(output));
      // The plugin echoes the JSON text it received, which callJson encoded compactly.
      assert.deepEqual(JSON.parse(output.stdout), {
        ok: true,
        bytes: '{"greeting":"hi"}'.length,
        echo: { greeting: "hi" },
      });
    });

    await t.step("from a file or stdin", async () => {
      const output = await cli(["call", BYTES, "echo", "--json", "--input-file", "-"], {
        stdin: "[1, -2.5, null]",
      });
      assert.equal(output.code, 0, shown(output));
      assert.deepEqual(JSON.parse(output.stdout), [1, -2.5, null]);
      const file = await cli(["call", BYTES, "echo", "--json", "--input-file", "deno.json"]);
      assert.equal(file.code, 0, shown(file));
      assert.deepEqual(
        JSON.parse(file.stdout),
        JSON.parse(await Deno.readTextFile("deno.json")),
      );
    });

    await t.step("invalid JSON is bad usage, on one line, before the module loads", async () => {
      const output = await cli(["call", "missing.wasm", "f", "--json", "--input", "{nope"]);
      assert.equal(output.code, 2, shown(output));
      assert.match(
        output.stderr,
        /^error: --input is not valid JSON: [^\n]+\nUsage: wasmplug call/,
      );
      const stdin = await cli(["call", "missing.wasm", "f", "--json", "--input-file", "-"], {
        stdin: new Uint8Array([0xff, 0xfe]),
      });
      assert.equal(stdin.code, 2, shown(stdin));
      assert.match(stdin.stderr, /^error: stdin is not valid JSON: it is not UTF-8\n/);
      // The engine's message quotes the text: its control characters reached the terminal raw.
      const quoted = await cli(["call", "missing.wasm", "f", "--json", "--input-file", "-"], {
        stdin: '{"a": \u001b[2J\u001b[31mPWNED}',
      });
      assert.equal(quoted.code, 2, shown(quoted));
      assert.ok(!quoted.stderr.includes("\u001b"), quoted.stderr);
      assert.match(quoted.stderr, /\\u001b\[2J/);
    });

    await t.step("output that is not JSON is a plugin error", async () => {
      const output = await cli(["call", BYTES, "reverse", "--json", "--input", '{"a":1}']);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: [a-z_]+: .*JSON/);
    });
  },
});

Deno.test({
  name: "wasmplug call: --input and its neighbours are checked",
  permissions: PERMISSIONS,
  async fn(t) {
    for (
      const [what, args, error] of [
        [
          "both --input and --input-file",
          ["--input", "a", "--input-file", "b"],
          /give either --input or --input-file, not both/,
        ],
        [
          "an input and numeric arguments",
          ["7", "--input", "a"],
          /call takes either numeric arguments or an input, received both \("7"\)/,
        ],
      ] as const
    ) {
      await t.step(what, async () => {
        const output = await cli(["call", BYTES, "echo", ...args]);
        assert.equal(output.code, 2, shown(output));
        assert.match(output.stderr, error);
      });
    }

    await t.step("a missing --input-file is an error naming it", async () => {
      const output = await cli(["call", BYTES, "echo", "--input-file", "tests/cli/nope.bin"]);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: .*tests\/cli\/nope\.bin/);
    });
  },
});

Deno.test({
  name: "wasmplug reads at most 64 MiB of standard input",
  permissions: { read: true, run: [DENO] },
  async fn() {
    // Read whole before the guest starts: more is refused, not held (`yes | wasmplug run` grew for ever).
    const stdin = new Uint8Array(64 * 1024 * 1024 + 1).fill(0x79);
    const output = await denoCli(["--allow-read"], [
      "call",
      BYTES,
      "echo",
      "--input-file",
      "-",
      "--isolation",
      "inline",
    ], { stdin });
    assert.equal(output.code, 1, shown(output));
    assert.match(output.stderr, /standard input holds more than 64 MiB/);
  },
});

Deno.test({
  name: "wasmplug prints a guest's error text and log records on one line each, escaped",
  permissions: { read: true, run: [DENO] },
  async fn(t) {
    const FORGING = "tests/cli/fixtures/forging.wat";
    await t.step("an error the guest reported", async () => {
      const output = await cli(["call", FORGING, "fail", "--isolation", "inline"]);
      assert.equal(output.code, 1, shown(output));
      assert.equal(
        output.stderr,
        "error: trap: Plugin trapped: unreachable (the plugin reported: " +
          "boom\\u000a\\u001b[2K\\u000dhint: all good)\n",
      );
    });
    await t.step("with --debug, the stack's first line too", async () => {
      const output = await cli(["call", FORGING, "fail", "--isolation", "inline", "--debug"]);
      assert.equal(output.code, 1, shown(output));
      assert.doesNotMatch(output.stderr, /^hint: all good/m);
      assert.match(output.stderr, /\nTrapError: Plugin trapped: unreachable .*hint: all good\)\n/);
    });

    await t.step("a record the guest logged", async () => {
      const output = await denoCli(["--allow-read"], [
        "call",
        FORGING,
        "log",
        "--isolation",
        "inline",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.match(output.stderr, /FORGED\\u202eLOG\\r\\n"\n$/);
      assert.equal(output.stderr.split("\n").length, 2, shown(output));
    });
  },
});

Deno.test({
  name: "wasmplug reads at most 64 MiB of an input file, and a module file is read the same way",
  permissions: { read: true },
  ignore: Deno.build.os === "windows",
  async fn(t) {
    await t.step("a file that never ends is refused, not read until memory runs out", async () => {
      // `--input-file <(yes)` grew to gigabytes: only stdin was bounded.
      const output = await cli(["call", BYTES, "echo", "--input-file", "/dev/zero"]);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: \/dev\/zero holds more than 64 MiB/);
    });
    await t.step("a folder is a one-line error", async () => {
      const output = await cli(["call", BYTES, "echo", "--input-file", "tests"]);
      assert.equal(output.code, 1, shown(output));
      assert.match(output.stderr, /^error: tests is a folder, not a file\n/);
    });
  },
});

Deno.test({
  name: "wasmplug call --json escapes the plugin's C1 controls and bidi overrides",
  permissions: { read: true },
  async fn() {
    // JSON escapes C0 controls only: these reached the terminal raw (U+009B is its CSI).
    const output = await cli(["call", BYTES, "echo", "--json", "--input", '"a\\u009bb\\u202ec"']);
    assert.equal(output.code, 0, shown(output));
    assert.equal(output.stdout, '"a\\u009bb\\u202ec"\n');
  },
});

Deno.test({
  name: "wasmplug run refuses --dir the process may not use, or a guest path twice",
  permissions: { read: true, run: [DENO] },
  async fn(t) {
    const WASI = "examples/c_wasi/c_wasi.wasm";
    for (const isolation of ["inline", "worker"]) {
      await t.step(`:rw without --allow-write, ${isolation}: bad usage`, async () => {
        // Inline the command started and its writes failed with the guest's own exit code.
        const output = await denoCli(["--allow-read", "--unstable-worker-options"], [
          "run",
          WASI,
          "--dir",
          "tests/cli/fixtures:/data:rw",
          "--isolation",
          isolation,
        ]);
        assert.equal(output.code, 2, shown(output));
        assert.match(
          output.stderr,
          /^error: --dir tests\/cli\/fixtures:rw needs --allow-write=tests\/cli\/fixtures/,
        );
      });
    }
    await t.step("one guest path twice: bad usage", async () => {
      // The last won; the first kept its permissions.
      const output = await cli(["run", WASI, "--dir", "tests:/d", "--dir", "examples:/d/"]);
      assert.equal(output.code, 2, shown(output));
      assert.match(output.stderr, /^error: --dir names the guest path "\/d" twice/);
    });
  },
});

Deno.test({
  name: "wasmplug run keeps the guest's exit code when its reader goes away (`| head`)",
  permissions: { read: true, run: [DENO] },
  async fn() {
    const child = new Deno.Command(DENO, {
      args: ["run", "--allow-read", "cli.ts", "run", "tests/cli/fixtures/two_mib_output.wat"],
      cwd: new URL("../../", import.meta.url),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // One chunk, then the pipe closes, as `head -c 1` closes it.
    const reader = child.stdout.getReader();
    await reader.read();
    await reader.cancel();
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    // It was 1, "error: Broken pipe (os error 32)", hiding the guest's 0.
    assert.equal(status.code, 0, stderr);
    assert.doesNotMatch(stderr, /Broken pipe/);
  },
});

import assert from "node:assert/strict";
import { cli, shown } from "./_cli.ts";

interface Case {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout?: RegExp;
  readonly stderr?: RegExp;
  readonly noStderr?: boolean;
}

/** One test of `wasmplug <command>`, a step per case, run in this process. */
function cliTest(name: string, cases: Record<string, Case>): void {
  Deno.test({
    name: `wasmplug ${name}`,
    permissions: { read: true },
    async fn(t) {
      for (const [what, expected] of Object.entries(cases)) {
        await t.step(what, async () => {
          const output = await cli(expected.args);
          assert.equal(output.code, expected.code, shown(output));
          if (expected.stdout) assert.match(output.stdout, expected.stdout, shown(output));
          if (expected.stderr) assert.match(output.stderr, expected.stderr, shown(output));
          if (expected.noStderr) assert.equal(output.stderr, "", shown(output));
          if (!expected.args.includes("--debug")) {
            assert.doesNotMatch(output.stderr, /^\s+at /m, "no stack trace without --debug");
          }
        });
      }
    },
  });
}

cliTest("inspect", {
  "lists imports with their capabilities, exports, memories and what it needs": {
    args: ["inspect", "examples/wat/secure.wat"],
    code: 0,
    stdout:
      /secure: 275 bytes, sha256 [0-9a-f]{64}\n[\s\S]*env\.host_get_config: func \(i32, i32, i32, i32\) -> \(i32\) {2}\[read_config\][\s\S]*memory 0: min 1, max none pages exported as memory\ncapabilities needed: read_config, write_state, network\n$/,
    noStderr: true,
  },
  "names the module chose are printed escaped: none can erase or forge a line": {
    args: ["inspect", "tests/cli/fixtures/escapes.wat"],
    code: 0,
    stdout: new RegExp(
      [
        String
          .raw`  env\\u001b\[2K\\u000d\.host_log\\u202e: func \(i32, i32, i32\) -> \(\)  \[call_host_function\]`,
        String.raw`  env\.host_get_config: func \(i32, i32, i32, i32\) -> \(i32\)  \[read_config\]`,
        String.raw`exports \(1\):`,
        String.raw`  run\\u000acapabilities needed: none: func \(\) -> \(\)`,
        String
          .raw`custom section "\\u001b\[1A\\u001b\[2Kcapabilities needed: none\\u001b\[8m": 0 bytes`,
        String.raw`capabilities needed: call_host_function, read_config\n$`,
      ].join("\n"),
    ),
    noStderr: true,
  },
  "names with characters a reader does not see are escaped, and long ones cut": {
    args: ["inspect", "tests/cli/fixtures/hidden_names.wat"],
    code: 0,
    stdout: new RegExp(
      [
        String.raw`exports \(6\):`,
        String.raw`  a\\u200bb: func \(\) -> \(\)`,
        String.raw`  \\ufeffbom: func \(\) -> \(\)`,
        String.raw`  \\u3164filler: func \(\) -> \(\)`,
        String.raw`  tag\\udb40\\udc41: func \(\) -> \(\)`,
        String.raw`  vs\\ufe0f: func \(\) -> \(\)`,
        String.raw`  x{256}… \(1000 characters\): func \(\) -> \(\)`,
      ].join("\n"),
    ),
    noStderr: true,
  },
  "WASI's random_get needs random as well as wasi": {
    args: ["inspect", "tests/cli/fixtures/write_then_trap.wat"],
    code: 0,
    stdout: /\ncapabilities needed: wasi, random\n$/,
    noStderr: true,
  },
  "imported, shared and 64-bit memories, imported tables and custom sections": {
    args: ["inspect", "tests/cli/fixtures/layout.wat"],
    code: 0,
    stdout: new RegExp(
      [
        String.raw`  env\.host_log: func \(i32, i32, i32\) -> \(\)  \[\(none\)\]`,
        String.raw`  env\.host_now_ms: func \(\) -> \(i64\)  \[timer\]`,
        String.raw`  env\.double: func \(i32\) -> \(i32\)  \[call_host_function\]`,
        String
          .raw`  wasi_snapshot_preview1\.fd_write: func \(i32, i32, i32, i32\) -> \(i32\)  \[wasi\]`,
        String.raw`  env\.shared: memory`,
        String.raw`  env\.refs: table`,
        String.raw`exports \(3\):[^]*`,
        String.raw`memory 0 \(imported\): min 1, max 2, shared pages`,
        String.raw`memory 1: min 1, max 4 pages exported as memory, heap`,
        String.raw`table 0 \(imported\): externref, min 2, max none`,
        String.raw`table 1: funcref, min 3, max 10`,
        String.raw`custom section "notes": 5 bytes`,
        String.raw`capabilities needed: timer, call_host_function, wasi\n$`,
      ].join("\n"),
    ),
    noStderr: true,
  },
  "--json reports memories, tables and custom sections": {
    args: ["inspect", "tests/cli/fixtures/layout.wat", "--json"],
    code: 0,
    stdout:
      /"exportNames": \[\s*"memory",\s*"heap"\s*\],\s*"limits": "min 1, max 4"\s*\}[^]*"refType": "externref",\s*"limits": "min 2, max none"[^]*"customSections": \[\s*\{\s*"name": "notes",\s*"sizeBytes": 5\s*\}\s*\]/,
  },
  "lists tables": {
    args: ["inspect", "examples/rust_plugin/my_plugin.wasm"],
    code: 0,
    stdout: /^table 0: funcref, min 1, max 1$/m,
  },
  "--json prints a machine-readable report": {
    args: ["inspect", "examples/rust_plugin/my_plugin.wasm", "--json"],
    code: 0,
    stdout: /"name": "my_plugin"[\s\S]*"name": "process_data",\s*"kind": "function"/,
  },
  "a file that is not wasm is a compilation error": {
    args: ["inspect", "tests/fixtures/garbage.wasm"],
    code: 1,
    stderr: /^error: compilation: tests\/fixtures\/garbage\.wasm: Cannot compile module: .*\n$/,
  },
  "WAT text is compiled as WAT whatever the file is called": {
    args: ["call", "tests/cli/fixtures/big_table.wat.txt", "size", "--max-table-elements", "20000"],
    code: 0,
    stdout: /^20000\n$/,
  },
  "a missing file is an error, not a crash": {
    args: ["inspect", "tests/fixtures/nope.wasm"],
    code: 1,
    stderr: /^error: .*No such file/,
  },
  "a second file is bad usage": {
    args: ["inspect", "examples/wat/math.wat", "examples/wat/secure.wat"],
    code: 2,
    stderr: /^error: inspect takes one file, received "examples\/wat\/secure\.wat" too\n/,
  },
});

cliTest("call", {
  "a WAT file's bytes that are not UTF-8 stand for themselves, as in wat2wasm": {
    args: ["call", "tests/cli/fixtures/not_utf8.wat", "b0", "--isolation", "inline"],
    code: 0,
    stdout: /^255\n$/,
    noStderr: true,
  },
  "a binary module named .wat is a binary module": {
    args: ["call", "tests/cli/fixtures/binary_named.wat", "f", "--isolation", "inline"],
    code: 0,
    stdout: /^7\n$/,
    noStderr: true,
  },
  "prints the result": {
    args: ["call", "examples/wat/math.wat", "add", "10", "5"],
    code: 0,
    stdout: /^15\n$/,
    noStderr: true,
  },
  "--metrics prints the metrics too": {
    args: ["call", "examples/wat/math.wat", "factorial", "5", "--metrics"],
    code: 0,
    stdout: /^120\ncallCount: 1\nsuccessCount: 1\n/,
  },
  "--json prints results and metrics as JSON": {
    args: ["call", "examples/wat/math.wat", "mul", "6", "7", "--json", "--metrics"],
    code: 0,
    stdout: /"results": \[\s*42\s*\][\s\S]*"callCount": 1/,
  },
  "--isolation inline runs it on this thread": {
    args: ["call", "examples/wat/math.wat", "factorial", "10", "--isolation", "inline"],
    code: 0,
    stdout: /^3628800\n$/,
  },
  "a missing function is a plugin error": {
    args: ["call", "examples/wat/math.wat", "divide", "1", "2"],
    code: 1,
    stderr: /^error: invalid_function: Function not found: "divide"/,
  },
  "a wrong argument count is a plugin error": {
    args: ["call", "examples/wat/math.wat", "add", "1"],
    code: 1,
    stderr: /^error: type_mismatch: Cannot call "add": expected 2 arguments, received 1\n$/,
  },
  "--max-call-depth stops deep recursion": {
    args: ["call", "examples/wat/math.wat", "factorial", "200", "--max-call-depth", "100"],
    code: 1,
    stderr: /^error: call_depth_exceeded: /,
  },
  "--max-fuel stops a loop": {
    args: ["call", "tests/fixtures/spin.wat", "spin", "--max-fuel", "100000"],
    code: 1,
    stderr: /^error: fuel_exhausted: /,
  },
  "--timeout stops a loop": {
    args: [
      "call",
      "tests/fixtures/spin.wat",
      "spin",
      "--timeout",
      "100",
      "--max-fuel",
      "1000000000000",
    ],
    code: 1,
    stderr:
      /^error: timeout: Plugin execution timed out after 100 ms\nhint: a larger limit may be given with --timeout <ms>\n$/,
  },
  "--max-memory-pages below the module's minimum refuses it": {
    args: [
      "call",
      "examples/rust_plugin/my_plugin.wasm",
      "add",
      "1",
      "2",
      "--max-memory-pages",
      "16",
    ],
    code: 1,
    stderr: /^error: out_of_memory: .*17 pages/,
  },
  "--debug adds the stack": {
    args: ["call", "examples/wat/math.wat", "nope", "--debug"],
    code: 1,
    stderr: /^error: invalid_function: [\s\S]*InvalidFunctionError[\s\S]*\n\s+at /,
  },
  "--debug may come first": {
    args: ["--debug", "call", "examples/wat/math.wat", "nope"],
    code: 1,
    stderr: /\n\s+at /,
  },
  "an unknown capability is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "2", "--cap", "root"],
    code: 2,
    stderr: /Cannot grant capability "root"/,
  },
  "a limit that is not a positive integer is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "2", "--max-fuel", "0"],
    code: 2,
    stderr: /--max-fuel must be a positive integer/,
  },
  "--max-table-elements raises the tables' limit": {
    args: ["call", "tests/cli/fixtures/big_table.wat", "size", "--max-table-elements", "20000"],
    code: 0,
    stdout: /^20000\n$/,
  },
  "without it, a table above the default limit is refused": {
    args: ["call", "tests/cli/fixtures/big_table.wat", "size"],
    code: 1,
    stderr:
      /^error: resource_limit: .*maxTableElements = 10000\nhint: a larger limit may be given with --max-table-elements <n>\n$/,
  },
  "a start function out of fuel names the flag too": {
    args: ["call", "tests/cli/fixtures/start_spin.wat", "f", "--max-fuel", "1000"],
    code: 1,
    stderr:
      /^error: instantiation: .*\nhint: a larger limit may be given with --max-fuel <n\|none>\n$/,
  },
  "a call out of fuel names the flag that raises the budget": {
    args: [
      "call",
      "tests/fixtures/spin.wat",
      "spin",
      "--max-fuel",
      "1",
    ],
    code: 1,
    stderr:
      /^error: fuel_exhausted: .*\nhint: a larger limit may be given with --max-fuel <n\|none>\n$/,
  },
  "a limit that is not a whole number is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "2", "--timeout", "1e3"],
    code: 2,
    stderr: /--timeout must be a positive integer, received "1e3"/,
  },
  "more memory pages than a 32-bit memory has is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "2", "--max-memory-pages", "70000"],
    code: 2,
    stderr: /--max-memory-pages must be at most 65536, received "70000"/,
  },
});

cliTest("run", {
  "runs a WASI command: args, env, a preopened directory, its exit code": {
    args: [
      "run",
      "examples/c_wasi/c_wasi.wasm",
      "--dir",
      "examples/c_wasi/data:/data",
      "--env",
      "PROBE_PATHS=/data/../secret.txt",
      "--",
      "a",
      "b",
    ],
    code: 3,
    stdout:
      /^lines: 0\nargs: a b\ngreeting: Hello from the preopened \/data directory!\nprobe \/data\/\.\.\/secret\.txt: denied/,
  },
  "an exit code above 255 is 255, not the 0 a byte would make of 256": {
    args: ["run", "tests/cli/fixtures/exit_256.wat"],
    code: 255,
  },
  "output cut at 1 MiB is said so on stderr": {
    args: ["run", "tests/cli/fixtures/two_mib_output.wat"],
    code: 0,
    stderr: /^warning: the command's output was cut: a run keeps at most 1 MiB of each stream/,
  },
  "a command that fails prints what it wrote, then the error on a line of its own": {
    args: ["run", "tests/cli/fixtures/write_then_trap.wat"],
    code: 1,
    stdout: /^out$/,
    stderr: /^err\nerror: trap: /,
  },
  "without --dir the command cannot read its data": {
    args: ["run", "examples/c_wasi/c_wasi.wasm"],
    code: 1,
    stderr: /\/data\/greeting\.txt/,
  },
  "--max-fuel limits the command": {
    args: [
      "run",
      "examples/c_wasi/c_wasi.wasm",
      "--dir",
      "examples/c_wasi/data:/data",
      "--max-fuel",
      "1000",
    ],
    code: 1,
    stderr: /^error: fuel_exhausted: /,
  },
  "--max-fuel none sets no fuel budget": {
    args: [
      "run",
      "examples/c_wasi/c_wasi.wasm",
      "--dir",
      "examples/c_wasi/data:/data",
      "--max-fuel",
      "none",
    ],
    code: 3,
  },
  "a module that is not a command is a plugin error": {
    args: ["run", "examples/wat/math.wat"],
    code: 1,
    stderr: /^error: invalid_function: .*no "_start"/,
  },
  "a malformed --env is bad usage": {
    args: ["run", "examples/c_wasi/c_wasi.wasm", "--env", "NOVALUE"],
    code: 2,
    stderr: /--env must be KEY=VALUE/,
  },
  "a malformed --dir is bad usage": {
    args: ["run", "examples/c_wasi/c_wasi.wasm", "--dir", "a:b:c"],
    code: 2,
    stderr: /--dir must be <host>\[:<guest>\]\[:rw\], received "a:b:c"/,
  },
});

cliTest("bench", {
  "prints a summary table": {
    args: ["bench", "examples/wat/math.wat", "add", "1", "2", "--iterations", "200"],
    code: 0,
    stdout:
      /\| add \(worker\) \| µs per call \|[\s\S]*\| p99 \| [\d.]+ \|[\s\S]*calls\/s over 200 calls/,
    noStderr: true,
  },
  "--json prints the summary as JSON": {
    args: ["bench", "examples/wat/math.wat", "sub", "1", "-2", "--iterations", "100", "--json"],
    code: 0,
    stdout: /"iterations": 100[\s\S]*"p50Us"/,
  },
  "--iterations must be a positive integer": {
    args: ["bench", "examples/wat/math.wat", "add", "--iterations", "0"],
    code: 2,
    stderr: /--iterations must be a positive integer/,
  },
  "--iterations has a bound: each keeps a sample": {
    args: ["bench", "examples/wat/math.wat", "add", "--iterations", "9007199254740991"],
    code: 2,
    stderr: /--iterations must be at most 100000000, received "9007199254740991"/,
  },
});

Deno.test("wasmplug inspect escapes the module's name, taken from its file's", {
  permissions: { read: true, write: true },
}, async () => {
  // The first line printed it raw: a file name could clear the screen or turn the line around.
  const dir = await Deno.makeTempDir({ prefix: "wasmplug_named_" });
  try {
    const file = `${dir}/na\u202eme\u001b[2J.wat`;
    await Deno.writeTextFile(file, "(module)");
    const output = await cli(["inspect", file]);
    assert.equal(output.code, 0, shown(output));
    assert.match(output.stdout, /^na\\u202eme\\u001b\[2J: 8 bytes/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

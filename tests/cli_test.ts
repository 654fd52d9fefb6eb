import assert from "node:assert/strict";
import { runDeno } from "./_helpers.ts";

const CLI = ["run", "--unstable-worker-options", "--allow-read", "cli.ts"];
const PERMISSIONS: Deno.PermissionOptionsObject = { run: [Deno.execPath()], read: true };

interface Case {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout?: RegExp;
  readonly stderr?: RegExp;
  readonly noStderr?: boolean;
}

function cliTest(name: string, cases: Record<string, Case>): void {
  Deno.test({
    name: `wasmplug ${name}`,
    permissions: PERMISSIONS,
    async fn(t) {
      for (const [what, expected] of Object.entries(cases)) {
        await t.step(what, async () => {
          const { code, stdout, stderr } = await runDeno([...CLI, ...expected.args]);
          const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
          assert.equal(code, expected.code, output);
          if (expected.stdout) assert.match(stdout, expected.stdout, output);
          if (expected.stderr) assert.match(stderr, expected.stderr, output);
          if (expected.noStderr) assert.equal(stderr, "", output);
          if (!expected.args.includes("--debug")) {
            assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace without --debug");
          }
        });
      }
    },
  });
}

cliTest("--help, --version and bad usage", {
  "--help prints the usage": { args: ["--help"], code: 0, stdout: /Usage:\n {2}wasmplug inspect/ },
  "-h is --help": { args: ["-h"], code: 0, stdout: /wasmplug call <file> <function>/ },
  "--version prints the version": {
    args: ["--version"],
    code: 0,
    stdout: /^wasmplug \d+\.\d+\.\d+\n$/,
  },
  "no command is bad usage": { args: [], code: 2, stdout: /Usage:/ },
  "an unknown command is bad usage": {
    args: ["frobnicate"],
    code: 2,
    stderr: /^error: unknown command "frobnicate"\n[\s\S]*Usage:/,
  },
  "an unknown flag is bad usage": {
    args: ["inspect", "x.wat", "--bogus"],
    code: 2,
    stderr: /error: .*--bogus/,
  },
  "inspect without a file is bad usage": {
    args: ["inspect"],
    code: 2,
    stderr: /inspect needs a file/,
  },
});

cliTest("inspect", {
  "lists imports with their capabilities, exports, memories and what it needs": {
    args: ["inspect", "examples/wat/secure.wat"],
    code: 0,
    stdout:
      /secure: 275 bytes, sha256 [0-9a-f]{64}\n[\s\S]*env\.host_get_config: func \(i32, i32, i32, i32\) -> \(i32\) {2}\[read_config\][\s\S]*memory 0: min 1, max none pages exported as memory\ncapabilities needed: read_config, write_state, network\n$/,
    noStderr: true,
  },
  "--json prints a machine-readable report": {
    args: ["inspect", "examples/rust_plugin/my_plugin.wasm", "--json"],
    code: 0,
    stdout: /"name": "my_plugin"[\s\S]*"name": "process_data",\s*"kind": "function"/,
  },
  "a file that is not wasm is a compilation error": {
    args: ["inspect", "tests/fixtures/garbage.wasm"],
    code: 1,
    stderr: /^error: compilation: Cannot compile module: .*\n$/,
  },
  "a missing file is an error, not a crash": {
    args: ["inspect", "tests/fixtures/nope.wasm"],
    code: 1,
    stderr: /^error: .*No such file/,
  },
});

cliTest("call", {
  "prints the result": {
    args: ["call", "examples/wat/math.wat", "add", "10", "5"],
    code: 0,
    stdout: /^15\n$/,
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
  "--isolation worker runs it in a worker": {
    args: ["call", "examples/wat/math.wat", "factorial", "10", "--isolation", "worker"],
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
  "an argument that is not a number is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "two"],
    code: 2,
    stderr: /argument "two" is not a number/,
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
    stderr: /^error: timeout: Plugin execution timed out after 100 ms\n$/,
  },
  "--debug adds the stack": {
    args: ["call", "examples/wat/math.wat", "nope", "--debug"],
    code: 1,
    stderr: /^error: invalid_function: [\s\S]*InvalidFunctionError[\s\S]*\n\s+at /,
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
  "an unknown isolation is bad usage": {
    args: ["call", "examples/wat/math.wat", "add", "1", "2", "--isolation", "vm"],
    code: 2,
    stderr: /--isolation must be "worker" or "inline"/,
  },
  "call without a function is bad usage": {
    args: ["call", "examples/wat/math.wat"],
    code: 2,
    stderr: /call needs a file and a function name/,
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
  "without --dir the command cannot read its data": {
    args: ["run", "examples/c_wasi/c_wasi.wasm"],
    code: 1,
    stderr: /\/data\/greeting\.txt/,
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
  "run without a file is bad usage": { args: ["run"], code: 2, stderr: /run needs a file/ },
});

cliTest("bench", {
  "prints a summary table": {
    args: ["bench", "examples/wat/math.wat", "add", "1", "2", "--iterations", "200"],
    code: 0,
    stdout:
      /\| add \(inline\) \| µs per call \|[\s\S]*\| p99 \| [\d.]+ \|[\s\S]*calls\/s over 200 calls/,
    noStderr: true,
  },
  "--json prints the summary as JSON": {
    args: ["bench", "examples/wat/math.wat", "add", "1", "2", "--iterations", "100", "--json"],
    code: 0,
    stdout: /"iterations": 100[\s\S]*"p50Us"/,
  },
  "--iterations must be a positive integer": {
    args: ["bench", "examples/wat/math.wat", "add", "--iterations", "0"],
    code: 2,
    stderr: /--iterations must be a positive integer/,
  },
});

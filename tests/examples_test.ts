import assert from "node:assert/strict";
import { main as capabilities } from "../examples/capabilities.ts";
import { main as cPlugin } from "../examples/c_plugin.ts";
import { main as cWasi } from "../examples/c_wasi.ts";
import { main as rustPlugin } from "../examples/rust_plugin.ts";
import { main as errorHandling } from "../examples/error_handling.ts";
import { main as globalsCounter } from "../examples/globals_counter.ts";
import { main as indirectCalls } from "../examples/indirect_calls.ts";
import { main as linkerLog } from "../examples/linker_log.ts";
import { main as managerTour } from "../examples/manager_tour.ts";
import { main as mathPlugin } from "../examples/math_plugin.ts";
import { main as memoryPlugin } from "../examples/memory_plugin.ts";
import { main as metrics } from "../examples/metrics.ts";
import { DENO, runDeno } from "./_helpers.ts";

type Example = (print: (line: string) => void) => Promise<void>;

/** Runs an example and returns the lines it printed. */
async function run(example: Example): Promise<string[]> {
  const lines: string[] = [];
  await example((line) => void lines.push(line));
  return lines;
}

/** Asserts that `expected` appear in `lines`, in that order (a RegExp matches a whole line). */
function assertLinesInOrder(
  lines: readonly string[],
  expected: readonly (string | RegExp)[],
): void {
  let at = 0;
  for (const want of expected) {
    const found = lines.findIndex((line, i) =>
      i >= at && (typeof want === "string" ? line === want : want.test(line))
    );
    assert.ok(found >= 0, `missing ${want} after line ${at} in:\n${lines.join("\n")}`);
    at = found + 1;
  }
}

const EXAMPLES: [string, Example, (string | RegExp)[]][] = [
  ["math_plugin", mathPlugin, [
    "Compiled module: math-module",
    /^Size: \d+ bytes$/,
    /^Compile time: \d+\.\d\dms$/,
    "10 + 5 = 15",
    "10 - 5 = 5",
    "10 * 5 = 50",
    "5! = 120",
    "State: stopped",
  ]],
  ["memory_plugin", memoryPlugin, [
    "Memory size: 1 page(s) (64KB)",
    "Read value: 42",
    "Host read: 42",
    /^Out of bounds: Memory access out of bounds: 2 bytes at offset 65535/,
  ]],
  ["globals_counter", globalsCounter, [
    "increment -> 1",
    "increment -> 2",
    "increment -> 3",
    "get -> 3",
    "after reset -> 0",
  ]],
  ["indirect_calls", indirectCalls, [
    "table[0](6, 7) = 13",
    "table[1](6, 7) = 42",
    /^table\[2\] traps: .*out of bounds/,
  ]],
  ["linker_log", linkerLog, [
    "Plugin log: 21",
    "Plugin log: 42",
    /^Without CallHostFunction: Capability denied: .*"call_host_function"/,
  ]],
  ["metrics", metrics, [
    "Total calls: 5",
    "Success count: 5",
    "Failed count: 0",
    /^Avg execution time: \d+ns$/,
    /^Total execution time: \d+ns$/,
  ]],
  ["capabilities", capabilities, [
    "Capabilities: read_config, write_state, call_host_function",
    "Greeting length: 13",
    'Network denied: missing "network"',
  ]],
  ["error_handling", errorHandling, [
    "Result: 3628800",
    "Function not found: divide",
    'Error: Cannot call "add": expected 2 arguments, received 1',
    /^Loading greedy: out_of_memory: .*32 pages, above the limit maxMemoryPages = 16$/,
  ]],
  ["manager_tour", managerTour, [
    "Loaded plugin: plugin-1",
    "Loaded plugin: plugin-2",
    "Greeting length: 13",
    "6 * 7 = 42",
    'Loaded plugins: ["plugin-1","plugin-2"]',
    "State: ready",
    "Calls: 1",
    "Active plugins: 2",
    "Total calls: 2",
    "After unloadAll: 0 active",
    "Events:",
    '  loaded plugin-1 {"name":"greeter"}',
    '  initialized plugin-1 {"name":"greeter"}',
    /^ {2}executed plugin-1 \{"function":"greet_len",.*"success":true\}$/,
    /^ {2}executed plugin-2 \{"function":"mul",.*"success":true\}$/,
    '  unloaded plugin-1 {"name":"greeter"}',
    '  unloaded plugin-2 {"name":"math"}',
  ]],
  ["rust_plugin", rustPlugin, [
    /^Compiled my_plugin: \d+ bytes$/,
    "add(2, 3) = 5",
    'process_data("Hello, World!") = 13',
    'handle({ greeting: "hi" }) = {"ok":true,"bytes":17,"echo":{"greeting":"hi"}}',
  ]],
  ["c_plugin", cPlugin, [
    'process_data("Hello, World!") = 0x1f9e046a (Adler-32)',
    "  [info] transform: upper-cased the input",
    'transform("Hello, World!") = C says: HELLO, WORLD!',
  ]],
  ["c_wasi", cWasi, [
    "HELLO FROM THE HOST",
    "lines: 2",
    "greeting: Hello from the preopened /data directory!",
    /^probe \/data\/\.\.\/secret\.txt: denied/,
    /^probe \/etc\/hostname: denied/,
    "exit code: 3",
  ]],
];

Deno.test("The guide's examples print what the guide shows", {
  permissions: { read: ["examples"] },
}, async (t) => {
  for (const [name, example, expected] of EXAMPLES) {
    await t.step(`examples/${name}.ts`, async () => {
      assertLinesInOrder(await run(example), expected);
    });
  }
});

Deno.test("deno task demo runs the math plugin and the manager tour", {
  permissions: { run: [DENO] },
}, async () => {
  const { code, stdout, stderr } = await runDeno([
    "run",
    "--allow-read=examples",
    "examples/demo.ts",
  ]);
  assert.equal(code, 0, stderr);
  assertLinesInOrder(stdout.split("\n"), [
    "== Math plugin ==",
    "10 + 5 = 15",
    "5! = 120",
    "State: stopped",
    "== Plugin manager ==",
    "Greeting length: 13",
    "After unloadAll: 0 active",
  ]);
});

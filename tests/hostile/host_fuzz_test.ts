/**
 * Hostile host-function arguments: every built-in `env` function of ABI.md
 * (logging, config, storage, messages, tools, fetch, time, randomness),
 * called thousands of times with pointers and lengths drawn to hurt (at and
 * past the end of memory, wrapping around 2^32, negative) or to make sense
 * (keys, tool names and JSON the module holds), every capability granted.
 * Every call answers or fails with a typed `WasmError`, within the bound of
 * hostile calls; what reaches the host stays within its documented bounds
 * (messages, log records, storage); and the plugin still answers
 * afterwards. More rounds: `WASMPLUG_FUZZ_CASES=5000`.
 */
import assert from "node:assert/strict";
import { Capability, type PluginMessage, WasmError } from "../../mod.ts";
import { MAX_LOG_RECORD_BYTES, MAX_MESSAGE_BYTES } from "../../src/host/_services.ts";
import { FUZZ_ENV, fuzzSettings } from "../fuzz/_settings.ts";
import { random } from "../instrument/_random_program.ts";
import { HOST_FUNCTIONS, type HostFunctionName, hostFunctionsWat } from "../fixtures/wat.ts";
import { testEachIsolation } from "../_helpers.ts";
import { BOUND_MS } from "./_within.ts";

const PAGE = 65536;
/** What the module's memory holds at 0, for the draws that make sense. */
const STRINGS = ["k", "echo", "fail", "{}", '{"a":[1,2,3]}', '{"url":"http://127.0.0.1:9/"}', "é"];
/** The most storage the plugin may hold. */
const MAX_STORAGE_BYTES = 64 * 1024;

/** Where a string is in memory. */
interface Span {
  readonly ptr: number;
  readonly len: number;
}

/** {@linkcode STRINGS} laid out from 0, 8 bytes apart, and where each is. */
function layStrings(): { bytes: Uint8Array; spans: Span[] } {
  const encoder = new TextEncoder();
  const parts = STRINGS.map((text) => encoder.encode(text));
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length + 8, 0));
  const spans: Span[] = [];
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    spans.push({ ptr: at, len: part.length });
    at += part.length + 8;
  }
  return { bytes, spans };
}

/** Draws i32 arguments from `next`: one call in two coherent, one in two hostile. */
function argumentDraws(
  next: () => number,
  strings: readonly Span[],
): (name: HostFunctionName) => number[] {
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(values: readonly T[]): T => values[int(values.length)]!;
  const hostile = (): number =>
    pick([
      0,
      1,
      16,
      1024,
      PAGE - 1,
      PAGE - 8,
      PAGE,
      PAGE + 1,
      -1,
      -16,
      0x7fffffff,
      int(2 ** 32) | 0,
    ]);
  return (name: HostFunctionName): number[] => {
    const count = HOST_FUNCTIONS[name].params;
    const args = Array.from({ length: count }, hostile);
    if (name === "host_sleep_ms") return [int(50) === 0 ? hostile() : int(2)];
    if (int(2) === 0) return args;
    // Each (ptr, len) pair of the coherent draws names one of the strings; outputs go to 4096.
    for (let i = 0; i + 1 < count; i += 2) {
      const span = pick(strings);
      args[i] = span.ptr;
      args[i + 1] = span.len;
    }
    if (name === "host_log") return [int(5), args[0]!, args[1]!];
    if (name === "host_random_bytes") return [4096 + int(4096), int(2048)];
    if (count === 4 && name !== "host_set_config" && name !== "host_storage_set") {
      args[2] = 4096;
      args[3] = int(64);
    }
    if (name === "host_set_config" || name === "host_storage_set") args[3] = int(256);
    if (name === "host_call_tool") [args[4], args[5]] = [4096, int(64)];
    return args;
  };
}

testEachIsolation("Hostile: random arguments to every env host function", {
  permissions: { env: FUZZ_ENV },
}, async (t, { isolation, createRuntime }) => {
  const { cases, seed } = fuzzSettings({ cases: isolation === "inline" ? 600 : 200, seed: 0x4057 });
  await using runtime = createRuntime();
  runtime.registerTool("echo", (args) => args);
  runtime.registerTool("fail", () => {
    throw new Error("the tool failed");
  });
  const names = Object.keys(HOST_FUNCTIONS) as HostFunctionName[];
  const wat = hostFunctionsWat(...names).replace(
    /\)$/,
    `\n  (func (export "ok") (result i32) i32.const 1))`,
  );
  const messages: PluginMessage[] = [];
  const logged: string[] = [];
  await using plugin = await runtime.createPluginFromWat(wat, {
    capabilities: Object.values(Capability),
    config: { k: "v" },
    onMessage: (message) => messages.push(message),
    onLog: (entry) => logged.push(entry.message),
    resourceLimits: { maxExecutionTimeMs: 200, maxStorageBytes: MAX_STORAGE_BYTES },
  });
  const { bytes, spans } = layStrings();
  await plugin.writeMemory(0, bytes);
  const draw = argumentDraws(random(seed), spans);

  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  for (let round = 0; round < cases; round++) {
    for (const name of names) {
      const args = draw(name);
      const call = `${name}(${args.join(", ")})`;
      const start = performance.now();
      let outcome: string;
      try {
        await plugin.call(name, args);
        outcome = "answered";
      } catch (err) {
        outcome = err instanceof WasmError ? err.kind : "untyped";
        if (!(err instanceof WasmError)) problems.push(`${call} threw ${String(err)}`);
      }
      const elapsed = performance.now() - start;
      if (elapsed > BOUND_MS) problems.push(`${call} took ${elapsed.toFixed(0)} ms`);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  }

  await t.step("every call answers or fails with a typed error, in time", () => {
    assert.deepEqual(problems, []);
    assert.ok((outcomes.get("answered") ?? 0) > cases, JSON.stringify([...outcomes]));
    assert.ok(
      (outcomes.get("memory_out_of_bounds") ?? 0) > cases / 4,
      JSON.stringify([...outcomes]),
    );
  });

  await t.step("what reached the host stays within its bounds", () => {
    assert.ok(messages.length > 0 && logged.length > 0);
    for (const message of messages) {
      assert.ok(message.to.length + message.data.length <= MAX_MESSAGE_BYTES);
    }
    const note = 100; // "… (N more bytes dropped)" after a cut record
    for (const entry of logged) assert.ok(entry.length <= MAX_LOG_RECORD_BYTES + note);
  });

  await t.step("the plugin still answers", async () => {
    assert.equal(await plugin.callI32("ok"), 1);
  });
});

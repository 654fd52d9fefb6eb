/**
 * Hostile guests that make the host hold or do a lot on their behalf through
 * the built-in host functions. Each has its bound (storage is in
 * `storage_quota_test.ts`):
 *
 * - a `host_log` record keeps its first `MAX_LOG_RECORD_BYTES` (16 KiB), the
 *   rest is dropped and the record says so;
 * - a `host_send_message` payload is at most `MAX_MESSAGE_BYTES` (64 KiB);
 * - `host_call_tool` arguments, `host_http_fetch` requests and fetched
 *   response bodies are at most `MAX_HOST_CALL_BYTES` (16 MiB);
 * - `host_sleep_ms` ends at the call's deadline, when the call is aborted, or when
 *   the plugin stops with `abort` (a plain `stop()` waits for the call, up to its deadline);
 * - `host_http_fetch` never makes Deno ask the operator for a permission.
 */
import assert from "node:assert/strict";
import { Capability, HostFunctionError, type PluginMessage, TimeoutError } from "../../mod.ts";
import {
  MAX_HOST_CALL_BYTES,
  MAX_LOG_RECORD_BYTES,
  MAX_MESSAGE_BYTES,
} from "../../src/host/_services.ts";
import {
  assertRejectsWith,
  capturePluginLogs,
  delay,
  loadPlugin,
  putString,
  testEachIsolation,
  textOf,
} from "../_helpers.ts";
import { hostFunctionsWat } from "../fixtures/wat.ts";
import { within } from "./_within.ts";

const PAGES = 260;

/** Every host function, with room for more than 16 MiB of guest data. */
const WAT = hostFunctionsWat(
  "host_log",
  "host_send_message",
  "host_call_tool",
  "host_http_fetch",
  "host_sleep_ms",
).replace('(memory (export "memory") 1)', `(memory (export "memory") ${PAGES})`);

const RUNTIME = { resourceLimits: { maxMemoryPages: PAGES } };

testEachIsolation("host_log keeps the first 16 KiB of a record", {
  permissions: "none",
}, async (_t, kit) => {
  await using logs = await capturePluginLogs();
  const entries: string[] = [];
  await using loaded = await kit.loadPlugin(WAT, {
    name: "loud",
    onLog: (entry) => entries.push(entry.message),
  }, RUNTIME);
  const size = 1024 * 1024;
  await loaded.plugin.writeMemory(0, new Uint8Array(size).fill(0x61));
  await loaded.plugin.callVoid("host_log", [1, 0, size]);
  const note = `… (${size - MAX_LOG_RECORD_BYTES} more bytes dropped)`;
  assert.deepEqual(entries, ["a".repeat(MAX_LOG_RECORD_BYTES) + note]);
  assert.equal(logs.records.length, 1);
  // A record within the bound is as it was.
  await loaded.plugin.callVoid("host_log", [1, 0, MAX_LOG_RECORD_BYTES]);
  assert.equal(entries[1], "a".repeat(MAX_LOG_RECORD_BYTES));
  // Bytes that are no UTF-8 count as the guest's bytes: each one kept is a U+FFFD (the host's
  // second look cut them again to 5 461, and its note counted 32 800 bytes dropped).
  await loaded.plugin.writeMemory(0, new Uint8Array(size).fill(0xff));
  await loaded.plugin.callVoid("host_log", [1, 0, size]);
  assert.equal(entries[2], "\ufffd".repeat(MAX_LOG_RECORD_BYTES) + note);
});

testEachIsolation("host_send_message refuses a payload over 64 KiB", {
  permissions: "none",
}, async (_t, kit) => {
  const messages: PluginMessage[] = [];
  await using loaded = await kit.loadPlugin(WAT, {
    capabilities: [Capability.SendMessage],
    onMessage: (message) => messages.push(message),
  }, RUNTIME);
  const { plugin } = loaded;
  const [to, toLen] = await putString(plugin, 0, "peer");
  const error = await assertRejectsWith(
    () => plugin.callI32("host_send_message", [to, toLen, 1024, MAX_MESSAGE_BYTES]),
    HostFunctionError,
    { functionName: "host_send_message" },
  );
  assert.match(error.message, /above the bound MAX_MESSAGE_BYTES = 65536/);
  assert.equal(messages.length, 0);
  const fits = MAX_MESSAGE_BYTES - toLen;
  assert.equal(await plugin.callI32("host_send_message", [to, toLen, 1024, fits]), 0);
  assert.equal(messages.length, 1);
  assert.equal(messages[0]!.data.length, fits);
});

testEachIsolation("host_call_tool refuses arguments over 16 MiB", {
  permissions: "none",
}, async (_t, kit) => {
  let calls = 0;
  await using runtime = kit.createRuntime(RUNTIME);
  runtime.registerTool("echo", (args) => {
    calls++;
    return args;
  });
  await using plugin = await runtime.createPluginFromWat(WAT, {
    capabilities: [Capability.CallTool],
  });
  const [name, nameLen] = await putString(plugin, 0, "echo");
  await within(async () => {
    await assertRejectsWith(
      () => plugin.callI32("host_call_tool", [name, nameLen, 64, MAX_HOST_CALL_BYTES, 0, 0]),
      HostFunctionError,
      { functionName: "host_call_tool" },
    );
  });
  assert.equal(calls, 0);
  const [args, argsLen] = await putString(plugin, 64, "[1,2]");
  assert.equal(await plugin.callI32("host_call_tool", [name, nameLen, args, argsLen, 0, 0]), 5);
  assert.equal(calls, 1);
});

testEachIsolation("host_http_fetch reads at most 16 MiB of a response body", {
  permissions: { net: ["127.0.0.1"] },
}, async (_t, kit) => {
  const big = new Uint8Array(MAX_HOST_CALL_BYTES + 1).fill(0x62);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => new Response(new URL(request.url).pathname === "/big" ? big : "small"),
  );
  const host = `127.0.0.1:${server.addr.port}`;
  await using loaded = await kit.loadPlugin(WAT, {
    capabilities: [Capability.NetworkAccess],
    allowedHosts: [host],
  }, RUNTIME);
  const fetchText = async (path: string): Promise<string> => {
    const [ptr, len] = await putString(
      loaded.plugin,
      0,
      JSON.stringify({ url: `http://${host}${path}` }),
    );
    const length = await loaded.plugin.callI32("host_http_fetch", [ptr, len, 1024, 65_536]);
    return JSON.parse(textOf(await loaded.plugin.readMemory(1024, length))).body;
  };
  const error = await assertRejectsWith(() => fetchText("/big"), HostFunctionError, {
    functionName: "host_http_fetch",
  });
  assert.match(
    error.message,
    /The response body is \d+ bytes, above the bound MAX_HOST_CALL_BYTES/,
  );
  assert.equal(await fetchText("/small"), "small");
});

// Inline only: a worker's net permission is its allowedHosts, or it does not start
// (`tests/worker/permissions_test.ts`).
Deno.test("host_http_fetch refuses what Deno would have to ask the operator for (inline)", {
  permissions: "none",
}, async () => {
  // allowedHosts lets the guest ask, but the process has no net permission.
  await using loaded = await loadPlugin(WAT, {
    capabilities: [Capability.NetworkAccess],
    allowedHosts: ["127.0.0.1:9"],
  }, RUNTIME);
  const { plugin } = loaded;
  const [ptr, len] = await putString(plugin, 0, JSON.stringify({ url: "http://127.0.0.1:9/" }));
  const error = await assertRejectsWith(
    () => plugin.callI32("host_http_fetch", [ptr, len, 1024, 1024]),
    HostFunctionError,
    { functionName: "host_http_fetch" },
  );
  assert.ok(error.cause instanceof Deno.errors.NotCapable, `cause: ${error.cause}`);
  assert.match(error.message, /Deno does not grant net \(127\.0\.0\.1:9\)/);
});

testEachIsolation("host_sleep_ms ends at the call's deadline, on abort and on stop({ abort })", {
  permissions: "none",
}, async (t, kit) => {
  await using loaded = await kit.loadPlugin(WAT, { capabilities: [Capability.Timer] }, RUNTIME);
  const { plugin } = loaded;

  await t.step("a 60 s sleep ends at a 200 ms deadline", async () => {
    await within(async () => {
      await assertRejectsWith(
        () => plugin.callVoid("host_sleep_ms", [60_000], { timeoutMs: 200 }),
        TimeoutError,
      );
    });
    await plugin.callVoid("host_sleep_ms", [1]);
  });

  await t.step("a 60 s sleep ends when its call is aborted", async () => {
    const controller = new AbortController();
    const sleeping = plugin.callVoid("host_sleep_ms", [60_000], { signal: controller.signal });
    sleeping.catch(() => {});
    await delay(50);
    await within(async () => {
      controller.abort(new Error("enough"));
      await assert.rejects(sleeping, /enough/);
    });
    await plugin.callVoid("host_sleep_ms", [1]);
  });

  await t.step("a 60 s sleep ends when the plugin stops with abort", async () => {
    const sleeping = plugin.callVoid("host_sleep_ms", [60_000]);
    sleeping.catch(() => {});
    await delay(50);
    await within(async () => {
      await plugin.stop({ abort: true });
      await assert.rejects(sleeping);
    });
  });
});

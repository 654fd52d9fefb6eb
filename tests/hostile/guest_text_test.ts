/**
 * Hostile guests that hand the host garbage text: bytes that are not UTF-8
 * and "JSON" that is not JSON, through every host function that decodes
 * guest text. Text is decoded leniently (an invalid sequence becomes U+FFFD,
 * as `TextDecoder` does), bytes stay bytes, and JSON that does not parse is
 * a HostFunctionError caused by the parser's SyntaxError. The same plugin
 * answers the next call. (What `callJson()` does with a guest's garbage
 * output is in `abi_test.ts`.)
 */
import assert from "node:assert/strict";
import {
  Capability,
  CompilationError,
  HostFunctionError,
  type PluginLogEntry,
  type PluginMessage,
  TrapError,
  type WasmPlugin,
} from "../../mod.ts";
import { assertRejectsWith, bytesOf, testEachIsolation, textOf } from "../_helpers.ts";
import { HOST_FUNCTIONS, type HostFunctionName, hostFunctionsWat } from "../fixtures/wat.ts";
import { HEADER, leb } from "../instrument/_wasm.ts";

/** "hi", a stray byte, an overlong NUL, an encoded surrogate, "!": nothing valid after "hi". */
const INVALID = new Uint8Array([0x68, 0x69, 0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x21]);
/** What a lenient decoder makes of {@linkcode INVALID}. */
const DECODED = new TextDecoder().decode(INVALID);
/** Another invalid sequence that decodes to the same text as {@linkcode INVALID}. */
const COLLIDING = new Uint8Array([0x68, 0x69, 0xfe, 0xc1, 0x81, 0xed, 0xbf, 0xbf, 0x21]);

/** Where the tests put the guest's text, and where host functions answer. */
const A = 0;
const B = 256;
const OUT = 1024;
const OUT_CAP = 4096;

/** Every built-in, re-exported, plus `ok`, with a memory of `pages` pages. */
function allHostFunctionsWat(pages = 1): string {
  const names = Object.keys(HOST_FUNCTIONS) as HostFunctionName[];
  return hostFunctionsWat(...names)
    .replace(`(memory (export "memory") 1)`, `(memory (export "memory") ${pages})`)
    .replace(/\)$/, `\n  (func (export "ok") (result i32) i32.const 1))`);
}

/** Writes `bytes` at `ptr` and returns `[ptr, length]` for a host function's arguments. */
async function put(plugin: WasmPlugin, ptr: number, bytes: Uint8Array): Promise<[number, number]> {
  await plugin.writeMemory(ptr, bytes);
  return [ptr, bytes.length];
}

testEachIsolation("Hostile: text that is not UTF-8, through every host function", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  const logs: PluginLogEntry[] = [];
  const messages: PluginMessage[] = [];
  await using loaded = await loadPlugin(allHostFunctionsWat(), {
    name: "garbage",
    capabilities: Object.values(Capability),
    onLog: (entry) => void logs.push(entry),
    onMessage: (message) => void messages.push(message),
  });
  const { runtime, plugin } = loaded;
  const tools: unknown[] = [];
  runtime.registerTool("echo", (args) => {
    tools.push(args);
    return args;
  });

  await t.step(
    "host_log: invalid sequences become U+FFFD and the record is delivered",
    async () => {
      await plugin.callVoid("host_log", [1, ...await put(plugin, A, INVALID)]);
      assert.equal(logs.at(-1)?.message, DECODED);
      assert.ok(DECODED.startsWith("hi\uFFFD") && DECODED.endsWith("\uFFFD!"), DECODED);
      assert.equal(logs.at(-1)?.level, "info");
      assert.equal(await plugin.callI32("ok"), 1);
    },
  );

  await t.step("host_log: a level outside 0..3 is clamped to debug or error", async () => {
    const text = await put(plugin, A, bytesOf("level"));
    for (
      const [level, expected] of [[-1, "debug"], [4, "error"], [2 ** 31 - 1, "error"]] as const
    ) {
      await plugin.callVoid("host_log", [level, ...text]);
      assert.equal(logs.at(-1)?.level, expected, `level ${level}`);
    }
  });

  await t.step(
    "host_send_message: the recipient is decoded leniently, the payload is bytes",
    async () => {
      const to = await put(plugin, A, INVALID);
      const payload = await put(plugin, B, INVALID);
      assert.equal(await plugin.callI32("host_send_message", [...to, ...payload]), 0);
      assert.equal(messages.at(-1)?.to, DECODED);
      assert.deepEqual(messages.at(-1)?.data, INVALID);
    },
  );

  await t.step("host_set_config: keys and values are decoded leniently", async () => {
    const key = await put(plugin, A, INVALID);
    const value = await put(plugin, B, INVALID);
    assert.equal(await plugin.callI32("host_set_config", [...key, ...value]), 0);
    const length = await plugin.callI32("host_get_config", [...key, OUT, OUT_CAP]);
    assert.equal(textOf(await plugin.readMemory(OUT, length)), DECODED);
    // Lossy: another invalid key that decodes to the same text names the same entry.
    const other = await put(plugin, A, COLLIDING);
    assert.equal(await plugin.callI32("host_get_config", [...other, OUT, OUT_CAP]), length);
  });

  await t.step(
    "host_storage_set: the key is decoded leniently, the value comes back byte for byte",
    async () => {
      const key = await put(plugin, A, INVALID);
      const value = await put(plugin, B, INVALID);
      assert.equal(await plugin.callI32("host_storage_set", [...key, ...value]), 0);
      const length = await plugin.callI32("host_storage_get", [...key, OUT, OUT_CAP]);
      assert.deepEqual(await plugin.readMemory(OUT, length), INVALID);
      const other = await put(plugin, A, COLLIDING);
      assert.equal(await plugin.callI32("host_storage_get", [...other, OUT, OUT_CAP]), length);
    },
  );

  await t.step("host_call_tool: a tool name that is not UTF-8 names no tool (-1)", async () => {
    const name = await put(plugin, A, INVALID);
    const args = await put(plugin, B, bytesOf("{}"));
    assert.equal(await plugin.callI32("host_call_tool", [...name, ...args, OUT, OUT_CAP]), -1);
    assert.equal(tools.length, 0);
  });

  await t.step(
    "host_call_tool: invalid UTF-8 inside a JSON string reaches the tool as U+FFFD",
    async () => {
      const name = await put(plugin, A, bytesOf("echo"));
      const quoted = new Uint8Array([0x22, ...INVALID, 0x22]);
      const args = await put(plugin, B, quoted);
      const length = await plugin.callI32("host_call_tool", [...name, ...args, OUT, OUT_CAP]);
      assert.equal(tools.at(-1), DECODED);
      assert.equal(JSON.parse(textOf(await plugin.readMemory(OUT, length))), DECODED);
    },
  );

  await t.step("host_http_fetch: a request that is not UTF-8 is a HostFunctionError", async () => {
    const request = await put(plugin, A, INVALID);
    const error = await assertRejectsWith(
      () => plugin.callI32("host_http_fetch", [...request, OUT, OUT_CAP]),
      HostFunctionError,
      { module: "env", functionName: "host_http_fetch" },
    );
    assert.ok(error.cause instanceof SyntaxError, `cause: ${error.cause}`);
    assert.equal(await plugin.callI32("ok"), 1);
  });
});

/** Arguments that are not JSON, and the guest's bytes for them. */
const NOT_JSON: readonly [string, Uint8Array][] = [
  ["nothing at all", new Uint8Array()],
  ["a truncated object", bytesOf('{"a":')],
  ["a bare word", bytesOf("undefined")],
  ["trailing garbage", bytesOf("{} x")],
  ["a NUL inside an object", new Uint8Array([0x7b, 0x00, 0x7d])],
  ["invalid UTF-8 outside a string", INVALID],
  ["single quotes", bytesOf("{'a':1}")],
  ["an unterminated 100 000-deep array", bytesOf("[".repeat(100_000))],
];

testEachIsolation("Hostile: JSON that is not JSON, through host_call_tool and host_http_fetch", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await using loaded = await loadPlugin(allHostFunctionsWat(8), {
    capabilities: [Capability.CallTool, Capability.NetworkAccess],
  });
  const { runtime, plugin } = loaded;
  const calls: unknown[] = [];
  runtime.registerTool("echo", (args) => {
    calls.push(args);
    return args;
  });
  const name = await put(plugin, A, bytesOf("echo"));

  for (const [what, bytes] of NOT_JSON) {
    await t.step(
      `${what}: a HostFunctionError caused by a SyntaxError, the tool never runs`,
      async () => {
        const args = await put(plugin, B, bytes);
        const toolError = await assertRejectsWith(
          () => plugin.callI32("host_call_tool", [...name, ...args, OUT, OUT_CAP]),
          HostFunctionError,
          { kind: "host_function", module: "env", functionName: "host_call_tool" },
        );
        assert.ok(toolError.cause instanceof SyntaxError, `cause: ${toolError.cause}`);
        const fetchError = await assertRejectsWith(
          () => plugin.callI32("host_http_fetch", [...args, OUT, OUT_CAP]),
          HostFunctionError,
          { functionName: "host_http_fetch" },
        );
        assert.ok(fetchError.cause instanceof SyntaxError, `cause: ${fetchError.cause}`);
        assert.equal(calls.length, 0);
        assert.equal(await plugin.callI32("ok"), 1);
      },
    );
  }

  await t.step(
    "JSON that is no request object: a HostFunctionError caused by a TypeError",
    async () => {
      for (
        const request of ["null", "[]", '"http://127.0.0.1/"', '{"url":5}', '{"url":"not a url"}']
      ) {
        const args = await put(plugin, B, bytesOf(request));
        const error = await assertRejectsWith(
          () => plugin.callI32("host_http_fetch", [...args, OUT, OUT_CAP]),
          HostFunctionError,
          { functionName: "host_http_fetch" },
        );
        assert.ok(error.cause instanceof TypeError, `${request}: cause ${error.cause}`);
      }
      assert.equal(await plugin.callI32("ok"), 1);
    },
  );

  await t.step("a __proto__ key is the tool's own data and pollutes nothing", async () => {
    const args = await put(plugin, B, bytesOf('{"__proto__":{"polluted":true}}'));
    const length = await plugin.callI32("host_call_tool", [...name, ...args, OUT, OUT_CAP]);
    const received = calls.at(-1) as Record<string, unknown>;
    assert.ok(Object.hasOwn(received, "__proto__"));
    assert.equal(Object.getPrototypeOf(received), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(textOf(await plugin.readMemory(OUT, length)), '{"__proto__":{"polluted":true}}');
  });

  await t.step("100 000 levels of nesting are parsed, echoed and answered", async () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const args = await put(plugin, OUT_CAP, bytesOf(deep));
    const out = OUT_CAP + deep.length;
    const length = await plugin.callI32("host_call_tool", [...name, ...args, out, deep.length]);
    assert.equal(length, deep.length);
    assert.equal(textOf(await plugin.readMemory(out, length)), deep);
  });
});

/**
 * A module whose function 0, exported as "f", runs `body` (an `unreachable`
 * by default), and whose `name` section names it `name`, followed by `tail`
 * (more bytes of the section: a malformed section the engine still reads).
 */
function namedModule(
  name: Uint8Array,
  { body = [0x00], tail = [], count = 1, sectionName = [4], exportName = bytesOf("f") }: {
    body?: number[];
    tail?: number[];
    count?: number;
    /** How the length of the section's name ("name", 4) is written. */
    sectionName?: number[];
    /** The export's name: two exports of another name than "f" make a module the engine refuses. */
    exportName?: Uint8Array;
  } = {},
): Uint8Array {
  const vec = (bytes: number[]): number[] => [...leb(bytes.length), ...bytes];
  const functionNames = [1, ...vec([...leb(count), 0, ...vec([...name])])];
  const sections = [
    [1, ...vec([1, 0x60, 0, 0])],
    [3, ...vec([1, 0])],
    exportName.length === 1 && exportName[0] === 0x66
      ? [7, ...vec([1, ...vec([...exportName]), 0, 0])]
      : [7, ...vec([2, ...vec([...exportName]), 0, 0, ...vec([...exportName]), 0, 0])],
    [10, ...vec([1, ...vec([0, ...body, 0x0b])])],
    [0, ...vec([...sectionName, ...bytesOf("name"), ...functionNames, ...tail])],
  ];
  return new Uint8Array([...HEADER, ...sections.flat()]);
}

const FORGED = "\n    at host_secret_check (file:///etc/passwd:1:1)\n";

testEachIsolation(
  "Hostile: a guest's function names cannot forge a trap's stack frames",
  { permissions: "none" },
  async (t, { createRuntime }) => {
    // Inline, the engine's RuntimeError (the TrapError's cause) printed them as they were: a line
    // break forged host frames, and a 1 MiB name made a stack of a million characters. A first
    // fix rewrote well-formed sections only; the engine reads malformed ones leniently.
    await using runtime = createRuntime();
    const name = bytesOf(FORGED + "x".repeat(1 << 20));
    const variants = {
      "a well-formed section": namedModule(name),
      "a malformed subsection after the names": namedModule(name, { tail: [2, 0x7f] }),
      "a count of names larger than the entries": namedModule(name, { count: 2 }),
      "a name of 3 000 printable bytes": namedModule(bytesOf("y".repeat(3000))),
      "a section name whose length is written long": namedModule(name, {
        sectionName: [0x84, 0x00],
      }),
    };
    for (const [what, bytes] of Object.entries(variants)) {
      await t.step(what, async () => {
        await using plugin = await runtime.createPlugin(await runtime.compile("named", bytes));
        const error = await assertRejectsWith(() => plugin.callVoid("f"), TrapError);
        const stack = String((error.cause as Error).stack);
        assert.ok(stack.length < 4096, `a stack of ${stack.length} characters`);
        assert.doesNotMatch(stack, /\n\s*at host_secret_check/);
        assert.doesNotMatch(stack, /y{3000}/);
      });
    }
    await t.step("nor a compile error's message", async () => {
      // The engine names the function that fails to validate.
      const bytes = namedModule(bytesOf(FORGED), { body: [0x6a] }); // i32.add on an empty stack
      const error = await assertRejectsWith(
        () => runtime.compile("invalid", bytes),
        CompilationError,
      );
      assert.doesNotMatch(error.message, /host_secret_check/);
    });
    await t.step("nor the engine's compile error quoting export names", async () => {
      const bytes = namedModule(bytesOf("f"), { exportName: bytesOf(FORGED) }); // exported twice
      const error = await assertRejectsWith(
        () => runtime.compile("twice", bytes),
        CompilationError,
      );
      assert.match(error.message, /Duplicate export/);
      assert.doesNotMatch(error.message, /\n/);
      // Its cause too: an uncaught error prints its causes.
      assert.doesNotMatch(String((error.cause as Error).message), /\n/);
    });
    await t.step("nor choose the offset the error reports", async () => {
      const bytes = namedModule(bytesOf("f"), { exportName: bytesOf("x@+1") });
      const error = await assertRejectsWith(
        () => runtime.compile("twice", bytes),
        CompilationError,
      );
      assert.ok(error.offset !== undefined && error.offset > 8, `offset ${error.offset}`);
    });
    await t.step("printable names stay: frames name their functions", async () => {
      const bytes = namedModule(bytesOf("visible_name"));
      await using plugin = await runtime.createPlugin(await runtime.compile("visible", bytes));
      const error = await assertRejectsWith(() => plugin.callVoid("f"), TrapError);
      if (isEngineError(error)) assert.match(String((error.cause as Error).stack), /visible_name/);
    });
  },
);

/** Whether the trap's cause is the engine's own error (inline), whose stack names frames. */
function isEngineError(error: TrapError): boolean {
  return error.cause instanceof WebAssembly.RuntimeError;
}

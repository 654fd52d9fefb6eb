/**
 * The guest SDKs at their edges, through small plugins of their own
 * (`tests/guest/fixtures/edges.*`, built by `deno task build:guests`), in
 * both isolations: an output there is no memory for fails the call instead
 * of passing for an empty one, export names cannot clash with the SDK's, the
 * C formatter knows every length modifier, panics and aborts say what
 * happened, and text is decoded as the host decodes it.
 */
import assert from "node:assert/strict";
import {
  GuestError,
  OutOfMemoryError,
  type PluginLogEntry,
  TrapError,
  type WasmPlugin,
  type WasmRuntime,
} from "../../mod.ts";
import { assertRejectsWith, bytesOf, testEachIsolation, textOf } from "../_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const READ_FIXTURES = { permissions: { read: [FIXTURES.pathname] } };

/** Loads a fixture with at most `maxMemoryPages` pages, collecting its logs in `logs`. */
async function loadFixture(
  runtime: WasmRuntime,
  file: string,
  { maxMemoryPages, logs = [] }: { maxMemoryPages: number; logs?: PluginLogEntry[] },
): Promise<WasmPlugin> {
  const compiled = await runtime.compile(file, await Deno.readFile(new URL(file, FIXTURES)));
  const plugin = await runtime.createPlugin(compiled, {
    resourceLimits: { maxMemoryPages },
    onLog: (entry) => void logs.push(entry),
  });
  await plugin.initialize();
  return plugin;
}

for (const file of ["edges_c.wasm", "edges_c_wasi.wasm"]) {
  const sdk = file === "edges_c.wasm" ? "C" : "C with wasi-libc";
  testEachIsolation(`${sdk} SDK at its edges`, READ_FIXTURES, async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    await using plugin = await loadFixture(runtime, file, { maxMemoryPages: 16 });

    await t.step("functions may be named len and ptr", async () => {
      assert.equal(textOf(await plugin.callBytes("len", bytesOf("hello"))), "5");
      assert.equal(textOf(await plugin.callBytes("ptr", new Uint8Array())), "ptr");
    });

    await t.step("an output there is no memory to copy fails the call", async () => {
      assert.equal((await plugin.callBytes("big", bytesOf("300000"))).length, 300_000);
      // Its buffer and its copy take 1.2 MB of the 1 MiB. (Built with wasi-libc, clang may
      // make do with one buffer: then the whole output comes back.) Never an empty output.
      const outcome = await plugin.callBytes("big", bytesOf("600000")).then(
        (output) => output.length,
        (error: unknown) => error instanceof GuestError ? error.message : error,
      );
      if (file === "edges_c.wasm" || outcome !== 600_000) {
        assert.equal(outcome, "out of memory for the 600000-byte output");
      }
      assert.equal(textOf(await plugin.callBytes("big", bytesOf("5"))), "AAAAA");
    });

    await t.step("copies and fills go eight bytes a step", async () => {
      // Byte by byte, the C SDK's own memcpy and memset (without libc) cost 15 units a byte:
      // a 16 MiB echo took more than the default fuel budget.
      const before = (await plugin.metrics()).fuelConsumed;
      await plugin.callBytes("big", bytesOf("300000"));
      const used = (await plugin.metrics()).fuelConsumed - before;
      assert.ok(used < 2 * 300_000, `${used} fuel units for 300 000 bytes`);
    });

    await t.step("the formatter knows l, ll and z", async () => {
      assert.equal(
        textOf(await plugin.callBytes("formats", new Uint8Array())),
        "3 -4 5 -6000000000 18446744073709551615 abcdef0123 -7 ff -2147483648 4294967295",
      );
    });

    await t.step("the formatter writes what printf writes: flags, widths, floats", async () => {
      // The same text from the SDK's own formatter and from wasi-libc's vsnprintf; a
      // conversion it did not know once kept its argument, and every later one was off.
      assert.equal(
        textOf(await plugin.callBytes("printf_like", new Uint8Array())),
        "[   42][42   ][00042][+42][ 42][007][    -007][0ff     ][0xff][010][FF][-3][65535]" +
          "[-9][-10][   ab][ab   ][ab][   9][9   ][xyz][q][  r][%][0x1234][3.141593][2.67]" +
          "[    -1.500][0.2       ][+2][3.][1.234568e+04][1.23E-04][100000][1e+06][0.0001]" +
          "[1e-05][1E-10][0.667][1.50000][inf][-INF][-0.000000][0.1][1000000000000000.250]" +
          "[1.23457e+08]",
      );
      // What a review found wrong at first: %hh and %h did not cut, # lost 0x with +, an octal
      // 0 came out as 00, and %e and %g rounded a scaled copy.
      assert.equal(
        textOf(await plugin.callBytes("printf_edges", new Uint8Array())),
        "[80][-128][1][0xff][0][0][6.615738e+05][1.70e+02][9.9e+00][3e-01][1e+06][0.9]" +
          "[9.999999][-0.000000][5.300754e+04]",
      );
    });
  });
}

testEachIsolation("Rust SDK at its edges", READ_FIXTURES, async (t, { createRuntime }) => {
  await using runtime = createRuntime();
  const logs: PluginLogEntry[] = [];
  // Rust's own stack takes the first 16 pages.
  await using plugin = await loadFixture(runtime, "edges_rust.wasm", { maxMemoryPages: 32, logs });

  await t.step("the output is the function's vector, not a copy of it", async () => {
    // A copy would need twice the memory: it did not fit, and the output came back empty.
    assert.equal((await plugin.callBytes("big", bytesOf("600000"))).length, 600_000);
  });

  await t.step("a panic is logged and its message is in the TrapError", async () => {
    const error = await assertRejectsWith(
      () => plugin.callBytes("panics", bytesOf("abc")),
      TrapError,
      { trap: "unreachable" },
    );
    assert.match(error.message, /^Plugin trapped: unreachable \(the plugin reported: panic: /);
    assert.match(error.message, /boom after 3 bytes/);
    assert.ok(logs.some((entry) => entry.level === "error" && /boom after 3/.test(entry.message)));
    assert.equal(textOf(await plugin.callBytes("big", bytesOf("3"))), "AAA");
  });
});

testEachIsolation(
  "AssemblyScript SDK at its edges",
  READ_FIXTURES,
  async (t, { createRuntime }) => {
    await using runtime = createRuntime();
    const logs: PluginLogEntry[] = [];
    await using plugin = await loadFixture(runtime, "edges_as.wasm", { maxMemoryPages: 16, logs });

    await t.step("input text is decoded as TextDecoder decodes it", async () => {
      const inputs = [
        [0x41, 0xff, 0x42], // a byte that starts nothing
        [0xe0, 0x80, 0x41], // a sequence cut short
        [0xf0, 0x9f, 0x98], // cut by the end
        [0xed, 0xa0, 0x80], // a surrogate
        [0xc0, 0xaf], // overlong
        [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
        [0xf0, 0x9f, 0x98, 0x80, 0xc3, 0xa9], // valid: 😀é
      ];
      for (const input of inputs) {
        const bytes = new Uint8Array(input);
        const expected = new TextEncoder().encode(new TextDecoder().decode(bytes));
        assert.deepEqual(await plugin.callBytes("echo_text", bytes), expected, `${input}`);
      }
    });

    await t.step("the output is the function's buffer, not a copy of it", async () => {
      // A copy needed twice the memory: it did not fit, and the allocator trapped bare.
      for (let i = 0; i < 5; i++) {
        assert.equal((await plugin.callBytes("big", bytesOf("600000"))).length, 600_000);
      }
      assert.equal(textOf(await plugin.callBytes("big", bytesOf("3"))), "AAA");
    });

    await t.step("echoes of 300 KB in 1 MiB, one after another", async () => {
      // The host allocates each input before the call collects: from the second call, the
      // allocator found no room next to the last call's garbage, and trapped bare.
      await using fresh = await loadFixture(runtime, "edges_as.wasm", { maxMemoryPages: 16 });
      const input = new Uint8Array(300_000).fill(7);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await fresh.callBytes("echo", input), input);
      }
    });

    await t.step(
      "an input there is no room for is an OutOfMemoryError, as in C and Rust",
      async () => {
        // The allocator has no failure path: it traps where C's and Rust's answer 0.
        await using fresh = await loadFixture(runtime, "edges_as.wasm", { maxMemoryPages: 16 });
        const error = await assertRejectsWith(
          () => fresh.callBytes("echo", new Uint8Array(3 << 20)),
          OutOfMemoryError,
          { kind: "out_of_memory" },
        );
        assert.match(error.message, /alloc\(3145728\) trapped for the input of "echo"/);
        assert.ok(error.cause instanceof TrapError);
        assert.deepEqual(await fresh.callBytes("echo", bytesOf("ok")), bytesOf("ok"));
      },
    );

    await t.step("every abort is logged and in its TrapError, not only the first", async () => {
      for (let i = 0; i < 3; i++) {
        const error = await assertRejectsWith(
          () => plugin.callBytes("throws", new Uint8Array()),
          TrapError,
        );
        assert.match(error.message, /\(the plugin reported: abort: boom at /);
      }
      assert.equal(logs.filter((entry) => /^abort: boom/.test(entry.message)).length, 3);
    });
  },
);

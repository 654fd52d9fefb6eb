import assert from "node:assert/strict";
import { cli, shown } from "./_cli.ts";

const NUMBERS = "tests/cli/fixtures/numbers.wat";
const PERMISSIONS: Deno.PermissionOptions = { read: true };

Deno.test({
  name: "wasmplug call: negative numbers are arguments, typed by the export's parameters",
  permissions: PERMISSIONS,
  async fn(t) {
    for (
      const [what, args, expected] of [
        ["the README's i32 example", ["examples/wat/math.wat", "sub", "-3", "4"], "-7"],
        ["both negative", [NUMBERS, "sub_i32", "-3", "-4"], "1"],
        ["hexadecimal, as for an i64", [NUMBERS, "sub_i32", "0x10", "0b1"], "15"],
        ["f32", [NUMBERS, "sub_f32", "-1.5", "0.25"], "-1.75"],
        ["f64, with a leading dot", [NUMBERS, "sub_f64", "-1.5", "-.25"], "-1.25"],
        ["f64 exponent", [NUMBERS, "sub_f64", "-1e300", "1e300"], "-2e+300"],
        ["f64 infinity", [NUMBERS, "sub_f64", "-Infinity", "1"], "-Infinity"],
        ["f64 negative zero, with its sign", [NUMBERS, "sub_f64", "-0", "0"], "-0"],
        // As C's printf writes them (they were "not a number", and -nan an unknown option).
        ["f64 nan, any case", [NUMBERS, "sub_f64", "nan", "1"], "NaN"],
        ["f64 -nan", [NUMBERS, "sub_f64", "-nan", "1"], "NaN"],
        ["f32 -inf", [NUMBERS, "sub_f32", "-inf", "1"], "-Infinity"],
        ["f32 INFINITY", [NUMBERS, "sub_f32", "INFINITY", "1"], "Infinity"],
        // Beyond 2^53: exact only if parsed as a bigint, not through a double.
        ["i64, exactly", [NUMBERS, "sub_i64", "-9007199254740993", "2"], "-9007199254740995"],
        [
          "multi-value results",
          [NUMBERS, "swap", "-9007199254740993", "-0.5"],
          "-0.5 -9007199254740993",
        ],
      ] as const
    ) {
      await t.step(what, async () => {
        const output = await cli(["call", ...args, "--isolation", "inline"]);
        assert.equal(output.code, 0, shown(output));
        assert.equal(output.stdout, `${expected}\n`);
        assert.equal(output.stderr, "");
      });
    }

    await t.step("--json keeps an i64 exact, as a string", async () => {
      const output = await cli([
        "call",
        NUMBERS,
        "swap",
        "-9007199254740993",
        "-0.5",
        "--json",
        "--isolation",
        "inline",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.deepEqual(JSON.parse(output.stdout), { results: [-0.5, "-9007199254740993"] });
    });

    await t.step(
      "--json names NaN, the infinities and -0 (JSON has no number for them)",
      async () => {
        const cases = [[["-inf", "1"], "-Infinity"], [["nan", "1"], "NaN"], [["-0", "0"], "-0"]];
        for (const [args, result] of cases) {
          const output = await cli([
            "call",
            NUMBERS,
            "sub_f64",
            ...args!,
            "--json",
            "--isolation",
            "inline",
          ]);
          assert.equal(output.code, 0, shown(output));
          assert.deepEqual(JSON.parse(output.stdout), { results: [result] }, "it said null");
        }
      },
    );

    await t.step("after --, everything is an argument", async () => {
      const output = await cli([
        "call",
        "--isolation",
        "inline",
        "--",
        NUMBERS,
        "sub_i32",
        "-3",
        "4",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "-7\n");
    });
  },
});

Deno.test({
  name: "wasmplug call: arguments that are not numbers are bad usage",
  permissions: PERMISSIONS,
  async fn(t) {
    for (
      const [what, args, error] of [
        ["a word", ["examples/wat/math.wat", "add", "1", "two"], /argument "two" is not a number/],
        // It failed as a call (exit 1) with the runtime's type mismatch.
        [
          "a fraction for an i32",
          [NUMBERS, "sub_i32", "1.5", "1"],
          /argument "1.5" is not an integer/,
        ],
        ["nan for an i32", [NUMBERS, "sub_i32", "nan", "1"], /argument "nan" is not a number/],
        [
          "2^32 for an i32",
          [NUMBERS, "sub_i32", "4294967296", "1"],
          /argument "4294967296" is out of range for an i32/,
        ],
        [
          "2^53 + 1 for an i32",
          [NUMBERS, "sub_i32", "9007199254740993", "1"],
          /argument "9007199254740993" is out of range for an i32/,
        ],
        [
          "2^64 for an i64",
          [NUMBERS, "sub_i64", "18446744073709551616", "1"],
          /argument "18446744073709551616" is out of range for an i64/,
        ],
        // As for an i64: what BigInt() reads is an integer, an exponent is not.
        [
          "an exponent for an i32",
          [NUMBERS, "sub_i32", "1e3", "1"],
          /argument "1e3" is not an integer/,
        ],
        [
          "a fraction for an i64",
          [NUMBERS, "sub_i64", "-1.5", "1"],
          /argument "-1.5" is not an integer/,
        ],
        // BigInt("") is 0n: an empty argument must not become 0.
        ["an empty i64", [NUMBERS, "sub_i64", "", "1"], /argument "" is not an integer/],
        ["a blank i64", [NUMBERS, "sub_i64", " ", "1"], /argument " " is not an integer/],
        [
          "an option that looks like a number but is not one",
          [NUMBERS, "sub_i32", "-x", "1"],
          /unknown option "-x"/,
        ],
        [
          "a negative limit",
          ["examples/wat/math.wat", "add", "1", "2", "--timeout", "-5"],
          /--timeout must be a positive integer, received "-5"/,
        ],
      ] as const
    ) {
      await t.step(what, async () => {
        const output = await cli(["call", ...args, "--isolation", "inline"]);
        assert.equal(output.code, 2, shown(output));
        assert.match(output.stderr, error, shown(output));
      });
    }
  },
});

Deno.test({
  name: "wasmplug run: arguments after -- reach the guest, dashes and all",
  permissions: PERMISSIONS,
  async fn() {
    const output = await cli([
      "run",
      "examples/c_wasi/c_wasi.wasm",
      "--dir",
      "examples/c_wasi/data:/data",
      "plain",
      "-7",
      "--",
      "--help",
      "-x",
    ]);
    assert.equal(output.code, 3, shown(output));
    assert.match(output.stdout, /^args: plain -7 --help -x$/m);
  },
});

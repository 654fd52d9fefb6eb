import assert from "node:assert/strict";
import { cli, type CliOutput, shown } from "./_cli.ts";

const PERMISSIONS: Deno.PermissionOptions = { read: true };

/**
 * `wasmplug call` of the C plugin's `transform`, which upper-cases `input`
 * after the config's `prefix`, read through host_get_config.
 */
function transform(input: string, ...options: string[]): Promise<CliOutput> {
  return cli(["call", "examples/c_plugin/plugin.wasm", "transform", "--input", input, ...options]);
}

Deno.test({
  name: "wasmplug call --config fills what host_get_config reads, with --cap read_config",
  permissions: PERMISSIONS,
  async fn(t) {
    await t.step("the plugin reads the value", async () => {
      const output = await transform(
        "hello",
        "--config",
        "prefix=C says: ",
        "--cap",
        "read_config",
      );
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "C says: HELLO");
      assert.equal(output.stderr, "");
    });

    await t.step("a value may hold = or be empty; the last value of a key wins", async () => {
      const output = await transform(
        "x",
        ...["--config", "prefix=first", "--config=prefix=a=b ", "--config", "other="],
        ...["--cap", "read_config"],
      );
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "a=b X");
    });

    await t.step("without the capability: a hint, then the plugin's capability error", async () => {
      const output = await transform("hello", "--config", "prefix=>> ");
      assert.equal(output.code, 1, shown(output));
      assert.equal(output.stdout, "");
      assert.match(
        output.stderr,
        /^hint: the plugin reads --config through host_get_config, which needs --cap read_config\nerror: capability_denied: /,
      );
    });

    await t.step("no hint for a module that does not read its config", async () => {
      const output = await cli([
        "call",
        "examples/wat/math.wat",
        "add",
        "1",
        "2",
        "--config",
        "k=v",
      ]);
      assert.equal(output.code, 0, shown(output));
      assert.equal(output.stdout, "3\n");
      assert.equal(output.stderr, "");
    });

    await t.step("a pair without = is bad usage", async () => {
      const output = await transform("x", "--config", "k");
      assert.equal(output.code, 2, shown(output));
      assert.match(output.stderr, /^error: --config must be KEY=VALUE, received "k"\n/);
    });
  },
});

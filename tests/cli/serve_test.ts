/**
 * `wasmplug serve <file>…` loads the files into a manager, serves their
 * dashboard until a signal, and exits 0 (API.md, "Observability").
 */
import assert from "node:assert/strict";
import { DENO } from "../_helpers.ts";
import { cli, ROOT } from "./_cli.ts";

Deno.test("wasmplug serve: the dashboard of the given files, until SIGINT", async () => {
  const child = new Deno.Command(DENO, {
    args: [
      "run",
      "--unstable-worker-options",
      "--allow-read=examples,deno.json",
      "--allow-net=127.0.0.1",
      "cli.ts",
      "serve",
      "examples/wat/math.wat",
      "examples/wat/counter.wat",
      "--port",
      "0",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
    return text;
  })();
  const decoder = new TextDecoder();
  let printed = "";
  for await (const chunk of child.stdout) {
    printed += decoder.decode(chunk, { stream: true });
    if (printed.includes("\n")) break;
  }
  const url = printed.match(/at (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
  try {
    if (url === undefined) assert.fail(`serve printed no URL: ${printed}`);
    const plugins = await (await fetch(new URL("api/plugins", url))).json();
    assert.deepEqual(plugins.map((plugin: { name: string }) => plugin.name).sort(), [
      "counter",
      "math",
    ]);
    const metrics = await (await fetch(new URL("metrics", url))).text();
    assert.match(metrics, /^# TYPE wasmplug_calls_total counter$/m);
  } finally {
    child.kill("SIGINT");
  }
  const status = await child.status;
  assert.equal(status.code, 0, `serve exits 0 on SIGINT: ${await stderr}`);
});

Deno.test("wasmplug serve: bad usage exits 2", async () => {
  const none = await cli(["serve"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /serve needs at least one file/);
  const port = await cli(["serve", "examples/wat/math.wat", "--port", "70000"]);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port must be an integer from 0 to 65535, received "70000"/);
  const hostname = await cli(["serve", "examples/wat/math.wat", "--hostname", ""]);
  assert.equal(hostname.code, 2);
  assert.match(hostname.stderr, /--hostname must name a host, received ""/);
});

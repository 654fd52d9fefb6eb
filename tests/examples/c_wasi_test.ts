import assert from "node:assert/strict";
import { main } from "../../examples/c_wasi.ts";

Deno.test("examples/c_wasi.ts runs the C command in its sandbox", async () => {
  const lines: string[] = [];
  await main((line) => void lines.push(line));
  assert.deepEqual(lines, [
    "HELLO FROM THE HOST",
    "SECOND LINE",
    "lines: 2",
    "args: --from deno",
    "greeting: Hello from the preopened /data directory!",
    "probe /data/../secret.txt: denied (Capabilities insufficient)",
    "probe /etc/hostname: denied (Capabilities insufficient)",
    "network: Function not implemented",
    "exit code: 3",
  ]);
});

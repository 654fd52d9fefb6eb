import assert from "node:assert/strict";
import { DENO, textOf } from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url);

/**
 * Serves the repository as JSR serves a package: bare specifiers of the
 * package's import map are rewritten to what they map to.
 */
async function servePackage(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  const extension = path.slice(path.lastIndexOf(".") + 1);
  let body: string;
  try {
    body = await Deno.readTextFile(new URL(`.${path}`, ROOT));
  } catch {
    return new Response("not found", { status: 404 });
  }
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const [name, target] of Object.entries(imports as Record<string, string>)) {
    body = body.replaceAll(new RegExp(`(from |import\\()"${name}"`, "g"), `$1"${target}"`);
  }
  return new Response(body, {
    headers: { "content-type": TYPES[extension] ?? "application/octet-stream" },
  });
}

const TYPES: Record<string, string> = {
  ts: "application/typescript",
  js: "application/javascript",
  json: "application/json",
};

Deno.test("Worker isolation works when wasmplug is imported from an http URL", {
  permissions: { net: ["127.0.0.1"], read: [ROOT.pathname], run: [DENO] },
}, async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    servePackage,
  );
  const origin = `127.0.0.1:${server.addr.port}`;
  // A program with no permission but to import from the server: no read, no net.
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: [
      "run",
      "--unstable-worker-options",
      `--allow-import=${origin}`,
      `http://${origin}/tests/worker/fixtures/remote_main.ts`,
    ],
    cwd: ROOT,
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(code, 0, textOf(stderr));
  assert.deepEqual(JSON.parse(textOf(stdout)), {
    answer: 42,
    entry: `http://${origin}/src/worker/_worker_main.ts`,
  });
});

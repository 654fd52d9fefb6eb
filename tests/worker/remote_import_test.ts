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
}, async (t) => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    servePackage,
  );
  const origin = `127.0.0.1:${server.addr.port}`;
  const main = `http://${origin}/tests/worker/fixtures/remote_main.ts`;

  /** Runs `main` with no permission but to import from the server: no read, no net. */
  async function runRemote(args: string[]): Promise<unknown> {
    const { code, stdout, stderr } = await new Deno.Command(DENO, {
      args: ["run", ...args],
      cwd: ROOT,
      stdin: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assert.equal(code, 0, textOf(stderr));
    return JSON.parse(textOf(stdout));
  }

  // The worker starts from the bundled entry, a blob: URL: it fetches nothing more.
  await t.step("with no flag, the worker shares the host's (few) permissions", async () => {
    assert.deepEqual(await runRemote([`--allow-import=${origin}`, main]), {
      answer: 42,
      mode: "inherit",
      entry: "blob:",
    });
  });

  await t.step("with the flag, the worker gets permissions of its own", async () => {
    const args = ["--unstable-worker-options", `--allow-import=${origin}`, main, "narrow"];
    assert.deepEqual(await runRemote(args), { answer: 42, mode: "narrow", entry: "blob:" });
  });
});

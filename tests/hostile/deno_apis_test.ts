/**
 * Hostile guests that reach for the host's Deno APIs. A wasm guest cannot
 * call JavaScript, so it probes every host path it has, granted every
 * capability there is, while still being denied the target:
 *
 * - `host_http_fetch` to hosts outside `allowedHosts`, to `file:`, `data:`
 *   and `blob:` URLs, and through redirects (the request never arrives);
 * - WASI paths outside the preopen (absolute, `..`, a symlink), with the
 *   Deno permissions to read them (more escapes, straight on `WasiPreview1`,
 *   are in `tests/wasi/filesystem_test.ts` and `tests/wasi/c_wasi_test.ts`);
 * - the host's environment through WASI `environ_get`, `args_get` and
 *   `host_get_config`, and guessable names through the host's maps;
 * - in worker isolation, a worker taken over by its guest: every Deno API
 *   its capabilities do not grant is denied by the worker's permissions
 *   (what they are made of is in `tests/worker/permissions_test.ts`).
 *
 * Each probe ends in its documented error, and the next call works.
 */
import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  type RuntimeConfig,
  TimeoutError,
  type WasmPlugin,
} from "../../mod.ts";
import { withInternalOptions } from "../../src/backend/_internal_options.ts";
import {
  assertRejectsWith,
  bytesOf,
  putString,
  testEachIsolation,
  textOf,
  workerRuntime,
} from "../_helpers.ts";
import { HOST_FUNCTIONS, type HostFunctionName, hostFunctionsWat } from "../fixtures/wat.ts";
import { httpFetch } from "../worker/_worker_helpers.ts";

const EVERY_CAPABILITY: Capability[] = Object.values(Capability);

/** Every built-in host function, re-exported, plus `ok`. */
const HOST_WAT = hostFunctionsWat(...Object.keys(HOST_FUNCTIONS) as HostFunctionName[])
  .replace(/\)$/, `\n  (func (export "ok") (result i32) i32.const 1))`);

/** A local server that records the paths it was asked for; `/to/<url>` redirects there. */
interface Recorder extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  readonly hits: string[];
}

function recorder(): Recorder {
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    hits.push(path);
    if (path.startsWith("/to/")) {
      const location = decodeURIComponent(path.slice("/to/".length));
      return new Response(null, { status: 302, headers: { location } });
    }
    return new Response(`served ${path}`);
  });
  const { port } = server.addr;
  return { host: `127.0.0.1:${port}`, port, hits, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** A path on `server` that redirects to `location`. */
function redirect(server: Recorder, location: string): string {
  return `http://${server.host}/to/${encodeURIComponent(location)}`;
}

testEachIsolation("Hostile: host_http_fetch with every capability reaches allowedHosts only", {
  permissions: { net: ["127.0.0.1"] },
}, async (t, { createRuntime }) => {
  await using allowed = recorder();
  await using forbidden = recorder();
  await using runtime = createRuntime();
  const compiled = await runtime.compileWat("fetcher", HOST_WAT);
  await using plugin = await runtime.createPlugin(compiled, {
    capabilities: EVERY_CAPABILITY,
    allowedHosts: [allowed.host],
  });

  /** Asserts fetching `url` is denied, nothing reached `forbidden`, and the plugin still fetches. */
  async function assertDenied(target: WasmPlugin, url: string): Promise<void> {
    await assertRejectsWith(() => httpFetch(target, url), CapabilityDeniedError, {
      kind: "capability_denied",
      capability: Capability.NetworkAccess,
    });
    assert.deepEqual(forbidden.hits, []);
    assert.equal(await httpFetch(target, `http://${allowed.host}/ok`), "served /ok");
  }

  await t.step(
    "a host outside allowedHosts, by address or by name: no request arrives",
    async () => {
      await assertDenied(plugin, `http://${forbidden.host}/secret`);
      await assertDenied(plugin, `http://localhost:${forbidden.port}/secret`);
      await assertDenied(plugin, `http://${allowed.host}@${forbidden.host}/secret`);
    },
  );

  await t.step(
    "file:, data: and blob: URLs are no network, even with an allowed host",
    async () => {
      // A host name alone allows every port of it, and a file: URL can carry a host.
      await using wide = await runtime.createPlugin(compiled, {
        capabilities: EVERY_CAPABILITY,
        allowedHosts: ["127.0.0.1"],
      });
      for (
        const url of [
          "file:///etc/passwd",
          "file://127.0.0.1/etc/passwd",
          "data:text/plain,secret",
          `blob:http://${allowed.host}/00000000-0000-0000-0000-000000000000`,
        ]
      ) {
        await assertDenied(plugin, url);
        await assertDenied(wide, url);
      }
    },
  );

  await t.step("a redirect out of allowedHosts is denied before it is followed", async () => {
    const before = allowed.hits.length;
    for (
      const location of [
        `http://${forbidden.host}/secret`,
        "file:///etc/passwd",
        "file://127.0.0.1/etc/passwd",
        "data:text/plain,secret",
      ]
    ) {
      await assertDenied(plugin, redirect(allowed, location));
    }
    // Each redirect (and each check that the plugin still fetches) reached the allowed host.
    assert.equal(allowed.hits.length, before + 8);
  });
});

/**
 * A temp dir with `data/greeting.txt` (the preopen), `secret.txt` beside it
 * and `data/escape.txt` linking to the secret.
 */
async function sandbox(): Promise<{ root: string } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "wasmplug_hostile_" });
  await Deno.mkdir(`${root}/data`);
  await Deno.writeTextFile(`${root}/data/greeting.txt`, "hello\n");
  await Deno.writeTextFile(`${root}/secret.txt`, "secret\n");
  await Deno.symlink("../secret.txt", `${root}/data/escape.txt`);
  return { root, [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }) };
}

const C_WASI = new URL("../../examples/c_wasi/c_wasi.wasm", import.meta.url);

testEachIsolation("Hostile: a WASI command with every capability stays inside its preopen", {
  // The host may read and write anything: only the WASI sandbox stands in the way.
  permissions: { read: true, write: true },
}, async (t, { createRuntime }) => {
  await using dir = await sandbox();
  const { root } = dir;
  await using runtime = createRuntime();
  const compiled = await runtime.compile("c_wasi", await Deno.readFile(C_WASI));
  const escapes = [
    "/data/../secret.txt",
    "/data/escape.txt",
    "/data/../../../../../../etc/passwd",
    `${root}/secret.txt`,
    "/etc/passwd",
  ];
  await using plugin = await runtime.createPlugin(compiled, {
    capabilities: EVERY_CAPABILITY,
    // The worker may read and write the whole temp dir: WASI still confines the guest.
    allowedPaths: { read: [root], write: [root] },
    wasi: {
      env: {
        PROBE_PATHS: [...escapes, "/data/greeting.txt"].join(":"),
        REPORT_PATH: "/data/escape.txt",
      },
      preopens: { "/data": `${root}/data` },
    },
  });

  await t.step(
    "absolute paths, `..` and a symlink out of the preopen are ENOTCAPABLE",
    async () => {
      const { exitCode, stdout } = await plugin.run();
      assert.equal(exitCode, 3);
      const lines = textOf(stdout).trimEnd().split("\n");
      for (const path of escapes) {
        assert.ok(lines.includes(`probe ${path}: denied (Capabilities insufficient)`), path);
      }
      assert.ok(lines.includes("probe /data/greeting.txt: READ 6 BYTES"));
      // Writing through the link would have truncated the secret.
      assert.ok(lines.includes("report /data/escape.txt: failed (Capabilities insufficient)"));
      assert.ok(lines.includes("network: Function not implemented"));
    },
  );

  await t.step("the host's files are untouched, and the plugin runs again", async () => {
    assert.equal(await Deno.readTextFile(`${root}/secret.txt`), "secret\n");
    assert.deepEqual([...Deno.readDirSync(root)].map((entry) => entry.name).sort(), [
      "data",
      "secret.txt",
    ]);
    assert.equal((await plugin.run()).exitCode, 3);
  });
});

/** Writes the environment to stdout and the arguments to stderr, as WASI hands them over. */
const ENVIRON_WAT = `(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $dump (param $fd i32) (param $buf i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $buf))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (drop (call $environ_sizes (i32.const 0) (i32.const 4)))
    (drop (call $environ (i32.const 1024) (i32.const 8192)))
    (call $dump (i32.const 1) (i32.const 8192) (i32.load (i32.const 4)))
    (drop (call $args_sizes (i32.const 8) (i32.const 12)))
    (drop (call $args (i32.const 2048) (i32.const 16384)))
    (call $dump (i32.const 2) (i32.const 16384) (i32.load (i32.const 12)))))`;

const SECRET_VAR = "WASMPLUG_HOSTILE_SECRET";

testEachIsolation("Hostile: a guest sees nothing of the host's environment", {
  permissions: { env: [SECRET_VAR] },
}, async (t, { createRuntime }) => {
  Deno.env.set(SECRET_VAR, "hunter2");
  try {
    await using runtime = createRuntime();

    await t.step("WASI environ_get and args_get hold only what the config gives", async () => {
      await using plugin = await runtime.createPluginFromWat(ENVIRON_WAT, {
        name: "environ",
        capabilities: EVERY_CAPABILITY,
        wasi: { args: ["one"], env: { VISIBLE: "yes" } },
      });
      const { stdout, stderr } = await plugin.run();
      assert.equal(textOf(stdout), "VISIBLE=yes\0");
      assert.equal(textOf(stderr), "environ\0one\0");
    });

    await t.step("host_get_config reads the config map, never the environment", async () => {
      await using plugin = await runtime.createPluginFromWat(HOST_WAT, {
        capabilities: EVERY_CAPABILITY,
        config: { visible: "yes" },
      });
      for (const key of [SECRET_VAR, "HOME", "PATH", "__proto__", "constructor", "toString"]) {
        const [ptr, len] = await putString(plugin, 0, key);
        assert.equal(await plugin.callI32("host_get_config", [ptr, len, 512, 512]), -1, key);
        assert.equal(await plugin.callI32("host_storage_get", [ptr, len, 512, 512]), -1, key);
      }
      const [ptr, len] = await putString(plugin, 0, "visible");
      assert.equal(await plugin.callI32("host_get_config", [ptr, len, 512, 512]), 3);
    });

    await t.step(
      "host_call_tool of a name nobody registered is -1, whatever the name",
      async () => {
        runtime.registerTool("registered", () => "yes");
        await using plugin = await runtime.createPluginFromWat(HOST_WAT, {
          capabilities: EVERY_CAPABILITY,
        });
        await plugin.writeMemory(256, bytesOf("{}"));
        for (const name of ["", "__proto__", "constructor", "toString", "Deno.readFile", "fetch"]) {
          const [ptr, len] = await putString(plugin, 0, name);
          const result = await plugin.callI32("host_call_tool", [ptr, len, 256, 2, 512, 512]);
          assert.equal(result, -1, JSON.stringify(name));
        }
        const [ptr, len] = await putString(plugin, 0, "registered");
        assert.equal(await plugin.callI32("host_call_tool", [ptr, len, 256, 2, 512, 512]), 5);
      },
    );
  } finally {
    Deno.env.delete(SECRET_VAR);
  }
});

/** `config` whose plugin workers run `fixtures/probing_worker.ts`. */
function probingWorkers(config: RuntimeConfig): RuntimeConfig {
  return withInternalOptions(config, {
    workerUrl: new URL("./fixtures/probing_worker.ts", import.meta.url),
  });
}

Deno.test(
  "Hostile: a worker taken over by its guest has no Deno permission beyond its capabilities",
  {
    // The host has every permission the probes need, so only the worker's own stand in the way.
    permissions: {
      read: true,
      write: true,
      env: [SECRET_VAR],
      run: ["true"],
      net: ["127.0.0.1"],
    },
  },
  async (t) => {
    await using allowed = recorder();
    await using forbidden = recorder();
    await using dir = await sandbox();
    const { root } = dir;
    Deno.env.set(SECRET_VAR, "hunter2");
    await using runtime = workerRuntime(
      probingWorkers({ resourceLimits: { maxExecutionTimeMs: 200 } }),
    );
    await using plugin = await runtime.createPluginFromWat(HOST_WAT, {
      capabilities: EVERY_CAPABILITY,
      allowedHosts: [allowed.host],
      allowedPaths: { read: [`${root}/data`], write: [`${root}/data`] },
      wasi: { preopens: { "/data": `${root}/data` } },
    });
    try {
      await t.step(
        "env, run, ffi, sys, import, reads and writes outside allowedPaths: denied",
        async () => {
          const query = new URLSearchParams({
            secret: SECRET_VAR,
            file: `${root}/secret.txt`,
            dir: root,
            port: String(allowed.port),
            other: String(forbidden.port),
          });
          const outcomes = JSON.parse(
            await httpFetch(plugin, `http://${allowed.host}/probe?${query}`),
          );
          assert.ok(Object.keys(outcomes).length >= 14);
          for (const [api, outcome] of Object.entries(outcomes as Record<string, string>)) {
            assert.match(outcome, /NotCapable|Requires \w+ access|permission denied|escalate/, api);
          }
          assert.match(outcomes["Deno.env.get"], /^NotCapable: Requires env access/);
          assert.match(outcomes["Deno.Command"], /^NotCapable: Requires run access/);
          assert.match(outcomes["import() from an allowed host"], /Requires import access/);
          // Nothing reached either server but the probe itself, and nothing was written.
          assert.deepEqual(allowed.hits, []);
          assert.deepEqual(forbidden.hits, []);
          assert.deepEqual([...Deno.readDirSync(root)].map((entry) => entry.name).sort(), [
            "data",
            "secret.txt",
          ]);
          assert.equal(await plugin.callI32("ok"), 1);
        },
      );

      await t.step(
        "a worker that ends itself fails the call at its deadline, then is replaced",
        async () => {
          const start = performance.now();
          await assertRejectsWith(
            () => httpFetch(plugin, `http://${allowed.host}/exit`),
            TimeoutError,
            { timeoutMs: 200 },
          );
          assert.ok(performance.now() - start < 2_000);
          assert.equal(await plugin.callI32("ok"), 1);
          assert.equal(await httpFetch(plugin, `http://${allowed.host}/fine`), "served /fine");
        },
      );
    } finally {
      Deno.env.delete(SECRET_VAR);
    }
  },
);

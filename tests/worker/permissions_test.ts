import assert from "node:assert/strict";
import {
  Capability,
  CapabilityDeniedError,
  HostFunctionError,
  InstantiationError,
} from "../../mod.ts";
import { workerPermissions } from "../../src/worker/_permissions.ts";
import { assertRejectsWith, workerRuntime } from "../_helpers.ts";
import { hostFunctionsWat } from "../fixtures/wat.ts";
import { faultyWorkers, FIXTURES, httpFetch, READ_WORKERS } from "./_worker_helpers.ts";

const FETCH_WAT = hostFunctionsWat("host_http_fetch");

Deno.test("A worker's Deno permissions come from its plugin's capabilities", {
  permissions: "none",
}, async (t) => {
  const none = {
    env: false,
    ffi: false,
    import: false,
    net: false,
    read: false,
    run: false,
    sys: false,
    write: false,
  };

  await t.step("nothing is granted by default, whatever the config lists", () => {
    assert.deepEqual(
      workerPermissions({
        capabilities: new Set([Capability.Timer, Capability.CallTool, Capability.Wasi]),
        allowedHosts: ["example.com"],
        allowedPaths: { read: ["/etc"], write: ["/tmp"] },
      }),
      none,
    );
  });

  await t.step("NetworkAccess grants net for allowedHosts, and only them", () => {
    const permissions = workerPermissions({
      capabilities: new Set([Capability.NetworkAccess]),
      allowedHosts: ["example.com", "127.0.0.1:8080", "example.com"],
    });
    assert.deepEqual(permissions, { ...none, net: ["example.com", "127.0.0.1:8080"] });
  });

  await t.step("NetworkAccess without allowedHosts grants no net at all", () => {
    const permissions = workerPermissions({ capabilities: new Set([Capability.NetworkAccess]) });
    assert.equal(permissions.net, false);
  });

  await t.step(
    "FileSystem grants read for allowedPaths and preopens, write for allowedPaths.write",
    () => {
      const permissions = workerPermissions({
        capabilities: new Set([Capability.FileSystem]),
        allowedPaths: { read: ["/data"], write: ["/srv/sandbox/out"] },
        preopens: { "/sandbox": "/srv/sandbox" },
      });
      assert.deepEqual(permissions, {
        ...none,
        read: ["/data", "/srv/sandbox"],
        write: ["/srv/sandbox/out"],
      });
    },
  );
  await t.step("a preopen alone is not writable", () => {
    const permissions = workerPermissions({
      capabilities: new Set([Capability.FileSystem]),
      preopens: { "/sandbox": "/srv/sandbox" },
    });
    assert.deepEqual(permissions, { ...none, read: ["/srv/sandbox"], write: false });
  });
});

Deno.test("A worker plugin reaches the network only as its capabilities allow", {
  permissions: { net: ["127.0.0.1"], read: READ_WORKERS },
}, async (t) => {
  const hits: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const path = new URL(request.url).pathname;
      hits.push(path);
      return new Response(`served ${path}`);
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  // A port nothing listens on: granting it grants nothing else.
  const otherHost = `127.0.0.1:${server.addr.port === 1 ? 2 : 1}`;
  await using runtime = workerRuntime();
  const compiled = await runtime.compileWat("fetch", FETCH_WAT);

  await t.step("without NetworkAccess, a host in allowedHosts is still denied", async () => {
    await using plugin = await runtime.createPlugin(compiled, { allowedHosts: [host] });
    await assertRejectsWith(
      () => httpFetch(plugin, `http://${host}/no-capability`),
      CapabilityDeniedError,
      { capability: "network" },
    );
    assert.deepEqual(hits, []);
  });

  await t.step("with NetworkAccess, the allowed host:port answers", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      capabilities: [Capability.NetworkAccess],
      allowedHosts: [host],
    });
    assert.equal(await httpFetch(plugin, `http://${host}/allowed`), "served /allowed");
    assert.deepEqual(hits, ["/allowed"]);
  });

  await t.step("with NetworkAccess for another host, the gate denies this one", async () => {
    await using plugin = await runtime.createPlugin(compiled, {
      capabilities: [Capability.NetworkAccess],
      allowedHosts: [otherHost],
    });
    await assertRejectsWith(
      () => httpFetch(plugin, `http://${host}/other-host`),
      CapabilityDeniedError,
      { capability: "network" },
    );
    assert.deepEqual(hits, ["/allowed"]);
  });

  await t.step("past the gate, the worker's Deno permissions deny it too", async () => {
    await using faulty = workerRuntime(faultyWorkers());
    // The faulty worker sends a request the gate allowed (to otherHost) to the server's port.
    const bypass = `http://${otherHost}/port/${server.addr.port}/bypass`;
    await using denied = await faulty.createPlugin(compiled, {
      capabilities: [Capability.NetworkAccess],
      allowedHosts: [otherHost],
    });
    const error = await assertRejectsWith(() => httpFetch(denied, bypass), HostFunctionError, {
      functionName: "host_http_fetch",
    });
    assert.ok(error.cause instanceof Deno.errors.NotCapable, `cause: ${error.cause}`);
    assert.deepEqual(hits, ["/allowed"]);

    // The same request from a worker whose permissions include the server gets through.
    await using granted = await faulty.createPlugin(compiled, {
      capabilities: [Capability.NetworkAccess],
      allowedHosts: [otherHost, host],
    });
    assert.equal(await httpFetch(granted, bypass), "served /bypass");
    assert.deepEqual(hits, ["/allowed", "/bypass"]);
  });
});

Deno.test("A plugin cannot be granted Deno permissions its host lacks", {
  permissions: { net: ["127.0.0.1"], read: READ_WORKERS },
}, async () => {
  await using runtime = workerRuntime();
  const error = await assertRejectsWith(
    () =>
      runtime.createPluginFromWat(FETCH_WAT, {
        name: "greedy",
        capabilities: [Capability.NetworkAccess],
        allowedHosts: ["example.com"],
      }),
    InstantiationError,
  );
  assert.match(
    error.message,
    /Cannot start the worker of plugin "greedy": its capabilities grant Deno permissions the host does not have \(net: example\.com\)/,
  );
  assert.ok(error.cause instanceof Deno.errors.NotCapable);
  assert.equal(runtime.pluginCount, 0);
});

Deno.test("The start error names only the permissions the host lacks", {
  permissions: { net: ["127.0.0.1"], read: [...READ_WORKERS, FIXTURES] },
}, async () => {
  await using runtime = workerRuntime();
  const error = await assertRejectsWith(
    () =>
      runtime.createPluginFromWat(FETCH_WAT, {
        name: "writer",
        capabilities: [Capability.FileSystem, Capability.NetworkAccess],
        allowedHosts: ["127.0.0.1", "example.com"],
        allowedPaths: { read: [FIXTURES], write: [FIXTURES] },
      }),
    InstantiationError,
  );
  assert.match(
    error.message,
    /the host does not have \(net: example\.com; write: [^;)]*fixtures\/?\)/,
  );
  assert.doesNotMatch(error.message, /read:|127\.0\.0\.1/);
});

/** Every Deno permission name. */
const PERMISSION_NAMES = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/** What a real worker spawned with `permissions` reports (see `fixtures/permission_states.ts`). */
async function queryInWorker(
  permissions: Deno.PermissionOptionsObject,
  descriptors: Deno.PermissionDescriptor[] = [],
): Promise<{ states: Record<string, string>; described: string[] }> {
  const worker = new Worker(new URL("./fixtures/permission_states.ts", import.meta.url), {
    type: "module",
    deno: { permissions },
  });
  try {
    const reply = new Promise<{ states: Record<string, string>; described: string[] }>(
      (resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
      },
    );
    worker.postMessage(descriptors);
    return await reply;
  } finally {
    worker.terminate();
  }
}

Deno.test("A worker is granted no Deno permission its plugin's capabilities do not give", {
  permissions: { read: [FIXTURES], net: ["127.0.0.1"] },
}, async (t) => {
  // Deno 2.9 has no way to make a worker's permission "denied": `false`, "none" and `[]` all
  // leave it at "prompt", and the worker inherits the process's prompting. What never happens
  // is a grant; that no wasmplug code then makes Deno prompt is host_volume_test.ts's matter.
  await t.step("every capability, no allowedHosts or allowedPaths: nothing granted", async () => {
    const { states } = await queryInWorker(
      workerPermissions({ capabilities: new Set(Object.values(Capability)) }),
    );
    for (const name of PERMISSION_NAMES) {
      assert.notEqual(states[name], "granted", `${name}: ${states[name]}`);
      assert.ok(["prompt", "denied"].includes(states[name]!), `${name}: ${states[name]}`);
    }
  });

  await t.step("NetworkAccess: net for allowedHosts only", async () => {
    const { states, described } = await queryInWorker(
      workerPermissions({
        capabilities: new Set([Capability.NetworkAccess]),
        allowedHosts: ["127.0.0.1"],
      }),
      [{ name: "net", host: "127.0.0.1:8080" }, { name: "net", host: "example.com" }],
    );
    assert.deepEqual(described, ["granted", "prompt"]);
    for (const name of PERMISSION_NAMES) {
      assert.notEqual(states[name], "granted", `${name}: ${states[name]}`);
    }
  });
});

/** A sandbox holding a link to a folder beside it (made before the test narrows permissions). */
const linked = Deno.makeTempDirSync({ prefix: "wasmplug_linked_" });
Deno.mkdirSync(`${linked}/sandbox/data`, { recursive: true });
Deno.mkdirSync(`${linked}/outside`);
Deno.symlinkSync(`${linked}/outside`, `${linked}/sandbox/link`);
Deno.symlinkSync(`${linked}/sandbox/data`, `${linked}/data-link`);
globalThis.addEventListener("unload", () => Deno.removeSync(linked, { recursive: true }));

Deno.test("A worker gets the real path of a linked preopen only where its host holds it", {
  permissions: { read: [`${linked}/sandbox`, `${linked}/data-link`], write: [`${linked}/sandbox`] },
}, () => {
  // A preopen named through a link is read resolved (macOS's /tmp is a link): its real path is
  // granted too, but one the host lacks was asked for, and the plugin could not be created.
  const permissions = workerPermissions({
    capabilities: new Set([Capability.FileSystem]),
    allowedPaths: { write: [`${linked}/sandbox/link`] },
    preopens: { "/out": `${linked}/sandbox/link`, "/data": `${linked}/data-link` },
  });
  assert.deepEqual(permissions.read, [
    `${linked}/sandbox/link`,
    `${linked}/data-link`,
    `${linked}/sandbox/data`,
  ]);
  assert.deepEqual(permissions.write, [`${linked}/sandbox/link`]);
});

import assert from "node:assert/strict";
import { Capability, InstantiationError } from "../../mod.ts";
import {
  permissionsOfWorker,
  resolveWorkerPermissions,
} from "../../src/worker/_permission_mode.ts";
import type { WorkerOptionsState } from "../../src/worker/_worker_options.ts";
import { configure, type LogRecord, reset } from "@logtape/logtape";

function flag(state: WorkerOptionsState): () => WorkerOptionsState {
  return () => state;
}

Deno.test("execution.workerPermissions defaults to narrow only when the flag is known to be on", {
  permissions: "none",
}, () => {
  assert.equal(resolveWorkerPermissions(undefined, flag("enabled")), "narrow");
  assert.equal(resolveWorkerPermissions(undefined, flag("disabled")), "inherit");
  assert.equal(resolveWorkerPermissions(undefined, flag("unknown")), "inherit");
});

Deno.test("execution.workerPermissions takes what is asked for, unless it cannot work", {
  permissions: "none",
}, async (t) => {
  await t.step("inherit, whatever the flag", () => {
    assert.equal(resolveWorkerPermissions("inherit", flag("enabled")), "inherit");
  });
  await t.step("narrow where the flag is on, or cannot be seen", () => {
    assert.equal(resolveWorkerPermissions("narrow", flag("enabled")), "narrow");
    assert.equal(resolveWorkerPermissions("narrow", flag("unknown")), "narrow");
  });
  await t.step("narrow where the flag is known to be off: a TypeError naming it", () => {
    assert.throws(
      () => resolveWorkerPermissions("narrow", flag("disabled")),
      (err: unknown) =>
        err instanceof TypeError && /--unstable-worker-options/.test(err.message) &&
        /'execution\.workerPermissions' = "narrow"/.test(err.message),
    );
  });
  await t.step("anything else: a TypeError naming the key and the value", () => {
    assert.throws(
      () => resolveWorkerPermissions("narrowed", flag("enabled")),
      /Cannot use 'execution\.workerPermissions': expected "narrow" or "inherit", received string "narrowed"/,
    );
  });
});

Deno.test("permissionsOfWorker() narrows in narrow mode and grants nothing of its own in inherit", {
  permissions: "none",
}, async (t) => {
  const files = {
    capabilities: new Set([Capability.Wasi, Capability.FileSystem]),
    preopens: { "/data": "/srv/data" },
  };
  const network = {
    capabilities: new Set([Capability.NetworkAccess]),
    allowedHosts: ["example.com"],
  };
  const plain = { capabilities: new Set([Capability.Timer, Capability.NetworkAccess]) };

  await t.step("narrow: the capabilities' permissions", () => {
    assert.deepEqual(permissionsOfWorker("narrow", files, "files")?.read, ["/srv/data"]);
    assert.deepEqual(permissionsOfWorker("narrow", network, "net")?.net, ["example.com"]);
    assert.equal(permissionsOfWorker("narrow", plain, "plain")?.net, false);
  });

  await t.step("inherit: a plugin that needs no Deno permission gets none of its own", async () => {
    const records: LogRecord[] = [];
    await configure({
      sinks: { memory: (record) => void records.push(record) },
      loggers: [
        { category: ["wasmplug", "worker"], sinks: ["memory"], lowestLevel: "debug" },
        { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
      ],
    });
    try {
      assert.equal(permissionsOfWorker("inherit", plain, "plain"), null);
      assert.equal(permissionsOfWorker("inherit", plain, "again"), null);
    } finally {
      await reset();
    }
    // Logged at most once per process (an earlier test of this process may have logged it;
    // zero_setup_test.ts counts it in a process of its own).
    assert.ok(records.length <= 1);
    for (const record of records) {
      assert.equal(record.level, "warning");
      assert.match(record.message.join(""), /--unstable-worker-options/);
    }
  });

  await t.step("inherit: one that needs some is refused, naming the flag and the option", () => {
    for (const [source, needs] of [[files, /read: \/srv\/data/], [network, /net: example\.com/]]) {
      assert.throws(
        () => permissionsOfWorker("inherit", source as typeof files, "needy"),
        (err: unknown) =>
          err instanceof InstantiationError && (needs as RegExp).test(err.message) &&
          err.message.includes("--unstable-worker-options") &&
          err.message.includes('execution.workerPermissions "narrow"') &&
          err.message.startsWith('Cannot create plugin "needy" in worker isolation'),
      );
    }
  });
});

/**
 * Isolation between plugins: two plugins made from the same compiled module
 * (in one runtime, in two runtimes, or as two handles of a manager) share no
 * memory, globals, tables, storage, config or messages; and a failure of one
 * (a timeout, trap, fuel exhaustion, call-depth error, abort, stop, crashed
 * worker, closed runtime) never touches the calls in flight on the other.
 *
 * "In flight" is made certain, not left to timing: while the first plugin
 * fails, the other is inside a call that polls a host tool (a gate) in a
 * loop, by turns running wasm and waiting on the host, with 200 more calls
 * queued behind it; only then is the gate opened.
 */
import assert from "node:assert/strict";
import {
  CallDepthExceededError,
  type CallOptions,
  Capability,
  type CompiledModule,
  FuelExhaustedError,
  type PluginEvent,
  type PluginHandle,
  PluginManager,
  type PluginMessage,
  PluginNotFoundError,
  PluginStateError,
  type RuntimeConfig,
  TimeoutError,
  TrapError,
  type WasmError,
  type WasmPlugin,
  type WasmPluginConfig,
  type WasmRuntime,
  WorkerCrashedError,
} from "../../mod.ts";
import {
  allowingWorkers,
  assertRejectsWith,
  bytesOf,
  type IsolationKit,
  putString,
  testEachIsolation,
  textOf,
  workerRuntime,
} from "../_helpers.ts";
import { faultyWorkers, httpFetch, READ_WORKERS } from "../worker/_worker_helpers.ts";

// Where the tests put keys, values and replies in the plugin's one-page memory.
const KEY_AT = 32_768;
const VALUE_AT = 33_024;
const OUT_AT = 33_280;
const OUT_CAP = 256;
const GATE_NAME_AT = 33_792;
const SEED_AT = 40_000;
const ARGS_AT = 40_960;
const POLL_ARGS_AT = 40_970;
const REPLY_AT = 41_000;
const SPIN_LOG_AT = 41_100;

/**
 * The plugin every test runs twice over. State: `store`/`load`/`grow`/`pages`
 * (memory, with "seed" at `SEED_AT`), `bump`/`counter` (a mutable global),
 * `set_slot`/`call_slot` (a table whose slot 0 starts as `$one`), and the
 * config, storage and message host functions under their own names. Work and
 * faults: `add`; `hold(name_ptr, name_len)` waits on the host tool of that
 * name; `poll(name_ptr, name_len)` asks that tool in a loop until it answers
 * `true`, and returns how many times it asked; `spin` logs "spinning", then
 * runs `loop br 0`; `trap`; `recurse`.
 */
const TENANT_WAT = `(module
  (import "env" "host_log" (func $log (param i32 i32 i32)))
  (import "env" "host_get_config" (func $get_config (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_set_config" (func $set_config (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_storage_get" (func $storage_get (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_storage_set" (func $storage_set (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_send_message" (func $send_message (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_http_fetch" (func $http_fetch (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_call_tool" (func $call_tool (param i32 i32 i32 i32 i32 i32) (result i32)))
  (type $answer (func (result i32)))
  (memory (export "memory") 1)
  (data (i32.const ${SEED_AT}) "seed")
  (data (i32.const ${ARGS_AT}) "{}")
  (data (i32.const ${POLL_ARGS_AT}) "{\\"poll\\":1}")
  (data (i32.const ${SPIN_LOG_AT}) "spinning")
  (table 2 funcref)
  (elem (i32.const 0) $one)
  (elem declare func $two)
  (global $counter (mut i32) (i32.const 0))
  (func $one (type $answer) (i32.const 1))
  (func $two (type $answer) (i32.const 2))

  (func (export "store") (param $at i32) (param $value i32) (i32.store (local.get $at) (local.get $value)))
  (func (export "load") (param $at i32) (result i32) (i32.load (local.get $at)))
  (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
  (func (export "pages") (result i32) (memory.size))

  (func (export "bump") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (global.get $counter))
  (func (export "counter") (result i32) (global.get $counter))

  (func (export "set_slot") (param $slot i32) (param $which i32)
    (if (i32.eq (local.get $which) (i32.const 1))
      (then (table.set (local.get $slot) (ref.func $one)))
      (else (table.set (local.get $slot) (ref.func $two)))))
  (func (export "call_slot") (param $slot i32) (result i32)
    (call_indirect (type $answer) (local.get $slot)))

  (func (export "host_get_config") (param i32 i32 i32 i32) (result i32)
    (call $get_config (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "host_set_config") (param i32 i32 i32 i32) (result i32)
    (call $set_config (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "host_storage_get") (param i32 i32 i32 i32) (result i32)
    (call $storage_get (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "host_storage_set") (param i32 i32 i32 i32) (result i32)
    (call $storage_set (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "host_send_message") (param i32 i32 i32 i32) (result i32)
    (call $send_message (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "host_http_fetch") (param i32 i32 i32 i32) (result i32)
    (call $http_fetch (local.get 0) (local.get 1) (local.get 2) (local.get 3)))

  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "hold") (param $name i32) (param $len i32) (result i32)
    (call $call_tool (local.get $name) (local.get $len)
      (i32.const ${ARGS_AT}) (i32.const 2) (i32.const ${REPLY_AT}) (i32.const 64)))
  (func (export "poll") (param $name i32) (param $len i32) (result i32) (local $polls i32)
    (loop $again
      (local.set $polls (i32.add (local.get $polls) (i32.const 1)))
      (drop (call $call_tool (local.get $name) (local.get $len)
        (i32.const ${POLL_ARGS_AT}) (i32.const 10) (i32.const ${REPLY_AT}) (i32.const 64)))
      ;; "true" or "false": go on until the first byte is "t".
      (br_if $again (i32.ne (i32.load8_u (i32.const ${REPLY_AT})) (i32.const 116))))
    (local.get $polls))
  (func (export "spin")
    (call $log (i32.const 1) (i32.const ${SPIN_LOG_AT}) (i32.const 8))
    (loop $forever (br $forever)))
  (func (export "trap") unreachable)
  (func $recurse (export "recurse") (result i32) (i32.add (i32.const 1) (call $recurse))))`;

/** Depth limit of the tests' plugins (small, so recursion fails fast). */
const MAX_CALL_DEPTH = 200;

/** Runtimes without a fuel limit, so that `spin` runs until its deadline. */
const LIMITS: RuntimeConfig = {
  resourceLimits: { maxFuel: null, maxCallDepth: MAX_CALL_DEPTH, maxExecutionTimeMs: 10_000 },
};

/** How many calls the other plugin has queued while one fails. */
const BURST = 200;

/** The calls the scenarios make, on a plugin or through a manager's handle. */
interface Callee {
  callI32(fn: string, args?: readonly number[], options?: CallOptions): Promise<number>;
  callVoid(fn: string, args?: readonly unknown[], options?: CallOptions): Promise<void>;
  writeMemory(offset: number, data: Uint8Array): Promise<void>;
}

/** The calls of `handle`, made through `manager`. */
function managed(manager: PluginManager, handle: PluginHandle): Callee {
  return {
    callI32: (fn, args, options) => manager.callI32(handle, fn, args, options),
    callVoid: (fn, args, options) => manager.callVoid(handle, fn, args, options),
    writeMemory: (offset, data) => manager.get(handle).writeMemory(offset, data),
  };
}

// deno-lint-ignore no-explicit-any
type ErrorClass = abstract new (...args: any[]) => WasmError;

/** One way for a plugin's call to fail, and the error it ends in. */
interface Fault {
  readonly what: string;
  readonly run: (plugin: Callee) => Promise<unknown>;
  readonly type: ErrorClass;
  readonly expected: Readonly<Record<string, unknown>>;
}

/** `spin` (`loop br 0`) until a deadline `timeoutMs` away. */
function timeout(timeoutMs: number): Fault {
  return {
    what: "a timeout in `loop br 0`",
    run: (plugin) => plugin.callVoid("spin", [], { timeoutMs }),
    type: TimeoutError,
    expected: { kind: "timeout", timeoutMs },
  };
}

const TIMEOUT = timeout(100);

const TRAP: Fault = {
  what: "a trap",
  run: (plugin) => plugin.callVoid("trap"),
  type: TrapError,
  expected: { kind: "trap" },
};

const FUEL: Fault = {
  what: "fuel exhaustion",
  run: (plugin) => plugin.callVoid("spin", [], { fuel: 10_000 }),
  type: FuelExhaustedError,
  expected: { kind: "fuel_exhausted", fuelLimit: 10_000 },
};

const CALL_DEPTH: Fault = {
  what: "a call-depth error",
  run: (plugin) => plugin.callI32("recurse"),
  type: CallDepthExceededError,
  expected: { kind: "call_depth_exceeded", maxCallDepth: MAX_CALL_DEPTH },
};

/** Runs the fault and asserts that it ends in its error. */
function inflict(fault: Fault, plugin: Callee): Promise<WasmError> {
  return assertRejectsWith(() => fault.run(plugin), fault.type, fault.expected);
}

let gateCount = 0;

/**
 * A host tool that keeps the guest calling it in flight until released: `hold`
 * waits on it, `poll` asks it again and again (an async answer each time, so
 * an inline host gets its thread back between polls).
 */
interface Gate extends Disposable {
  /** The tool's name. */
  readonly name: string;
  /** Resolves when a guest calls the tool: from then on that guest's call is in flight. */
  readonly entered: Promise<void>;
  /** Lets the guest go on: `hold` returns, `poll` hears `true`. */
  release(value: string): void;
}

/** Registers a new {@linkcode Gate} with `runtime`; disposing it releases the guest. */
function openGate(runtime: WasmRuntime): Gate {
  const name = `gate-${++gateCount}`;
  const entered = Promise.withResolvers<void>();
  const opened = Promise.withResolvers<string>();
  let released = false;
  runtime.registerTool(name, (args) => {
    entered.resolve();
    return (args as { poll?: number }).poll === undefined
      ? opened.promise
      : Promise.resolve(released);
  });
  const release = (value: string): void => {
    released = true;
    opened.resolve(value);
  };
  return { name, entered: entered.promise, release, [Symbol.dispose]: () => release("disposed") };
}

/** Writes the gate's name into the plugin's memory; returns the arguments of `hold` and `poll`. */
async function gateArgs(plugin: Callee, gate: Gate): Promise<number[]> {
  const name = bytesOf(gate.name);
  await plugin.writeMemory(GATE_NAME_AT, name);
  return [GATE_NAME_AT, name.length];
}

/** Waits until the guest has reached `gate`; fails if its `call` settles first. */
function reached(gate: Gate, call: Promise<unknown>): Promise<void> {
  return Promise.race([
    gate.entered,
    call.then(() => assert.fail(`the call returned before reaching ${gate.name}`)),
  ]);
}

/** What `hold` returns when its gate is released with `value`: the JSON result's length. */
function heldResult(value: string): number {
  return JSON.stringify(value).length;
}

/**
 * Keeps `b` busy in a call that polls a host tool in a loop, with
 * {@linkcode BURST} more calls queued behind it, runs `fault` while they are
 * all in flight, then releases them and checks every result: the poll saw the
 * fault go by, and `bump` counts on from where it was, once per call, in
 * order, so no call was lost, repeated, or run on a replaced instance. Makes
 * `BURST + 2` calls to `b`.
 */
async function whileInFlight(
  runtime: WasmRuntime,
  b: Callee,
  fault: () => Promise<unknown>,
): Promise<void> {
  const gate = openGate(runtime);
  const args = await gateArgs(b, gate);
  const before = await b.callI32("counter");
  const polling = b.callI32("poll", args);
  let settled = 0;
  const burst = Array.from({ length: BURST }, () => b.callI32("bump").finally(() => settled++));
  try {
    await reached(gate, polling);
    await fault();
    assert.equal(settled, 0, "the queued calls were still in flight after the fault");
  } finally {
    gate.release("let go");
    // Whatever failed above, B's calls settle before the test goes on.
    await Promise.allSettled([polling, ...burst]);
  }
  const polls = await polling;
  assert.ok(polls >= 2, `B polled ${polls} times`);
  assert.deepEqual(
    await Promise.all(burst),
    Array.from({ length: BURST }, (_, i) => before + i + 1),
  );
}

/** Capabilities of the plugins whose host state is compared. */
const HOST_STATE_CAPABILITIES = [
  Capability.ReadConfig,
  Capability.WriteConfig,
  Capability.ReadState,
  Capability.WriteState,
  Capability.SendMessage,
];

type Tenant = "a" | "b";

/** Two plugins of {@linkcode TENANT_WAT}, made one way or another. */
interface Tenants extends AsyncDisposable {
  readonly a: WasmPlugin;
  readonly b: WasmPlugin;
  /** The `config` map each plugin was created with. */
  readonly configs: Readonly<Record<Tenant, Record<string, string>>>;
  /** What each plugin's `onMessage` received. */
  readonly inbox: Readonly<Record<Tenant, PluginMessage[]>>;
  /** The manager's `message` events, when the plugins live in a manager. */
  readonly events: PluginEvent<"message">[] | null;
}

/** A way to make {@linkcode Tenants}. */
interface TenantMaker {
  readonly what: string;
  make(kit: IsolationKit): Promise<Tenants>;
}

/** What a {@linkcode TenantMaker} creates; the rest of {@linkcode Tenants} is common. */
interface CreatedTenants {
  readonly a: WasmPlugin;
  readonly b: WasmPlugin;
  readonly events: PluginEvent<"message">[] | null;
  /** Runs before the runtimes close. */
  readonly close?: () => Promise<void>;
}

/**
 * Tenants made by `create` from one module compiled in the first of
 * `runtimes`, with configs `{ owner: id, shared: "x" }`; disposing them (or a
 * failure to make them) closes the runtimes.
 */
async function tenantsIn(
  runtimes: readonly WasmRuntime[],
  create: (
    compiled: CompiledModule,
    config: (id: Tenant) => WasmPluginConfig,
  ) => Promise<CreatedTenants>,
): Promise<Tenants> {
  const closeRuntimes = async (): Promise<void> => {
    await Promise.all(runtimes.map((runtime) => runtime.close()));
  };
  const configs = { a: { owner: "a", shared: "x" }, b: { owner: "b", shared: "x" } };
  const inbox: Record<Tenant, PluginMessage[]> = { a: [], b: [] };
  try {
    const compiled = await runtimes[0]!.compileWat("tenant", TENANT_WAT);
    const { a, b, events, close } = await create(compiled, (id) => ({
      id,
      name: `tenant-${id}`,
      capabilities: HOST_STATE_CAPABILITIES,
      config: configs[id],
      onMessage: (message) => void inbox[id].push(message),
    }));
    return {
      a,
      b,
      configs,
      inbox,
      events,
      [Symbol.asyncDispose]: async () => {
        await close?.();
        await closeRuntimes();
      },
    };
  } catch (err) {
    await closeRuntimes();
    throw err;
  }
}

const TENANT_MAKERS: readonly TenantMaker[] = [
  {
    what: "from the same compiled module in one runtime",
    make: (kit) => {
      const runtime = kit.createRuntime(LIMITS);
      return tenantsIn([runtime], async (compiled, config) => ({
        a: await runtime.createPlugin(compiled, config("a")),
        b: await runtime.createPlugin(compiled, config("b")),
        events: null,
      }));
    },
  },
  {
    what: "from the same compiled module in two runtimes",
    make: (kit) => {
      const [first, second] = [kit.createRuntime(LIMITS), kit.createRuntime(LIMITS)];
      return tenantsIn([first, second], async (compiled, config) => ({
        a: await first.createPlugin(compiled, config("a")),
        b: await second.createPlugin(compiled, config("b")),
        events: null,
      }));
    },
  },
  {
    what: "as two handles of one PluginManager",
    make: (kit) => {
      const runtime = kit.createRuntime(LIMITS);
      return tenantsIn([runtime], async (compiled, config) => {
        const manager = new PluginManager(runtime);
        const events: PluginEvent<"message">[] = [];
        manager.addEventListener("message", (event) => void events.push(event));
        return {
          a: manager.get(await manager.loadCompiled(compiled, config("a"))),
          b: manager.get(await manager.loadCompiled(compiled, config("b"))),
          events,
          close: () => manager.close(),
        };
      });
    },
  },
];

/** Reads `key` through `host_get_config` or `host_storage_get`; `null` when there is none. */
async function hostGet(
  plugin: WasmPlugin,
  fn: "host_get_config" | "host_storage_get",
  key: string,
): Promise<string | null> {
  const [ptr, len] = await putString(plugin, KEY_AT, key);
  const length = await plugin.callI32(fn, [ptr, len, OUT_AT, OUT_CAP]);
  return length === -1 ? null : textOf(await plugin.readMemory(OUT_AT, length));
}

/** Writes `key` through `host_set_config` or `host_storage_set`, and checks it succeeded. */
async function hostSet(
  plugin: WasmPlugin,
  fn: "host_set_config" | "host_storage_set",
  key: string,
  value: string,
): Promise<void> {
  const [keyPtr, keyLen] = await putString(plugin, KEY_AT, key);
  const [valuePtr, valueLen] = await putString(plugin, VALUE_AT, value);
  assert.equal(await plugin.callI32(fn, [keyPtr, keyLen, valuePtr, valueLen]), 0);
}

/** Sends `text` to `to` through `host_send_message`. */
async function send(plugin: WasmPlugin, to: string, text: string): Promise<void> {
  const [toPtr, toLen] = await putString(plugin, KEY_AT, to);
  const [textPtr, textLen] = await putString(plugin, VALUE_AT, text);
  assert.equal(await plugin.callI32("host_send_message", [toPtr, toLen, textPtr, textLen]), 0);
}

/** A message as plain data, for `deepEqual`. */
function plain(message: PluginMessage): { from: string; to: string; text: string } {
  return { from: message.from, to: message.to, text: textOf(message.data) };
}

testEachIsolation("Two plugins never see each other's memory, globals, tables or host state", {
  permissions: "none",
}, async (t, kit) => {
  for (const maker of TENANT_MAKERS) {
    await t.step(`two plugins ${maker.what}`, async (t) => {
      await using tenants = await maker.make(kit);
      const { a, b } = tenants;

      await t.step("A's memory writes, by the host or the guest, are invisible to B", async () => {
        await a.writeMemory(0, new Uint8Array([1, 2, 3, 4]));
        await a.callVoid("store", [16, 0x1234_5678]);
        await a.writeMemory(SEED_AT, bytesOf("mine"));
        assert.deepEqual(await b.readMemory(0, 4), new Uint8Array(4));
        assert.equal(await b.callI32("load", [16]), 0);
        assert.equal(textOf(await b.readMemory(SEED_AT, 4)), "seed");
        assert.equal(await a.callI32("load", [16]), 0x1234_5678);
        assert.equal(textOf(await a.readMemory(SEED_AT, 4)), "mine");
      });

      await t.step("A's memory grows alone", async () => {
        assert.equal(await a.callI32("grow", [2]), 1);
        assert.equal(await a.callI32("pages"), 3);
        assert.equal(await b.callI32("pages"), 1);
      });

      await t.step("each plugin counts in its own mutable global", async () => {
        assert.deepEqual([await a.callI32("bump"), await a.callI32("bump")], [1, 2]);
        assert.equal(await b.callI32("counter"), 0);
        assert.equal(await b.callI32("bump"), 1);
        assert.equal(await a.callI32("counter"), 2);
      });

      await t.step("table.set in A changes only A's call_indirect", async () => {
        await a.callVoid("set_slot", [0, 2]);
        await b.callVoid("set_slot", [1, 1]);
        assert.equal(await a.callI32("call_slot", [0]), 2);
        assert.equal(await b.callI32("call_slot", [0]), 1);
        assert.equal(await b.callI32("call_slot", [1]), 1);
        // A's slot 1 is still empty: calling it traps in A.
        await assertRejectsWith(() => a.callI32("call_slot", [1]), TrapError, { kind: "trap" });
      });

      await t.step("host_storage_set in A is not what B's host_storage_get reads", async () => {
        await hostSet(a, "host_storage_set", "key", "from a");
        assert.equal(await hostGet(b, "host_storage_get", "key"), null);
        await hostSet(b, "host_storage_set", "key", "from b");
        assert.equal(await hostGet(a, "host_storage_get", "key"), "from a");
        assert.equal(await hostGet(b, "host_storage_get", "key"), "from b");
      });

      await t.step("each reads its own config, and host_set_config stays its own", async () => {
        assert.equal(await hostGet(a, "host_get_config", "owner"), "a");
        assert.equal(await hostGet(b, "host_get_config", "owner"), "b");
        await hostSet(a, "host_set_config", "shared", "changed by a");
        assert.equal(await hostGet(a, "host_get_config", "shared"), "changed by a");
        assert.equal(await hostGet(b, "host_get_config", "shared"), "x");
        // The plugin writes to a copy, never to the object it was created with.
        assert.deepEqual(tenants.configs.a, { owner: "a", shared: "x" });
      });

      await t.step("A's message, even addressed to B, reaches only A's listeners", async () => {
        await send(a, "b", "hello b");
        assert.deepEqual(tenants.inbox.a.map(plain), [{ from: "a", to: "b", text: "hello b" }]);
        assert.deepEqual(tenants.inbox.b, []);
        await send(b, "a", "hello a");
        assert.deepEqual(tenants.inbox.b.map(plain), [{ from: "b", to: "a", text: "hello a" }]);
        assert.equal(tenants.inbox.a.length, 1);
        if (tenants.events !== null) {
          assert.deepEqual(
            tenants.events.map((event) => [event.pluginId, event.detail.from]),
            [["a", "a"], ["b", "b"]],
          );
        }
      });
    });
  }
});

/** Two tenants of `runtime` that may call tools (to wait at a gate); `configA` adds to A's config. */
async function twoTenants(runtime: WasmRuntime, configA: WasmPluginConfig = {}): Promise<{
  compiled: CompiledModule;
  a: WasmPlugin;
  b: WasmPlugin;
}> {
  const compiled = await runtime.compileWat("tenant", TENANT_WAT);
  const a = await runtime.createPlugin(compiled, {
    name: "a",
    capabilities: [Capability.CallTool],
    ...configA,
  });
  const b = await runtime.createPlugin(compiled, {
    name: "b",
    capabilities: [Capability.CallTool],
  });
  return { compiled, a, b };
}

testEachIsolation("One plugin's timeouts, traps and limits spare another's calls in flight", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime(LIMITS);
  const { a, b } = await twoTenants(runtime);

  for (const fault of [TIMEOUT, TRAP, FUEL, CALL_DEPTH]) {
    await t.step(`${fault.what} in A, while B has ${BURST + 1} calls in flight`, async () => {
      await whileInFlight(runtime, b, () => inflict(fault, a));
      assert.equal(await a.callI32("add", [2, 3]), 5);
    });
  }

  await t.step("A's timeouts, traps and limits interleaved with B's calls", async () => {
    const faults = [TRAP, FUEL, CALL_DEPTH];
    const failures: Promise<WasmError>[] = [];
    const sums: Promise<number>[] = [];
    for (let i = 0; i < 60; i++) {
      sums.push(b.callI32("add", [i, 1000]));
      failures.push(inflict(i % 30 === 0 ? TIMEOUT : faults[i % faults.length]!, a));
    }
    assert.deepEqual(await Promise.all(sums), Array.from({ length: 60 }, (_, i) => i + 1000));
    assert.equal((await Promise.all(failures)).length, 60);
    assert.equal(await a.callI32("add", [2, 3]), 5);
  });

  await t.step("only A's metrics count failures", async () => {
    const [metricsA, metricsB] = [await a.metrics(), await b.metrics()];
    assert.equal(metricsA.failureCount, 4 + 60);
    assert.equal(metricsA.successCount, 4 + 1);
    assert.equal(metricsB.failureCount, 0);
    assert.equal(metricsB.callCount, 4 * (BURST + 2) + 60);
  });
});

testEachIsolation("An aborted call or a stopped plugin ends only its own calls", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime(LIMITS);
  const { compiled, a, b } = await twoTenants(runtime);

  await t.step("A's call aborted in a host tool rejects with the signal's reason", async () => {
    using gate = openGate(runtime);
    const args = await gateArgs(a, gate);
    await whileInFlight(runtime, b, async () => {
      const controller = new AbortController();
      const call = a.callI32("hold", args, { signal: controller.signal });
      await reached(gate, call);
      const reason = new Error("A's caller gave up");
      controller.abort(reason);
      await assert.rejects(call, (err) => err === reason);
    });
    assert.equal(await a.callI32("add", [2, 3]), 5);
  });

  await t.step("A stopped with { abort: true } while it waits on a host tool", async () => {
    using gate = openGate(runtime);
    const args = await gateArgs(a, gate);
    await whileInFlight(runtime, b, async () => {
      const call = a.callI32("hold", args);
      await reached(gate, call);
      await a.stop({ abort: true });
      await assertRejectsWith(() => call, PluginStateError);
      assert.equal(a.state, "stopped");
    });
    await assertRejectsWith(() => a.callI32("add", [2, 3]), PluginStateError);
    // The module is unharmed: a new plugin made from it answers.
    await using again = await runtime.createPlugin(compiled);
    assert.equal(await again.callI32("add", [2, 3]), 5);
  });

  await t.step("B saw no failure", async () => {
    const metrics = await b.metrics();
    assert.equal(metrics.failureCount, 0);
    assert.equal(metrics.callCount, 2 * (BURST + 2));
  });
});

testEachIsolation("A manager handle that fails or is unloaded spares another's calls in flight", {
  permissions: "none",
}, async (t, kit) => {
  await using runtime = kit.createRuntime(LIMITS);
  await using manager = new PluginManager(runtime);
  const failed: string[] = [];
  manager.addEventListener("error", (event) => void failed.push(event.pluginId));
  const compiled = await runtime.compileWat("tenant", TENANT_WAT);
  const config = { capabilities: [Capability.CallTool] };
  const a = await manager.loadCompiled(compiled, { ...config, id: "a" });
  const b = await manager.loadCompiled(compiled, { ...config, id: "b" });
  const [viaA, viaB] = [managed(manager, a), managed(manager, b)];

  await t.step("a's timeouts, traps and limits while b's calls are in flight", async () => {
    for (const fault of [TIMEOUT, TRAP, FUEL, CALL_DEPTH]) {
      await whileInFlight(runtime, viaB, () => inflict(fault, viaA));
    }
    assert.equal(await manager.callI32(a, "add", [2, 3]), 5);
    assert.deepEqual(failed, ["a", "a", "a", "a"]);
    assert.equal(manager.stats().failedCalls, 4);
  });

  await t.step("unload(a, { abort: true }) while a and b both have calls in flight", async () => {
    using gate = openGate(runtime);
    const args = await gateArgs(viaA, gate);
    await whileInFlight(runtime, viaB, async () => {
      const call = viaA.callI32("hold", args);
      await reached(gate, call);
      await manager.unload(a, { abort: true });
      await assertRejectsWith(() => call, PluginStateError);
      assert.deepEqual(manager.listPlugins(), [b]);
      await assertRejectsWith(() => viaA.callI32("add", [2, 3]), PluginNotFoundError, {
        id: "a",
      });
    });
    assert.equal(await viaB.callI32("add", [2, 3]), 5);
  });

  await t.step("every failure the manager saw was a's", async () => {
    assert.deepEqual(failed, ["a", "a", "a", "a", "a"]);
    assert.equal(manager.stats().failedCalls, 5);
    const { metrics } = await manager.getInfo(b);
    assert.equal(metrics.failureCount, 0);
    assert.equal(metrics.callCount, 5 * (BURST + 2) + 1);
  });
});

testEachIsolation("Closing one runtime spares another runtime's plugins and calls in flight", {
  permissions: "none",
}, async (t, kit) => {
  await using first = kit.createRuntime(LIMITS);
  await using second = kit.createRuntime(LIMITS);
  const config = { capabilities: [Capability.CallTool] };
  const a = await first.createPluginFromWat(TENANT_WAT, { ...config, name: "a" });
  const compiled = await second.compileWat("tenant", TENANT_WAT);
  const b = await second.createPlugin(compiled, { ...config, name: "b" });

  await t.step("the first runtime closes after A's call while B's are in flight", async () => {
    using gate = openGate(first);
    const args = await gateArgs(a, gate);
    await whileInFlight(second, b, async () => {
      const call = a.callI32("hold", args);
      await reached(gate, call);
      const closing = first.close();
      // close() lets the running call finish, then stops the plugin.
      gate.release("last call");
      assert.equal(await call, heldResult("last call"));
      await closing;
      assert.equal(a.state, "stopped");
      assert.equal(first.pluginCount, 0);
    });
  });

  await t.step("the second runtime's plugin and its runtime carry on", async () => {
    assert.equal(await b.callI32("add", [2, 3]), 5);
    await using c = await second.createPlugin(compiled, { name: "c" });
    assert.equal(await c.callI32("add", [4, 5]), 9);
    assert.equal(second.pluginCount, 2);
    assert.equal((await b.metrics()).failureCount, 0);
  });
});

/** Resolves `next()` the next time a plugin logs (`spin` logs as it starts spinning). */
function logWatch(): { onLog: () => void; next(): Promise<void> } {
  let waiting: (() => void)[] = [];
  return {
    onLog: () => {
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
    },
    next: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
}

/** Waits until A logs that it spins; fails if its `call` settles first. */
function spinning(watch: Promise<void>, call: Promise<unknown>): Promise<void> {
  return Promise.race([
    watch,
    call.then(() => assert.fail("the spin returned before it started")),
  ]);
}

Deno.test("A spinning worker plugin does not hold up 200 concurrent calls to another", {
  permissions: allowingWorkers("none"),
}, async () => {
  await using runtime = workerRuntime(LIMITS);
  const logs = logWatch();
  const { a, b } = await twoTenants(runtime, { onLog: logs.onLog });

  let spinEnded = false;
  const started = logs.next();
  const spin = inflict(timeout(1_000), a).finally(() => spinEnded = true);
  await spinning(started, spin);
  const sums = await Promise.all(
    Array.from({ length: BURST }, (_, i) => b.callI32("add", [i, BURST])),
  );
  // B's worker answered all of them while A's worker was still spinning.
  assert.equal(spinEnded, false, "A's spin ended before B's calls returned");
  assert.deepEqual(sums, Array.from({ length: BURST }, (_, i) => i + BURST));
  await spin;
  assert.equal(await a.callI32("add", [2, 3]), 5);
  const [metricsA, metricsB] = [await a.metrics(), await b.metrics()];
  assert.deepEqual([metricsA.failureCount, metricsA.successCount], [1, 1]);
  assert.deepEqual([metricsB.failureCount, metricsB.successCount], [0, BURST]);
});

Deno.test("A worker crashed, aborted or stopped mid-spin spares another's calls in flight", {
  permissions: { read: READ_WORKERS, net: ["127.0.0.1"] },
}, async (t) => {
  await using runtime = workerRuntime(faultyWorkers(LIMITS));
  const logs = logWatch();
  const { a, b } = await twoTenants(runtime, {
    capabilities: [Capability.NetworkAccess],
    // Never contacted: the faulty worker crashes on the path before any request.
    allowedHosts: ["127.0.0.1:1"],
    onLog: logs.onLog,
  });

  await t.step("A's worker crashes: WorkerCrashedError, then a fresh worker answers", async () => {
    assert.equal(await a.callI32("bump"), 1);
    await whileInFlight(runtime, b, async () => {
      const error = await assertRejectsWith(
        () => httpFetch(a, "http://127.0.0.1:1/crash"),
        WorkerCrashedError,
        { kind: "worker_crashed" },
      );
      assert.match(error.message, /crashed on purpose/);
    });
    // The count started over: the crash was real, and A's new worker serves.
    assert.equal(await a.callI32("counter"), 0);
    assert.equal(await a.callI32("add", [2, 3]), 5);
  });

  await t.step("A's spin aborted: the signal's reason, then the same worker answers", async () => {
    assert.equal(await a.callI32("bump"), 1);
    await whileInFlight(runtime, b, async () => {
      const controller = new AbortController();
      const started = logs.next();
      const call = a.callVoid("spin", [], { signal: controller.signal });
      await spinning(started, call);
      const reason = new Error("A's caller gave up");
      controller.abort(reason);
      await assert.rejects(call, (err) => err === reason);
    });
    assert.equal(await a.callI32("counter"), 1);
  });

  await t.step("A stopped with { abort: true } mid-spin: PluginStateError", async () => {
    await whileInFlight(runtime, b, async () => {
      const started = logs.next();
      const call = a.callVoid("spin");
      await spinning(started, call);
      await a.stop({ abort: true });
      await assertRejectsWith(() => call, PluginStateError);
      assert.equal(a.state, "stopped");
    });
  });

  await t.step("B's worker served every call and saw no failure", async () => {
    const metrics = await b.metrics();
    assert.equal(metrics.failureCount, 0);
    assert.equal(metrics.callCount, 3 * (BURST + 2));
  });
});

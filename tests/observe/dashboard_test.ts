/**
 * `manager.serve()`: the JSON API, the Server-Sent Events stream, the page
 * and its security headers, the server's life cycle, and — in headless
 * Chromium, as a person would see it — the live page with a plugin's row
 * and an anomaly.
 */

import assert from "node:assert/strict";
import {
  Capability,
  type DashboardServer,
  PluginEvent,
  PluginManager,
  type PluginManagerOptions,
  PluginStateError,
  TrapError,
  type WasmRuntime,
} from "../../mod.ts";
import { delay, inlineRuntime, RUN_SLOW, SLOW } from "../_helpers.ts";
import { eventStream, serializeEvent } from "../../src/observe/_dashboard_events.ts";
import { startDashboardServer } from "../../src/observe/_dashboard_server.ts";
import { Chromium, findChromium } from "../../scripts/_chromium.ts";

const ADD_WAT = `(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "boom") unreachable))`;

/** `work(n)` loops `n` times: its fuel (and time) grows with `n`. */
const WORK_WAT = `(module
  (func (export "work") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)))`;

const XSS_NAME = "<img src=x onerror=alert(1)>";

/** `spam` sends a 60 000-byte message: each is an event of about 1 KiB on `/events`. */
const SPAM_WAT = `(module
  (import "env" "host_send_message" (func $send (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "peer")
  (func (export "spam") (result i32)
    (call $send (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 60000))))`;

/** One Server-Sent Events frame. */
interface Frame {
  readonly event?: string;
  readonly data?: string;
  readonly comments: readonly string[];
}

/** Reads an `/events` body frame by frame. */
class FrameReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next frame, or `undefined` at the end of the stream. */
  async next(): Promise<Frame | undefined> {
    while (!this.#buffer.includes("\n\n")) {
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += value;
    }
    const end = this.#buffer.indexOf("\n\n");
    const lines = this.#buffer.slice(0, end).split("\n");
    this.#buffer = this.#buffer.slice(end + 2);
    let event: string | undefined;
    const data: string[] = [];
    const comments: string[] = [];
    for (const line of lines) {
      if (line.startsWith(":")) comments.push(line.slice(1).trim());
      else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    return {
      comments,
      ...(event ? { event } : {}),
      ...(data.length ? { data: data.join("\n") } : {}),
    };
  }

  /** Reads frames until one satisfies `match`; fails at the end of the stream or after 10 s. */
  async until(match: (frame: Frame) => boolean): Promise<Frame> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no matching frame within 10 s")), 10_000);
    });
    try {
      return await Promise.race([
        (async () => {
          for (let frame = await this.next(); frame; frame = await this.next()) {
            if (match(frame)) return frame;
          }
          throw new Error("the stream ended without a matching frame");
        })(),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

function isEvent(type: string): (frame: Frame) => boolean {
  return (frame) => frame.data !== undefined && JSON.parse(frame.data).type === type;
}

/** A manager on an inline runtime; disposing it closes both. */
function managerWithPlugins(
  options?: PluginManagerOptions,
): { runtime: WasmRuntime; manager: PluginManager } & AsyncDisposable {
  const runtime = inlineRuntime();
  const manager = new PluginManager(runtime, options);
  return {
    runtime,
    manager,
    async [Symbol.asyncDispose]() {
      await manager.close();
      await runtime.close();
    },
  };
}

/** Sends a raw HTTP/1.1 request (so the `Host` header is ours) and returns the status line. */
async function rawStatus(server: DashboardServer, host: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(server.url.port) });
  const request = `GET /api/plugins HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request));
  const response = await new Response(conn.readable).text();
  return response.split("\r\n")[0]!;
}

Deno.test("manager.serve() answers /api/plugins with each plugin's id, name, state, capabilities and metrics", async () => {
  await using env = managerWithPlugins();
  const { manager } = env;
  const adder = await manager.loadWat(ADD_WAT, { name: "adder", capabilities: ["timer"] });
  await manager.initialize(adder);
  await manager.loadWat(ADD_WAT, { name: "idle", id: "idle-1" });
  for (let i = 0; i < 3; i++) await manager.callI32(adder, "add", [i, i]);
  await using server = manager.serve({ port: 0 });
  assert.equal(server.url.hostname, "127.0.0.1");
  assert.notEqual(server.url.port, "");

  const response = await fetch(new URL("/api/plugins", server.url));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  const plugins = await response.json();
  assert.deepEqual(
    plugins.map((p: Record<string, unknown>) => [p.id, p.name, p.state, p.capabilities]),
    [[adder.id, "adder", "ready", ["timer"]], ["idle-1", "idle", "created", []]],
  );
  assert.equal(plugins[0].metrics.callCount, 3);
  assert.equal(plugins[0].metrics.successCount, 3);
  assert.ok(plugins[0].metrics.p99ExecutionTimeNs > 0);
  assert.equal(plugins[0].metrics.currentMemoryBytes, 65536);
  assert.equal(typeof plugins[0].metrics.lastExecution, "string");
  assert.equal(plugins[1].metrics.callCount, 0);
});

Deno.test("GET /events streams the manager's events as JSON: an executed event follows a call", async () => {
  await using env = managerWithPlugins();
  const { manager } = env;
  const adder = await manager.loadWat(ADD_WAT, { name: "adder" });
  await using server = manager.serve({ port: 0 });
  const response = await fetch(new URL("/events", server.url));
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-store");
  const frames = new FrameReader(response.body!);
  const hello = await frames.next();
  assert.deepEqual(hello?.comments, ["connected"]);

  await manager.callI32(adder, "add", [2, 3]);
  await assert.rejects(manager.callVoid(adder, "boom"), TrapError);
  const executed = JSON.parse((await frames.until(isEvent("executed"))).data!);
  assert.equal(executed.pluginId, adder.id);
  assert.equal(typeof executed.time, "number");
  assert.equal(executed.detail.function, "add");
  assert.equal(executed.detail.success, true);
  assert.ok(executed.detail.durationMs >= 0);
  const error = JSON.parse((await frames.until(isEvent("error"))).data!);
  assert.equal(error.detail.function, "boom");
  assert.equal(error.detail.error.kind, "trap");
  assert.equal(error.detail.error.name, "TrapError");
  await frames.cancel();
});

Deno.test("GET /events lets go of its subscription when the client goes away", async () => {
  await using env = managerWithPlugins();
  const { manager } = env;
  const adder = await manager.loadWat(ADD_WAT);
  let opened = 0;
  let returned = 0;
  const source = {
    listPlugins: () => manager.listPlugins(),
    getInfo: manager.getInfo.bind(manager),
    subscribe: (options?: { bufferSize?: number }) => {
      const subscription = manager.subscribe(options);
      opened++;
      const original = subscription.return.bind(subscription);
      subscription.return = () => {
        returned++;
        return original();
      };
      return subscription;
    },
  };
  await using server = startDashboardServer(source, { port: 0 });
  const response = await fetch(new URL("/events", server.url));
  const frames = new FrameReader(response.body!);
  await manager.callI32(adder, "add", [1, 1]);
  await frames.until(isEvent("executed"));
  assert.deepEqual([opened, returned], [1, 0]);
  await frames.cancel();
  const deadline = Date.now() + 5_000;
  while (returned === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(returned, 1, "the subscription ended with the connection");
});

Deno.test("GET /events answers 503 beyond the open streams it allows", async () => {
  await using env = managerWithPlugins();
  await using server = startDashboardServer(env.manager, { port: 0 }, { maxEventStreams: 1 });
  const frames = new FrameReader((await fetch(new URL("/events", server.url))).body!);
  await frames.next();
  const second = await fetch(new URL("/events", server.url));
  assert.equal(second.status, 503);
  await second.body?.cancel();
  await frames.cancel();
  // Once the first client has gone, a new one gets in.
  const deadline = Date.now() + 5_000;
  let status = 503;
  while (status === 503 && Date.now() < deadline) {
    const again = await fetch(new URL("/events", server.url));
    status = again.status;
    await again.body?.cancel();
    if (status === 503) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(status, 200);
});

Deno.test("GET /events sends heartbeat comments while nothing happens", async () => {
  await using env = managerWithPlugins();
  await using server = startDashboardServer(env.manager, { port: 0 }, { heartbeatMs: 20 });
  const response = await fetch(new URL("/events", server.url));
  const frames = new FrameReader(response.body!);
  const frame = await frames.until((f) => f.comments.includes("heartbeat"));
  assert.equal(frame.data, undefined);
  await frames.cancel();
});

Deno.test("An event stream tells a slow client how many events it missed", async () => {
  await using env = managerWithPlugins();
  const { manager } = env;
  const adder = await manager.loadWat(ADD_WAT);
  const subscription = manager.subscribe({ bufferSize: 4 });
  // Each call makes three events (two state changes and `executed`): 30 for 4 places.
  for (let i = 0; i < 10; i++) await manager.callI32(adder, "add", [i, 0]);
  assert.equal(subscription.dropped, 26);
  let ended = 0;
  const stream = eventStream(subscription, { heartbeatMs: 60_000, onEnd: () => ended++ });
  const frames = new FrameReader(stream.body);
  assert.deepEqual((await frames.next())?.comments, ["connected"]);
  const dropped = await frames.next();
  assert.equal(dropped?.event, "dropped");
  assert.deepEqual(JSON.parse(dropped!.data!), { count: 26 });
  const first = await frames.next();
  assert.equal(JSON.parse(first!.data!).type, "executed", "the oldest kept event follows");
  // close() sends the events still buffered, then ends the stream.
  stream.close();
  let rest = 0;
  while (await frames.next() !== undefined) rest++;
  assert.equal(rest, 3);
  assert.equal(ended, 1);
});

Deno.test("serializeEvent() writes errors, bytes and bigints as JSON", async (t) => {
  await t.step("an error becomes { name, kind, message }", () => {
    const error = new TrapError(undefined, { trap: "unreachable" });
    const json = JSON.parse(
      serializeEvent(new PluginEvent("error", "p-1", { error, function: "f" })),
    );
    assert.deepEqual(json.detail, {
      error: { name: "TrapError", kind: "trap", message: error.message },
      function: "f",
    });
    assert.deepEqual([json.type, json.pluginId], ["error", "p-1"]);
  });
  await t.step("message bytes become { byteLength, text }", () => {
    const data = new TextEncoder().encode("hi <b>there</b>");
    const event = new PluginEvent("message", "p-1", { from: "p-1", to: "ui", data });
    assert.deepEqual(JSON.parse(serializeEvent(event)).detail.data, {
      byteLength: 15,
      text: "hi <b>there</b>",
    });
  });
  await t.step("a cyclic thrown value does not break the stream", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const json = JSON.parse(serializeEvent(new PluginEvent("error", "p-1", { error: cyclic })));
    assert.equal(json.type, "error");
    assert.equal(typeof json.detail.error.message, "string");
  });
  await t.step("the JSON stays on one line, as an SSE data field must", () => {
    const event = new PluginEvent("loaded", "p-1", { name: "two\nlines\r" });
    assert.ok(!/[\r\n]/.test(serializeEvent(event)));
  });
});

Deno.test("GET / is one self-contained page under a strict Content-Security-Policy", async () => {
  await using env = managerWithPlugins();
  await using server = env.manager.serve({ port: 0 });
  const [first, second] = [await fetch(server.url), await fetch(server.url)];
  const html = await first.text();
  await second.body?.cancel();
  assert.equal(first.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(first.headers.get("x-content-type-options"), "nosniff");
  assert.equal(first.headers.get("x-frame-options"), "DENY");
  const csp = first.headers.get("content-security-policy")!;
  const nonce = csp.match(/script-src 'nonce-([^']+)'/)?.[1];
  assert.ok(nonce !== undefined && nonce.length >= 16, csp);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.notEqual(second.headers.get("content-security-policy"), csp, "a fresh nonce per response");
  assert.ok(html.includes(`<script nonce="${nonce}">`));
  assert.ok(html.includes(`<style nonce="${nonce}">`));
  // Nothing is fetched from elsewhere: no external scripts, styles, fonts or images.
  assert.doesNotMatch(html, /https?:\/\/|\bsrc=|@import|url\(/);
  assert.doesNotMatch(html, /\.innerHTML\b|insertAdjacentHTML|document\.write/);
});

Deno.test("The server answers GET and HEAD only, and 404 for anything else", async () => {
  await using env = managerWithPlugins();
  await using server = env.manager.serve({ port: 0 });
  const post = await fetch(new URL("/api/plugins", server.url), { method: "POST", body: "{}" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
  const missing = await fetch(new URL("/api/plugins/../../etc/passwd", server.url));
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const unknown = await fetch(new URL("/nope", server.url));
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  const head = await fetch(new URL("/events", server.url), { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(await head.text(), "");
});

Deno.test("On a loopback address the server refuses requests for another host (DNS rebinding)", async () => {
  await using env = managerWithPlugins();
  await using server = env.manager.serve({ port: 0 });
  assert.equal(
    await rawStatus(server, `evil.example:${server.url.port}`),
    "HTTP/1.1 403 Forbidden",
  );
  assert.equal(await rawStatus(server, `localhost:${server.url.port}`), "HTTP/1.1 200 OK");
  assert.equal(await rawStatus(server, `127.0.0.1:${server.url.port}`), "HTTP/1.1 200 OK");
  assert.equal(await rawStatus(server, `[::ffff:127.0.0.1]:${server.url.port}`), "HTTP/1.1 200 OK");
});

Deno.test("The server refuses what a browser says another site's page asked", async () => {
  // Any web page could open the event streams (up to the cap) and keep the host serializing.
  await using env = managerWithPlugins();
  await using server = env.manager.serve({ port: 0 });
  const status = async (headers: HeadersInit) => {
    const response = await fetch(new URL("/metrics", server.url), { headers });
    await response.body?.cancel();
    return response.status;
  };
  assert.equal(await status({ "sec-fetch-site": "cross-site" }), 403);
  assert.equal(await status({ origin: "https://evil.example" }), 403);
  assert.equal(await status({ origin: "null" }), 403);
  assert.equal(await status({ "sec-fetch-site": "same-origin", origin: server.url.origin }), 200);
  // A person following a link from another page: that page cannot read what it gets.
  const navigation = { "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" };
  assert.equal(await status({ ...navigation, "sec-fetch-site": "cross-site" }), 200);
  assert.equal(
    await status({
      "sec-fetch-mode": "navigate",
      "sec-fetch-dest": "iframe",
      "sec-fetch-site": "cross-site",
    }),
    403,
  );
  assert.equal(await status({}), 200, "a scraper sends neither");
});

Deno.test("A loopback address spelled otherwise keeps the DNS rebinding check", async () => {
  // `127.1` binds 127.0.0.1, but the check was decided from the name asked for: it was off.
  await using env = managerWithPlugins();
  await using server = env.manager.serve({ port: 0, hostname: "127.1" });
  assert.equal(server.url.hostname, "127.0.0.1");
  assert.equal(
    await rawStatus(server, `evil.example:${server.url.port}`),
    "HTTP/1.1 403 Forbidden",
  );
  assert.equal(await rawStatus(server, `127.0.0.1:${server.url.port}`), "HTTP/1.1 200 OK");
});

Deno.test("manager.serve() rejects bad options with a typed error", async (t) => {
  await using env = managerWithPlugins();
  const { manager } = env;
  await t.step("an unknown key is a TypeError naming the nearest key", () => {
    assert.throws(
      () => manager.serve({ prot: 0 } as never),
      (e: Error) => e instanceof TypeError && /'prot'.*'port'/.test(e.message),
    );
  });
  await t.step("a port out of range is a RangeError", () => {
    for (const port of [-1, 65536, 1.5, NaN]) {
      assert.throws(() => manager.serve({ port }), RangeError, `port ${port}`);
    }
  });
  await t.step(
    "a port that is no number, an empty hostname or a fake signal is a TypeError",
    () => {
      assert.throws(() => manager.serve({ port: "80" as never }), TypeError);
      assert.throws(() => manager.serve({ port: 0, hostname: "" }), TypeError);
      assert.throws(() => manager.serve({ port: 0, signal: {} as never }), TypeError);
      assert.throws(() => manager.serve(42 as never), TypeError);
    },
  );
  await t.step("an aborted signal throws its reason and listens on nothing", () => {
    const reason = new Error("already over");
    assert.throws(() => manager.serve({ port: 0, signal: AbortSignal.abort(reason) }), reason);
  });
  await t.step("a port in use is Deno.errors.AddrInUse naming the address", async () => {
    await using first = manager.serve({ port: 0 });
    const port = Number(first.url.port);
    assert.throws(
      () => manager.serve({ port }),
      (e: Error) => e instanceof Deno.errors.AddrInUse && e.message.includes(`127.0.0.1:${port}`),
    );
  });
  await t.step("a closed manager does not serve", async () => {
    const closed = new PluginManager(env.runtime);
    await closed.close();
    assert.throws(() => closed.serve({ port: 0 }), PluginStateError);
  });
});

Deno.test("The server stops on close(), on its signal, and when the manager closes", async (t) => {
  async function refused(server: DashboardServer): Promise<void> {
    await assert.rejects(fetch(new URL("/api/plugins", server.url)), TypeError);
  }

  await t.step(
    "close() ends open event streams and stops listening; it is idempotent",
    async () => {
      await using env = managerWithPlugins();
      const server = env.manager.serve({ port: 0 });
      const frames = new FrameReader((await fetch(new URL("/events", server.url))).body!);
      await frames.next();
      await Promise.all([server.close(), server.close()]);
      assert.equal(await frames.next(), undefined, "the stream ended");
      await server.finished;
      await refused(server);
    },
  );

  await t.step(
    "close() ends within a second while a client no longer reads its events",
    async () => {
      await using env = managerWithPlugins();
      const handle = await env.manager.loadWat(SPAM_WAT, {
        capabilities: [Capability.SendMessage],
      });
      const server = env.manager.serve({ port: 0 });
      const client = await Deno.connect({ hostname: "127.0.0.1", port: Number(server.url.port) });
      try {
        await client.write(
          new TextEncoder().encode("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        await delay(100);
        // About 1 KiB of SSE an event, sent as they come: the socket's buffers fill, as the
        // client reads nothing.
        for (let i = 0; i < 3000; i++) {
          await env.manager.callI32(handle, "spam");
          if (i % 100 === 0) await delay(1);
        }
        await delay(300);
        // Deno's shutdown waited for the client to go (the manager's close() too).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const closed = await Promise.race([
          server.close().then(() => true),
          new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5000)),
        ]);
        clearTimeout(timer);
        assert.ok(closed, "close() still waits after 5 s");
      } finally {
        client.close();
      }
      await server.finished;
    },
  );

  await t.step("aborting the signal", async () => {
    await using env = managerWithPlugins();
    const controller = new AbortController();
    const server = env.manager.serve({ port: 0, signal: controller.signal });
    assert.equal(
      (await fetch(new URL("/api/plugins", server.url)).then((r) => r.json())).length,
      0,
    );
    controller.abort();
    await server.finished;
    await refused(server);
    await server.close();
  });

  await t.step("closing the manager: its last events first, then the end", async () => {
    // The server closed before the unloads: clients never learned the plugins went away.
    await using env = managerWithPlugins();
    await env.manager.loadWat(ADD_WAT, { id: "kept" });
    const server = env.manager.serve({ port: 0 });
    const frames = new FrameReader((await fetch(new URL("/events", server.url))).body!);
    await frames.next();
    await env.manager.close();
    const types: string[] = [];
    for (let frame = await frames.next(); frame; frame = await frames.next()) {
      if (frame.data !== undefined) types.push(JSON.parse(frame.data).type);
    }
    assert.deepEqual(types.filter((type) => type !== "state_changed"), ["unloaded"]);
    assert.ok(types.includes("state_changed"), types.join());
    await server.finished;
    await refused(server);
  });
});

const chromium = findChromium();
if (chromium === undefined) {
  console.warn(
    "%cdashboard_test.ts: no Chromium found, the browser test is skipped " +
      "(install it with `apt-get install -y chromium`, or set CHROMIUM_PATH)",
    "color: yellow",
  );
}

Deno.test({
  name: `${SLOW}In headless Chromium the page shows a plugin's row, names as text, and an anomaly`,
  ignore: !RUN_SLOW || chromium === undefined,
  async fn() {
    await using env = managerWithPlugins({ anomaly: { warmupCalls: 20 } });
    const { manager } = env;
    const worker = await manager.loadWat(WORK_WAT, { name: "worker", id: "worker-1" });
    await manager.initialize(worker);
    const xss = await manager.loadWat(ADD_WAT, { name: XSS_NAME, id: "xss-1" });
    await using server = manager.serve({ port: 0 });
    await using browser = await Chromium.launch({ path: chromium! });
    const page = await browser.open(server.url);
    await page.waitFor(`document.getElementById("status").className === "live"`);

    for (let i = 0; i < 30; i++) await manager.callI32(worker, "work", [10]);
    await manager.callI32(xss, "add", [1, 2]);
    await page.waitFor(
      `document.querySelector('tr[data-plugin-id="worker-1"] td:nth-child(5)')?.textContent === "30"`,
    );
    const row = await page.evaluate<string[]>(
      `[...document.querySelector('tr[data-plugin-id="worker-1"]').cells].map((c) => c.textContent)`,
    );
    assert.deepEqual(row.slice(0, 3), ["worker", "worker-1", "ready"]);
    assert.match(row[6]!, /\d (ns|µs|ms)$/, "p50 is shown with a unit");

    // The plugin's name is text on the page, never markup.
    const xssCell = await page.evaluate<string>(
      `document.querySelector('tr[data-plugin-id="xss-1"] td.name').textContent`,
    );
    assert.equal(xssCell, XSS_NAME);
    assert.equal(await page.evaluate<number>(`document.querySelectorAll("img").length`), 0);

    // Fuel per call jumps a thousandfold: the detector reports it within a few calls.
    for (let i = 0; i < 20; i++) await manager.callI32(worker, "work", [10_000]);
    await page.waitFor(`document.querySelector("#anomalies li.anomaly") !== null`);
    const anomaly = await page.evaluate<string>(
      `document.querySelector("#anomalies li").textContent`,
    );
    assert.match(anomaly, /anomaly.*worker/);
    assert.match(anomaly, /baseline/);
    await page.waitFor(
      `document.querySelector('tr[data-plugin-id="worker-1"]').classList.contains("anomalous")`,
    );

    const png = await page.screenshot();
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const width = new DataView(png.buffer, png.byteOffset).getUint32(16);
    assert.equal(width, 1280);
    const file = await Deno.makeTempFile({ prefix: "wasmplug-dashboard-", suffix: ".png" });
    await Deno.writeFile(file, png);
    console.log(`dashboard screenshot: ${file}`);

    assert.deepEqual(page.dialogs, [], "no script ran from a plugin's name");
    assert.deepEqual(page.problems, [], "no exception, console error or CSP violation");
  },
});

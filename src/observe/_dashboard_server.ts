/**
 * The HTTP server behind `manager.serve()`: routes, security headers, and
 * the life cycle (signal, `close()`, the manager closing).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describeValue } from "../common/mod.ts";
import { assertKnownKeys, optionFields } from "../common/mod.ts";
import type { EventSubscription } from "../event_subscription.ts";
import type { PluginHandle, PluginInfo, SubscribeOptions } from "../plugin_manager_types.ts";
import { dashboardPage } from "./_dashboard_page.ts";
import { type EventStream, eventStream } from "./_dashboard_events.ts";
import {
  type DurationHistogram,
  PROMETHEUS_CONTENT_TYPE,
  type PrometheusPlugin,
  renderPrometheus,
} from "./_prometheus.ts";
import {
  type DashboardServer,
  DEFAULT_DASHBOARD_PORT,
  type ServeOptions,
} from "./dashboard_server.ts";

const logger = getLogger(["wasmplug", "dashboard"]);

const SERVE_OPTION_KEYS = ["port", "hostname", "signal"] as const;
/** Events a slow `/events` client may fall behind by before the oldest are dropped. */
const EVENT_BUFFER_SIZE = 256;
const DEFAULT_HEARTBEAT_MS = 15_000;
/** Open `/events` streams at most: each one serializes every event while it lasts. */
const MAX_EVENT_STREAMS = 32;
/**
 * How long `close()` waits for the server's connections to end: past it, it
 * resolves, and a connection still open (a client that stopped reading) no
 * longer keeps the process alive, unless a write to it is pending (a full
 * socket buffer), which Deno keeps until the client reads or goes.
 */
const CLOSE_WAIT_MS = 1000;

/** Whether `promise` settles within `ms` (its timer is cleared when it does). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the server needs from a manager. */
export interface DashboardSource {
  listPlugins(): PluginHandle[];
  getInfo(handle: PluginHandle): Promise<PluginInfo>;
  subscribe(options?: SubscribeOptions): EventSubscription;
}

/** Hooks the manager (and tests) give the server. */
export interface DashboardInternals {
  /** A plugin's latency histogram, for the Prometheus buckets. */
  readonly durations?: (handle: PluginHandle) => DurationHistogram | undefined;
  /** How often `/events` sends a heartbeat comment. */
  readonly heartbeatMs?: number;
  /** How many `/events` streams may be open at once. */
  readonly maxEventStreams?: number;
  /** Called once when the server has stopped. */
  readonly onClose?: () => void;
}

/**
 * Starts serving `source`'s dashboard.
 *
 * @throws {TypeError} On an unknown option or an option of the wrong type.
 * @throws {RangeError} If `port` is not an integer from 0 to 65535.
 * @throws {unknown} The reason of `signal` if it is already aborted.
 */
export function startDashboardServer(
  source: DashboardSource,
  options: ServeOptions | undefined,
  internals: DashboardInternals = {},
): DashboardServer {
  const { port, hostname, signal } = checkOptions(options);
  signal?.throwIfAborted();
  const routes: Routes = { source, internals, streams: new Set(), loopback: true };
  const server = listen(port, hostname, (request) => route(routes, request));
  // From the address bound, not the name asked for: `127.1`, `0:0:0:0:0:0:0:1` or a name
  // from /etc/hosts listen on loopback too (and were left without the Host check). Set before
  // any request is read: requests reach `route` only after this function returns.
  routes.loopback = isLoopback(server.addr.hostname);
  if (!routes.loopback) {
    logger.warn(
      "The dashboard listens on {hostname}, beyond this machine; it has no authentication",
      { hostname },
    );
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      signal?.removeEventListener("abort", onAbort);
      for (const stream of [...routes.streams]) stream.close();
      // Deno's shutdown waits for every response to be sent: a client that stopped reading
      // would hold it (and the manager's close()) for as long as it stays connected.
      if (!await settlesWithin(server.shutdown(), CLOSE_WAIT_MS)) {
        server.unref();
        logger.warn(
          "A dashboard client that does not read is still connected; the server ends when it goes",
        );
      }
      internals.onClose?.();
    })();
    return closing;
  }
  function onAbort(): void {
    void close();
  }
  signal?.addEventListener("abort", onAbort, { once: true });

  const url = new URL(`http://${formatHost(server.addr.hostname)}:${server.addr.port}/`);
  logger.info("Dashboard at {url}", { url: url.href });
  return {
    url,
    finished: server.finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** What the routes of one server share. */
interface Routes {
  readonly source: DashboardSource;
  readonly internals: DashboardInternals;
  /** The `/events` streams open now. */
  readonly streams: Set<EventStream>;
  /** Whether the server listens on a loopback address (and answers only requests for one). */
  loopback: boolean;
}

/** Starts `Deno.serve`; an address in use fails with a message that says which. */
function listen(
  port: number,
  hostname: string,
  handler: (request: Request) => Promise<Response>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({
      port,
      hostname,
      onListen: () => {},
      onError: (error) => {
        logger.error("The dashboard failed to answer a request: {error}", { error });
        return text(500, "Internal server error\n");
      },
    }, handler);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    throw new Deno.errors.AddrInUse(
      `Cannot serve the dashboard on ${hostname}:${port}: the address is in use` +
        (port === 0 ? "" : " (port 0 picks any free port)"),
      { cause: error },
    );
  }
}

/** Answers one request. */
async function route(routes: Routes, request: Request): Promise<Response> {
  if (routes.loopback && !isLoopback(hostOf(request))) {
    return text(403, "Forbidden: this dashboard answers only requests for a loopback host\n");
  }
  // Its own page reads it from the same origin; another site's page (which could open event
  // streams and keep the host serializing for them) is refused, as the browser says it is.
  if (fromOtherSite(request)) {
    return text(403, "Forbidden: this dashboard answers only its own page and direct requests\n");
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return text(405, "Method not allowed\n", { allow: "GET, HEAD" });
  }
  const head = request.method === "HEAD";
  const path = new URL(request.url).pathname;
  switch (path) {
    case "/":
      return page();
    case "/events":
      return head ? new Response(null, { headers: eventHeaders() }) : events(routes);
    case "/metrics":
      return respond(renderPrometheus(await prometheusPlugins(routes)), PROMETHEUS_CONTENT_TYPE);
    case "/api/plugins":
      return respond(
        JSON.stringify(await pluginInfos(routes.source)),
        "application/json; charset=utf-8",
      );
    default:
      return text(404, "Not found\n");
  }
}

/** `/events`: a Server-Sent Events stream of the manager's events, while there is room for one. */
function events(routes: Routes): Response {
  const { source, internals, streams } = routes;
  if (streams.size >= (internals.maxEventStreams ?? MAX_EVENT_STREAMS)) {
    return text(503, "Too many event streams are open\n", { "retry-after": "5" });
  }
  const subscription = source.subscribe({ bufferSize: EVENT_BUFFER_SIZE });
  const stream = eventStream(subscription, {
    heartbeatMs: internals.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    onEnd: () => streams.delete(stream),
  });
  streams.add(stream);
  return new Response(stream.body, { headers: eventHeaders() });
}

/** The info of every plugin; one unloaded meanwhile is simply left out. */
async function pluginInfos(source: DashboardSource): Promise<PluginInfo[]> {
  const handles = source.listPlugins();
  const infos = await Promise.allSettled(handles.map((h) => source.getInfo(h)));
  return infos.flatMap((info) => info.status === "fulfilled" ? [info.value] : []);
}

/** What `/metrics` shows of each plugin: its info, and its latency histogram if there is one. */
async function prometheusPlugins(routes: Routes): Promise<PrometheusPlugin[]> {
  const infos = await pluginInfos(routes.source);
  return infos.map((info) => {
    let durations: DurationHistogram | undefined;
    try {
      durations = routes.internals.durations?.({ id: info.id });
    } catch {
      durations = undefined;
    }
    return { id: info.id, name: info.name, metrics: info.metrics, durations };
  });
}

function checkOptions(
  options: ServeOptions | undefined,
): { port: number; hostname: string; signal: AbortSignal | undefined } {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `Cannot serve the dashboard: expected an options object, received ${describeValue(options)}`,
    );
  }
  assertKnownKeys("the serve options", options, SERVE_OPTION_KEYS);
  const { port = DEFAULT_DASHBOARD_PORT, hostname = "127.0.0.1", signal } = optionFields(
    options,
    SERVE_OPTION_KEYS,
  ) as ServeOptions;
  if (typeof port !== "number") {
    throw new TypeError(
      `Cannot serve the dashboard as 'port' must be a number: current value is ${
        describeValue(port)
      }`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot serve the dashboard as 'port' must be an integer from 0 to 65535: current value is ${port}`,
    );
  }
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(
      `Cannot serve the dashboard as 'hostname' must be a non-empty string: current value is ${
        describeValue(hostname)
      }`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot serve the dashboard as 'signal' must be an AbortSignal: current value is ${
        describeValue(signal)
      }`,
    );
  }
  return { port, hostname, signal };
}

/**
 * Whether a browser says another site's page made `request`: `Sec-Fetch-Site`
 * `cross-site` or `same-site`, or an `Origin` whose host is not the one the
 * request was addressed to. Requests without these (curl, a Prometheus
 * scraper) are direct, and so is a person following a link to the dashboard
 * (a navigation: the page that linked cannot read what it gets).
 */
function fromOtherSite(request: Request): boolean {
  const { headers } = request;
  if (
    headers.get("sec-fetch-mode") === "navigate" && headers.get("sec-fetch-dest") === "document"
  ) {
    return false;
  }
  const site = headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") return true;
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  try {
    return new URL(origin).host !== (request.headers.get("host") ?? "");
  } catch {
    return true; // "null" (a sandboxed frame, a file) is no origin of this server
  }
}

/** The host name a request was addressed to, from its `Host` header. */
function hostOf(request: Request): string {
  const host = request.headers.get("host") ?? "";
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return "";
  }
}

/**
 * Whether `hostname` (a name, an address, bracketed or not) is a loopback
 * one, in any spelling a URL reads the same (`127.1`, `0:0:0:0:0:0:0:1`,
 * `::ffff:127.0.0.1`).
 */
function isLoopback(hostname: string): boolean {
  const bare = hostname.replace(/^\[(.*)\]$/, "$1");
  let name: string;
  try {
    name = new URL(`http://${formatHost(bare)}/`).hostname;
  } catch {
    return false;
  }
  name = name.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) ||
    /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(name);
}

function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** Headers on every response: no sniffing, no caching, no framing, no referrer. */
function baseHeaders(contentType: string): Headers {
  return new Headers({
    "content-type": contentType,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
  });
}

function respond(body: string, contentType: string): Response {
  return new Response(body, { headers: baseHeaders(contentType) });
}

function text(status: number, body: string, extra: Record<string, string> = {}): Response {
  const headers = baseHeaders("text/plain; charset=utf-8");
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return new Response(body, { status, headers });
}

function eventHeaders(): Headers {
  const headers = baseHeaders("text/event-stream; charset=utf-8");
  headers.set("x-accel-buffering", "no");
  return headers;
}

function page(): Response {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const headers = baseHeaders("text/html; charset=utf-8");
  headers.set(
    "content-security-policy",
    [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
  return new Response(dashboardPage(nonce), { headers });
}

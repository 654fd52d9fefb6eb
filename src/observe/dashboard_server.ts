/**
 * The options and the handle of `manager.serve()`: a live dashboard, a
 * Server-Sent Events stream, a Prometheus endpoint and a JSON API for the
 * plugins of one `PluginManager`.
 *
 * @module
 */

/**
 * The port `manager.serve()` listens on when `port` is not given. Not
 * exported from `mod.ts`: {@linkcode ServeOptions.port} documents it.
 */
export const DEFAULT_DASHBOARD_PORT = 8787;

/**
 * Options of `PluginManager.serve()`.
 *
 * @example Any free port, stopped by a signal
 * ```ts
 * import type { ServeOptions } from "@wasmplug/wasmplug";
 * const controller = new AbortController();
 * const options: ServeOptions = { port: 0, hostname: "127.0.0.1", signal: controller.signal };
 * ```
 */
export interface ServeOptions {
  /**
   * The TCP port to listen on; `0` picks any free port (read it from
   * `server.url`).
   *
   * @default {8787}
   */
  port?: number;
  /**
   * The address to listen on. The dashboard has no authentication: keep the
   * loopback default unless something in front of it checks who may look.
   * While it listens on a loopback address it only answers requests whose
   * `Host` is a loopback name, so a web page cannot read it through DNS
   * rebinding.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

/**
 * A running dashboard server, from `PluginManager.serve()`.
 *
 * It serves:
 * - `/`: the live HTML dashboard (one self-contained page);
 * - `/events`: the manager's events as Server-Sent Events, each `data:` a JSON
 *   object `{ type, pluginId, time, detail }`;
 * - `/metrics`: the Prometheus text exposition format 0.0.4;
 * - `/api/plugins`: JSON, a list of `{ id, name, state, capabilities, metrics }`.
 *
 * Closing the manager closes its servers too.
 *
 * @example Serve, read the metrics, close
 * ```ts
 * import { PluginManager, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * await using manager = new PluginManager(runtime);
 * await manager.loadWat('(module (func (export "one") (result i32) i32.const 1))', { name: "one" });
 * await using server = manager.serve({ port: 0 });
 * const response = await fetch(new URL("/metrics", server.url));
 * console.log((await response.text()).includes('plugin_name="one"')); // true
 * ```
 */
export interface DashboardServer extends AsyncDisposable {
  /** Where the dashboard is, e.g. `http://127.0.0.1:8787/`. */
  readonly url: URL;
  /**
   * Settles once the server has stopped (after `close()` or the signal) and
   * its last connection has ended.
   */
  readonly finished: Promise<void>;
  /**
   * Ends every event stream and stops the server. Idempotent. It waits at
   * most a second for the connections to end: a client that stopped reading
   * its event stream stays connected until it goes, and `finished` settles
   * then. While the server still writes to it (its socket's buffer full),
   * that write keeps the process alive: Deno can neither finish nor drop it
   * (measured with Deno 2.9.6 and no wasmplug code).
   *
   * @example
   * ```ts ignore
   * await server.close();
   * ```
   */
  close(): Promise<void>;
}

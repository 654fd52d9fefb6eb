/**
 * Helpers of the worker-only tests: the faulty worker entry, and the
 * permissions a test needs to spawn it.
 *
 * @module
 */

import type { CallOptions, RuntimeConfig, WasmPlugin } from "../../mod.ts";
import { withInternalOptions } from "../../src/backend/_internal_options.ts";
import { DENO, putString, textOf, WORKER_SOURCES } from "../_helpers.ts";

/** The folder of the faulty worker entry (which the host must be able to read). */
export const FIXTURES: string = new URL("./fixtures/", import.meta.url).pathname;

/** Read permission for the worker entry, the real one and the faulty one. */
export const READ_WORKERS: string[] = [WORKER_SOURCES, FIXTURES];

/** `config` whose plugin workers run `fixtures/faulty_worker.ts`. */
export function faultyWorkers(config: RuntimeConfig = {}): RuntimeConfig {
  return withInternalOptions(config, {
    workerUrl: new URL("./fixtures/faulty_worker.ts", import.meta.url),
  });
}

/** Where {@linkcode httpFetch} writes the response, and how much room it has. */
const OUT = 1024;
const OUT_CAP = 16_384;

/**
 * GETs `url` through `env.host_http_fetch` of a plugin made from
 * `hostFunctionsWat("host_http_fetch")`, and returns the response's body.
 */
export async function httpFetch(
  plugin: WasmPlugin,
  url: string,
  options?: CallOptions,
): Promise<string> {
  const [ptr, len] = await putString(plugin, 0, JSON.stringify({ url }));
  const length = await plugin.callI32("host_http_fetch", [ptr, len, OUT, OUT_CAP], options);
  const response = JSON.parse(textOf(await plugin.readMemory(OUT, length)));
  return response.body;
}

/**
 * Runs `fixtures/<script>` with `args` in a Deno process of its own (worker
 * options on, the worker sources and `read` readable), killed after `timeoutMs`.
 */
export function runFixture(
  script: string,
  args: readonly string[],
  timeoutMs: number,
  read: readonly string[] = [],
): Promise<Deno.CommandOutput> {
  return new Deno.Command(DENO, {
    args: [
      "run",
      "--no-check",
      "--unstable-worker-options",
      `--allow-read=${[WORKER_SOURCES, ...read].join(",")}`,
      `tests/worker/fixtures/${script}`,
      ...args,
    ],
    cwd: new URL("../..", import.meta.url),
    stdin: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
}

/**
 * Where plugin workers start from: the worker entry bundled at build time
 * (`_worker_bundle.generated.ts`, made by `deno task build:worker`), served
 * from a `blob:` URL made once per process. Loading it reads no file (no read
 * permission on wasmplug's sources), type-checks nothing, and fetches nothing
 * (the same when wasmplug itself was imported from a URL).
 *
 * @module
 */

import { WORKER_SOURCE } from "./_worker_bundle.generated.ts";

let url: URL | undefined;

/** The `blob:` URL of the bundled worker entry, made on first use and kept for the process. */
export function bundledWorkerUrl(): URL {
  url ??= new URL(
    URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" })),
  );
  return url;
}

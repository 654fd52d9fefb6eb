/**
 * A WASI command compiled from C with wasi-libc (`c_wasi/main.c`, built by
 * `c_wasi/build.sh`): it upper-cases its stdin, prints a file from the
 * directory preopened as `/data`, fails to read past that directory or to
 * use the network, and exits with code 3.
 *
 *     deno run --allow-read=examples examples/c_wasi.ts
 *
 * @module
 */

import { WasiPreview1 } from "../src/wasi/wasi_preview1.ts";
import type { Print } from "./_wat.ts";

/** A file URL as a path Deno's file system calls take. */
function pathOf(url: URL): string {
  const path = decodeURIComponent(url.pathname);
  return Deno.build.os === "windows" ? path.slice(1).replaceAll("/", "\\") : path;
}

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  const bytes = await Deno.readFile(new URL("./c_wasi/c_wasi.wasm", import.meta.url));
  using wasi = new WasiPreview1({
    args: ["c_wasi", "--from", "deno"],
    env: { PROBE_PATHS: "/data/../secret.txt:/etc/hostname" },
    stdin: new TextEncoder().encode("hello from the host\nsecond line\n"),
    preopens: { "/data": pathOf(new URL("./c_wasi/data", import.meta.url)) },
    fileSystem: true,
  });
  const { instance } = await WebAssembly.instantiate(bytes, {
    wasi_snapshot_preview1: wasi.imports(),
  });
  const exitCode = wasi.start(instance);
  for (const line of new TextDecoder().decode(wasi.stdout).trimEnd().split("\n")) print(line);
  print(`exit code: ${exitCode}`);
}

if (import.meta.main) await main();

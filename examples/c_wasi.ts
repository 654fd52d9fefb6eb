/**
 * A WASI command compiled from C with wasi-libc (`c_wasi/main.c`, built by
 * `c_wasi/build.sh`), run with `plugin.run()`: it upper-cases its stdin,
 * prints a file from the directory preopened as `/data`, fails to read past
 * that directory or to use the network, and exits with code 3.
 *
 *     deno run --allow-read=examples examples/c_wasi.ts
 *
 * @module
 */

import { Capability, WasmRuntime } from "../mod.ts";
import type { Print } from "./_wat.ts";

/** A file URL as a path Deno's file system calls take. */
function pathOf(url: URL): string {
  const path = decodeURIComponent(url.pathname);
  return Deno.build.os === "windows" ? path.slice(1).replaceAll("/", "\\") : path;
}

/** Runs the example. */
export async function main(print: Print = console.log): Promise<void> {
  await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
  const bytes = await Deno.readFile(new URL("./c_wasi/c_wasi.wasm", import.meta.url));
  const compiled = await runtime.compile("c_wasi", bytes);
  await using command = await runtime.createPlugin(compiled, {
    capabilities: [Capability.Wasi, Capability.FileSystem],
    wasi: {
      args: ["--from", "deno"],
      env: { PROBE_PATHS: "/data/../secret.txt:/etc/hostname" },
      preopens: { "/data": pathOf(new URL("./c_wasi/data", import.meta.url)) },
    },
  });
  const { exitCode, stdout } = await command.run({
    stdin: new TextEncoder().encode("hello from the host\nsecond line\n"),
  });
  for (const line of new TextDecoder().decode(stdout).trimEnd().split("\n")) print(line);
  print(`exit code: ${exitCode}`);
}

if (import.meta.main) await main();

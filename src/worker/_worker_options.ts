/**
 * Whether Deno runs with `--unstable-worker-options`, without which a worker
 * cannot be given narrower permissions than the host. Deno offers no API for
 * it and ends the process when a worker asks for permissions without it, so
 * this looks at the command line and the nearest `deno.json`.
 *
 * @module
 */

/** What could be found out. */
export type WorkerOptionsState = "enabled" | "disabled" | "unknown";

function readable(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

/** The process's arguments, where the platform shows them and permissions allow (Linux, -A). */
function commandLine(): string[] | undefined {
  if (Deno.build.os !== "linux" || !readable("/proc/self/cmdline")) return undefined;
  try {
    return Deno.readTextFileSync("/proc/self/cmdline").split("\u0000");
  } catch {
    return undefined;
  }
}

function configEnables(): boolean | undefined {
  let dir: string;
  try {
    if (Deno.permissions.querySync({ name: "read" }).state !== "granted") return undefined;
    dir = Deno.cwd();
  } catch {
    return undefined;
  }
  for (let i = 0; i < 32; i++) {
    for (const file of ["deno.json", "deno.jsonc"]) {
      try {
        const text = Deno.readTextFileSync(`${dir}/${file}`);
        return /"unstable"\s*:\s*\[[^\]]*"worker-options"/.test(text);
      } catch {
        // not here; look in the parent
      }
    }
    const parent = dir.replace(/[\\/][^\\/]*$/, "");
    if (parent === dir || parent === "") break;
    dir = parent;
  }
  return undefined;
}

/** Detects `--unstable-worker-options` (or `"unstable": ["worker-options"]` in deno.json). */
export function detectWorkerOptions(): WorkerOptionsState {
  const args = commandLine();
  if (args?.some((arg) => arg === "--unstable-worker-options" || arg === "--unstable")) {
    return "enabled";
  }
  if (configEnables() === true) return "enabled";
  return args === undefined ? "unknown" : "disabled";
}

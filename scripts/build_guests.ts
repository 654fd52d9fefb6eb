/**
 * Builds the guest SDKs' example plugins from source (`deno task build:guests`):
 *
 * - `guest/c/example/greet.wasm` with clang and lld, no libc, and
 *   `greet_wasi.wasm` with wasi-libc (a reactor);
 * - `guest/rust/example/greet.wasm` with a rustc that has the
 *   `wasm32-unknown-unknown` standard library (Debian's rustc 1.63 is enough);
 * - `guest/assemblyscript/example/greet.wasm` with the pinned
 *   `npm:assemblyscript` compiler (from the npm registry once, then Deno's cache);
 * - and each SDK's edge-case plugin in `tests/guest/fixtures/` beside them.
 *
 * Each toolchain is checked first; whatever is missing is named with the
 * command that installs it, and the script fails after building the rest.
 * Pass languages (`c`, `rust`, `assemblyscript`) to build only those.
 *
 * @module
 */

/** The AssemblyScript compiler the example is built with. */
export const ASSEMBLYSCRIPT = "npm:assemblyscript@0.28.20/asc";

const GUEST = new URL("../guest/", import.meta.url);
const LANGUAGES = ["c", "rust", "assemblyscript"] as const;
type Language = typeof LANGUAGES[number];

/** A build step that could not run, and how to get what it needs. */
class MissingToolchain extends Error {
  constructor(readonly what: string, readonly install: string) {
    super(`needs ${what}`);
  }
}

function path(relative: string): string {
  return new URL(relative, GUEST).pathname;
}

/** Runs a command; its output goes to the terminal. False when it cannot be found. */
async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; quiet?: boolean; env?: Record<string, string> } = {},
): Promise<{ found: boolean; success: boolean; stdout: string }> {
  try {
    const { success, stdout } = await new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd ?? path("."),
      stdin: "null",
      stdout: "piped",
      stderr: options.quiet ? "null" : "inherit",
      ...(options.env === undefined ? {} : { env: options.env }),
    }).output();
    return { found: true, success, stdout: new TextDecoder().decode(stdout) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { found: false, success: false, stdout: "" };
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  return (await Deno.stat(file).catch(() => null)) !== null;
}

function check(ok: boolean, what: string, install: string): void {
  if (!ok) throw new MissingToolchain(what, install);
}

async function report(file: string): Promise<void> {
  const { size } = await Deno.stat(file);
  console.log(`built ${file} (${size} bytes)`);
}

/** The edge-case plugins of each SDK, which `tests/guest/sdk_edges_test.ts` runs. */
const FIXTURES = "../tests/guest/fixtures/";

async function buildC(): Promise<void> {
  const clang = await run("clang", ["--version"], { quiet: true });
  const lld = await run("wasm-ld", ["--version"], { quiet: true });
  check(clang.found && lld.found, "clang and lld", "apt-get install clang lld");
  const flags = ["-O2", "-Wall", "-Wextra", "-Werror", "-Wl,--strip-all", "-I", "c"];
  const plain = ["--target=wasm32", "-nostdlib", "-Wl,--no-entry", ...flags];
  await compileC(plain, "c/example/greet.c", "c/example/greet.wasm");
  await compileC(plain, `${FIXTURES}edges.c`, `${FIXTURES}edges_c.wasm`);

  const builtins = await run("clang", ["--target=wasm32-wasi", "-print-libgcc-file-name"], {
    quiet: true,
  });
  const wasiLibc = await exists("/usr/lib/wasm32-wasi/libc.a") &&
    await exists(builtins.stdout.trim());
  check(
    wasiLibc,
    "wasi-libc and clang's wasm32 builtins (for greet_wasi.wasm)",
    "apt-get install wasi-libc libclang-rt-14-dev-wasm32",
  );
  const withLibc = ["--target=wasm32-wasi", "--sysroot=/usr", "-mexec-model=reactor", ...flags];
  await compileC(withLibc, "c/example/greet.c", "c/example/greet_wasi.wasm");
  await compileC(withLibc, `${FIXTURES}edges.c`, `${FIXTURES}edges_c_wasi.wasm`);
}

/** Compiles one C source (a path relative to `guest/`) with `flags`. */
async function compileC(flags: readonly string[], source: string, out: string): Promise<void> {
  const built = await run("clang", [...flags, "-o", path(out), source]);
  if (!built.success) throw new Error(`clang ${flags[0]} failed on ${source}`);
  await report(path(out));
}

/** The first rustc (`$RUSTC`, `rustc`, Debian's) whose sysroot has the wasm32 standard library. */
async function findRustc(): Promise<string | undefined> {
  const candidates = [Deno.env.get("RUSTC"), "rustc", "/usr/bin/rustc"];
  for (const rustc of candidates) {
    if (rustc === undefined) continue;
    const sysroot = await run(rustc, ["--print", "sysroot"], { quiet: true });
    if (!sysroot.success) continue;
    if (await exists(`${sysroot.stdout.trim()}/lib/rustlib/wasm32-unknown-unknown/lib`)) {
      return rustc;
    }
  }
  return undefined;
}

async function buildRust(): Promise<void> {
  const rustc = await findRustc();
  check(
    rustc !== undefined,
    "a rustc with the wasm32-unknown-unknown standard library",
    "apt-get install rustc libstd-rust-dev-wasm32 (or: rustup target add wasm32-unknown-unknown)",
  );
  for (
    const [source, out] of [
      ["rust/example/greet.rs", "rust/example/greet.wasm"],
      [`${FIXTURES}edges.rs`, `${FIXTURES}edges_rust.wasm`],
    ]
  ) {
    const built = await run(rustc!, [
      "--target",
      "wasm32-unknown-unknown",
      "--crate-type",
      "cdylib",
      "--edition",
      "2021",
      "-C",
      "opt-level=s",
      "-C",
      "strip=symbols",
      "-C",
      "panic=abort",
      "-o",
      path(out!),
      source!,
    ]);
    if (!built.success) throw new Error(`${rustc} failed on ${source}`);
    await report(path(out!));
  }
}

async function buildAssemblyScript(): Promise<void> {
  // Its own Deno, outside the repository's config and lock file. Run from the
  // SDK's folder, where `wasmplug/abortHandler` names the SDK's abort; the
  // fixture, from the repository's root, names it by its path.
  const builds = [
    { cwd: path("assemblyscript"), source: "example/greet.ts", out: "example/greet.wasm" },
    {
      cwd: path(".."),
      source: "tests/guest/fixtures/edges.ts",
      out: "tests/guest/fixtures/edges_as.wasm",
      sdk: "guest/assemblyscript/",
    },
  ];
  for (const { cwd, source, out, sdk = "" } of builds) {
    const built = await run(Deno.execPath(), [
      "run",
      "--no-config",
      "--no-lock",
      "--allow-env",
      "--allow-read=.",
      // The folder: asc makes sure it exists (and without the permission, exits 0 having written nothing).
      `--allow-write=${out.slice(0, out.lastIndexOf("/"))}`,
      ASSEMBLYSCRIPT,
      source,
      "-o",
      out,
      "--runtime",
      "incremental",
      "-O3",
      "--use",
      `abort=${sdk}wasmplug/abortHandler`,
    ], { cwd, env: { NO_COLOR: "1" } });
    check(
      built.success,
      `the AssemblyScript compiler ${ASSEMBLYSCRIPT} (or it failed: see above)`,
      "reach the npm registry once; Deno caches the package for later builds",
    );
    await report(`${cwd.replace(/\/$/, "")}/${out}`);
  }
}

const BUILDERS: Record<Language, () => Promise<void>> = {
  c: buildC,
  rust: buildRust,
  assemblyscript: buildAssemblyScript,
};

/** Builds the examples of `languages`; resolves to the number of failures. */
export async function buildGuests(languages: readonly Language[] = LANGUAGES): Promise<number> {
  let failures = 0;
  for (const language of languages) {
    try {
      await BUILDERS[language]();
    } catch (err) {
      failures++;
      if (err instanceof MissingToolchain) {
        console.error(`guest/${language}: ${err.message}\n  install: ${err.install}`);
      } else {
        console.error(`guest/${language}: ${err instanceof Error ? err.message : err}`);
      }
    }
  }
  return failures;
}

if (import.meta.main) {
  const unknown = Deno.args.filter((arg) => !(LANGUAGES as readonly string[]).includes(arg));
  if (unknown.length > 0) {
    console.error(`Unknown language ${unknown.join(", ")}; expected ${LANGUAGES.join(", ")}`);
    Deno.exit(2);
  }
  const languages = Deno.args.length === 0 ? LANGUAGES : Deno.args as Language[];
  const failures = await buildGuests(languages);
  if (failures > 0) {
    console.error(`${failures} of ${languages.length} guest SDK examples were not built`);
    Deno.exit(1);
  }
}

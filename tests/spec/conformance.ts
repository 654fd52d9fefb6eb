/**
 * The spec-testsuite conformance runner: runs every command file of
 * `../../../shared/spec-testsuite/` twice, on the modules as they are and on
 * their fully instrumented versions (fuel, call depth and a clock deadline,
 * with budgets too large to interfere), and checks that every command has the
 * same outcome both ways.
 *
 * Run it with `deno run --allow-read tests/spec/conformance.ts [name...]`.
 *
 * @module
 */

import initWabt from "wabt";
import { type FileReport, type Outcome, runSpecFile } from "./_runner.ts";
import type { InstrumentOptions } from "../../src/instrument/instrument.ts";

/** Where the corpus lives, relative to this file. */
export const SPEC_DIR: URL = new URL("../../../shared/spec-testsuite/", import.meta.url);

/** The passes applied in the instrumented run. */
export const FULL_INSTRUMENTATION: InstrumentOptions = {
  fuel: { initial: 1n << 60n },
  callDepth: { max: 1000 },
  deadline: "clock",
};

/** Both runs of one file and the commands whose outcomes differ. */
export interface FileComparison {
  readonly name: string;
  readonly plain: FileReport;
  readonly instrumented: FileReport;
  readonly mismatches: readonly { plain: Outcome; instrumented: Outcome }[];
}

/** Whether the corpus is present. */
export function specAvailable(): boolean {
  try {
    return Deno.statSync(SPEC_DIR).isDirectory;
  } catch {
    return false;
  }
}

/** Names of the corpus' test files, sorted. */
export function specNames(): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(SPEC_DIR)) {
    if (!entry.isDirectory) continue;
    try {
      Deno.statSync(new URL(`${entry.name}/${entry.name}.json`, SPEC_DIR));
      names.push(entry.name);
    } catch {
      // Not a test directory.
    }
  }
  return names.sort();
}

let spectest: Promise<WebAssembly.Module> | undefined;

/** Compiles the `spectest` host module once. */
export function spectestModule(): Promise<WebAssembly.Module> {
  spectest ??= (async () => {
    const wabt = await initWabt();
    const source = await Deno.readTextFile(new URL("./_spectest.wat", import.meta.url));
    const parsed = wabt.parseWat("spectest.wat", source, { memory64: true });
    try {
      return new WebAssembly.Module(parsed.toBinary({}).buffer.slice());
    } finally {
      parsed.destroy();
    }
  })();
  return spectest;
}

/** Runs one file both ways and compares. */
export async function compareFile(
  name: string,
  instrumentation: InstrumentOptions = FULL_INSTRUMENTATION,
): Promise<FileComparison> {
  const module = await spectestModule();
  const dir = new URL(`${name}/`, SPEC_DIR);
  const plain = runSpecFile(dir, name, { instrument: null, spectest: module });
  const instrumented = runSpecFile(dir, name, { instrument: instrumentation, spectest: module });
  const mismatches = plain.outcomes.flatMap((outcome, i) => {
    const other = instrumented.outcomes[i]!;
    return outcome.status === other.status ? [] : [{ plain: outcome, instrumented: other }];
  });
  return { name, plain, instrumented, mismatches };
}

function summary(report: { passed: number; failed: number; skipped: number }): string {
  return `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`;
}

/** Sums the counts of several reports. */
export function totals(
  reports: readonly { passed: number; failed: number; skipped: number }[],
): { passed: number; failed: number; skipped: number } {
  return reports.reduce(
    (sum, r) => ({
      passed: sum.passed + r.passed,
      failed: sum.failed + r.failed,
      skipped: sum.skipped + r.skipped,
    }),
    { passed: 0, failed: 0, skipped: 0 },
  );
}

async function main(args: string[]): Promise<number> {
  if (!specAvailable()) {
    // deno-lint-ignore no-console
    console.log(`Spec testsuite not found at ${SPEC_DIR.pathname}: skipped`);
    return 0;
  }
  const verbose = args.includes("--verbose");
  const wanted = args.filter((arg) => !arg.startsWith("--"));
  const names = wanted.length > 0 ? wanted : specNames();
  const comparisons: FileComparison[] = [];
  const started = performance.now();
  for (const name of names) {
    const comparison = await compareFile(name);
    comparisons.push(comparison);
    const flag = comparison.mismatches.length > 0 ? "  MISMATCH" : "";
    // deno-lint-ignore no-console
    console.log(
      `${name.padEnd(28)} plain: ${summary(comparison.plain)} | instrumented: ${
        summary(comparison.instrumented)
      }${flag}`,
    );
    for (const { plain, instrumented } of comparison.mismatches) {
      // deno-lint-ignore no-console
      console.log(
        `  line ${plain.line} ${plain.type}: plain ${plain.status} ${
          plain.detail ?? ""
        } / instrumented ${instrumented.status} ${instrumented.detail ?? ""}`,
      );
    }
    if (verbose) {
      for (const outcome of comparison.plain.outcomes) {
        if (outcome.status === "fail") {
          // deno-lint-ignore no-console
          console.log(`  plain fail line ${outcome.line} ${outcome.type}: ${outcome.detail}`);
        }
      }
    }
  }
  const mismatched = comparisons.reduce((n, c) => n + c.mismatches.length, 0);
  // deno-lint-ignore no-console
  console.log(
    `\nTotal plain:        ${summary(totals(comparisons.map((c) => c.plain)))}\n` +
      `Total instrumented: ${summary(totals(comparisons.map((c) => c.instrumented)))}\n` +
      `Exhaustion stopped by the call-depth pass: ${
        comparisons.reduce((n, c) => n + c.instrumented.depthTraps, 0)
      }\n` +
      `Commands whose outcome differs: ${mismatched} (${
        ((performance.now() - started) / 1000).toFixed(1)
      } s)`,
  );
  return mismatched === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

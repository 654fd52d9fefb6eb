/**
 * `deno task soak`: runs the soak harness and prints its report.
 *
 * ```sh
 * deno task soak                                   # 50 plugins × 4 callers, worker isolation, 5 min
 * deno task soak --duration 30s --isolation inline
 * deno task soak --duration 1m --markdown          # plus a Markdown block for the README
 * ```
 *
 * Progress goes to stderr every 10 s, the report to stdout. Exit codes: 0 when
 * every check passed, 1 when one failed, 2 on bad usage.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatMarkdown, formatText } from "./_report.ts";
import { runSoak, type SoakOptions } from "./soak.ts";

const USAGE = `Usage: deno task soak [options]
  --plugins <n>          plugins loaded (default 50)
  --callers <n>          concurrent callers per plugin (default 4)
  --duration <time>      how long to call, e.g. 90s, 5m, 1m30s, 500ms (default 5m)
  --isolation <where>    worker or inline (default worker)
  --fault-rate <p>       probability that a call is a fault (default 0.1)
  --seed <n>             seed of the callers' random sequences (default 1)
  --rss-bound <MB>       allowed growth of the median RSS, second half over first (default 64)
  --markdown             print the report as Markdown too, after the plain text
  --quiet                no progress on stderr
  --help                 this text`;

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses `90s`, `5m`, `1m30s`, `500ms` or a bare number of milliseconds. */
function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new RangeError(
      `Cannot read the duration "${text}": expected e.g. 90s, 5m, 1m30s or 500ms`,
    );
  }
  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * DURATION_UNITS[unit!]!, 0);
}

function parseNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || Number.isNaN(value)) {
    throw new RangeError(`Cannot read --${name} "${text}": expected a number`);
  }
  return value;
}

function parseOptions(
  args: string[],
): { options: SoakOptions; markdown: boolean; quiet: boolean } | null {
  const { values } = parseArgs({
    args,
    options: {
      plugins: { type: "string" },
      callers: { type: "string" },
      duration: { type: "string" },
      isolation: { type: "string" },
      "fault-rate": { type: "string" },
      seed: { type: "string" },
      "rss-bound": { type: "string" },
      markdown: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const options: SoakOptions = {};
  const set = <K extends keyof SoakOptions>(key: K, value: SoakOptions[K] | undefined): void => {
    if (value !== undefined) options[key] = value;
  };
  set("plugins", parseNumber("plugins", values.plugins));
  set("callers", parseNumber("callers", values.callers));
  set("durationMs", values.duration === undefined ? undefined : parseDuration(values.duration));
  set("isolation", values.isolation as SoakOptions["isolation"]);
  set("faultRate", parseNumber("fault-rate", values["fault-rate"]));
  set("seed", parseNumber("seed", values.seed));
  set("rssGrowthBoundMb", parseNumber("rss-bound", values["rss-bound"]));
  return { options, markdown: values.markdown, quiet: values.quiet };
}

async function main(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(args);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : err}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === null) {
    console.log(USAGE);
    return 0;
  }
  const { options, markdown, quiet } = parsed;
  let lastPrinted = 0;
  if (!quiet) {
    options.onProgress = (progress) => {
      if (progress.elapsedMs - lastPrinted < 10_000) return;
      lastPrinted = progress.elapsedMs;
      console.error(
        `${
          (progress.elapsedMs / 1000).toFixed(0)
        } s: ${progress.issued} calls issued, ${progress.settled} settled, ${progress.unexpected} unexpected, RSS ${
          progress.rssMb.toFixed(0)
        } MB, ${progress.liveWorkers} workers`,
      );
    };
  }
  let report;
  try {
    report = await runSoak(options);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  console.log(formatText(report));
  if (markdown) console.log(`\n${formatMarkdown(report)}`);
  return report.passed ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

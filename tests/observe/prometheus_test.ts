/**
 * `/metrics` speaks the Prometheus text exposition format 0.0.4: every line
 * is parsed against the format's grammar, histograms are checked the way
 * Prometheus reads them, and label values survive names that need escaping.
 */

import assert from "node:assert/strict";
import { PluginManager } from "../../mod.ts";
import { inlineRuntime } from "../_helpers.ts";
import { LatencyHistogram } from "../../src/observe/_latency_histogram.ts";
import {
  escapeLabelValue,
  PROMETHEUS_CONTENT_TYPE,
  type PrometheusPlugin,
  renderPrometheus,
} from "../../src/observe/_prometheus.ts";
import type { PluginMetrics } from "../../mod.ts";

// ---------------------------------------------------------------------------
// A validating parser of the text exposition format, version 0.0.4.

interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  type: string | undefined;
  help: string | undefined;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];
const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];

function parseFloatStrict(text: string, line: number): number {
  if (!FLOAT.test(text)) throw new SyntaxError(`line ${line}: bad value ${JSON.stringify(text)}`);
  if (text.endsWith("Inf")) return text.startsWith("-") ? -Infinity : Infinity;
  return Number(text);
}

/** Reads `name="value",…}` from `text` at `start` (just after `{`); returns labels and end. */
function parseLabels(text: string, start: number, line: number): [Map<string, string>, number] {
  const labels = new Map<string, string>();
  let i = start;
  while (true) {
    if (text[i] === "}") return [labels, i + 1];
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new SyntaxError(`line ${line}: label without '='`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new SyntaxError(`line ${line}: bad label name ${name}`);
    if (labels.has(name)) throw new SyntaxError(`line ${line}: duplicate label ${name}`);
    if (text[eq + 1] !== '"') throw new SyntaxError(`line ${line}: label value not quoted`);
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new SyntaxError(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[++j];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new SyntaxError(`line ${line}: bad escape \\${next}`);
      } else value += c;
    }
    labels.set(name, value);
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new SyntaxError(`line ${line}: expected ',' or '}'`);
  }
}

/** The family a sample belongs to: a histogram's `_bucket`, `_sum`, `_count` go to its base name. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    if (families.get(base)?.type === "histogram") return base;
  }
  return name;
}

/**
 * Parses and validates a whole exposition: grammar of every line, metadata
 * before samples and at most once, each family's lines contiguous, counters
 * non-negative, and histograms complete and cumulative.
 */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new SyntaxError("the exposition must end with a line feed");
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  let current: string | undefined;
  function enter(name: string, line: number): Family {
    if (current !== name) {
      if (finished.has(name)) {
        throw new SyntaxError(`line ${line}: family ${name} is not contiguous`);
      }
      if (current !== undefined) finished.add(current);
      current = name;
    }
    let family = families.get(name);
    if (family === undefined) {
      families.set(name, family = { name, type: undefined, help: undefined, samples: [] });
    }
    return family;
  }
  text.slice(0, -1).split("\n").forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === "") return;
    if (raw.startsWith("#")) {
      const match = raw.match(/^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/);
      if (match === null) return; // An ordinary comment.
      const [, keyword, name, rest = ""] = match;
      if (!METRIC_NAME.test(name!)) throw new SyntaxError(`line ${line}: bad metric name ${name}`);
      const family = enter(name!, line);
      if (keyword === "HELP") {
        if (family.help !== undefined) {
          throw new SyntaxError(`line ${line}: second HELP for ${name}`);
        }
        if (/\\[^\\n]/.test(rest.replaceAll("\\\\", ""))) {
          throw new SyntaxError(`line ${line}: bad escape in HELP`);
        }
        family.help = rest;
      } else {
        if (family.type !== undefined) {
          throw new SyntaxError(`line ${line}: second TYPE for ${name}`);
        }
        if (family.samples.length > 0) throw new SyntaxError(`line ${line}: TYPE after samples`);
        if (!TYPES.includes(rest.trim())) throw new SyntaxError(`line ${line}: bad type ${rest}`);
        family.type = rest.trim();
      }
      return;
    }
    const name = raw.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)?.[0];
    if (name === undefined) throw new SyntaxError(`line ${line}: expected a metric name`);
    let labels = new Map<string, string>();
    let i = name.length;
    if (raw[i] === "{") [labels, i] = parseLabels(raw, i + 1, line);
    const fields = raw.slice(i).trim().split(/[ \t]+/);
    if (!/^[ \t]/.test(raw.slice(i)) || fields.length < 1 || fields.length > 2) {
      throw new SyntaxError(`line ${line}: expected a value (and an optional timestamp)`);
    }
    const value = parseFloatStrict(fields[0]!, line);
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) {
      throw new SyntaxError(`line ${line}: bad timestamp ${fields[1]}`);
    }
    const family = enter(familyOf(name, families), line);
    if (family.type === "counter" && !(value >= 0)) {
      throw new SyntaxError(`line ${line}: counter ${name} is ${value}`);
    }
    if (family.type === "histogram" && name === `${family.name}_bucket` && !labels.has("le")) {
      throw new SyntaxError(`line ${line}: bucket without 'le'`);
    }
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

function seriesKey(labels: ReadonlyMap<string, string>): string {
  return JSON.stringify([...labels].filter(([name]) => name !== "le").sort());
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const key = seriesKey(sample.labels);
    let entry = series.get(key);
    if (entry === undefined) series.set(key, entry = { buckets: [] });
    if (sample.name.endsWith("_bucket")) {
      entry.buckets.push([parseFloatStrict(sample.labels.get("le")!, 0), sample.value]);
    } else if (sample.name.endsWith("_sum")) entry.sum = sample.value;
    else if (sample.name.endsWith("_count")) entry.count = sample.value;
    else throw new SyntaxError(`${sample.name} is not a histogram sample`);
  }
  for (const [key, { buckets, sum, count }] of series) {
    if (sum === undefined) throw new SyntaxError(`${family.name}${key}: no _sum`);
    if (count === undefined) throw new SyntaxError(`${family.name}${key}: no _count`);
    const last = buckets.at(-1);
    if (last === undefined || last[0] !== Infinity) {
      throw new SyntaxError(`${family.name}${key}: the last bucket is not le="+Inf"`);
    }
    if (last[1] !== count) {
      throw new SyntaxError(`${family.name}${key}: +Inf bucket ${last[1]} is not _count ${count}`);
    }
    for (let i = 1; i < buckets.length; i++) {
      const [le, n] = buckets[i]!;
      const [previousLe, previousN] = buckets[i - 1]!;
      if (!(le > previousLe)) throw new SyntaxError(`${family.name}${key}: le not increasing`);
      if (n < previousN) throw new SyntaxError(`${family.name}${key}: buckets not cumulative`);
    }
  }
}

function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const family = families.get(familyOf(name, families));
  const wanted = Object.entries(labels);
  return family?.samples.find((sample) =>
    sample.name === name && wanted.every(([k, v]) => sample.labels.get(k) === v)
  )?.value;
}

// ---------------------------------------------------------------------------

const WORK_WAT = `(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "boom") unreachable))`;

Deno.test("GET /metrics is valid Prometheus text, with each plugin's calls, durations, fuel and memory", async () => {
  await using runtime = inlineRuntime();
  await using manager = new PluginManager(runtime);
  const tricky = 'quote " backslash \\ newline \n end';
  const plain = await manager.loadWat(WORK_WAT, { name: "adder" });
  const odd = await manager.loadWat(WORK_WAT, { name: tricky, id: "odd-1" });
  for (let i = 0; i < 5; i++) await manager.callI32(plain, "add", [i, 1]);
  await manager.callI32(odd, "add", [1, 1]);
  await assert.rejects(manager.callVoid(odd, "boom"));
  await using server = manager.serve({ port: 0 });

  const response = await fetch(new URL("/metrics", server.url));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  const families = parseExposition(await response.text());

  assert.deepEqual(
    Object.fromEntries([...families.values()].map((f) => [f.name, f.type])),
    {
      wasmplug_calls_total: "counter",
      wasmplug_call_duration_seconds: "histogram",
      wasmplug_fuel_consumed_total: "counter",
      wasmplug_memory_bytes: "gauge",
    },
  );
  for (const family of families.values()) assert.ok(family.help, `${family.name} has HELP`);

  const adder = { plugin_id: plain.id, plugin_name: "adder" };
  const oddLabels = { plugin_id: "odd-1", plugin_name: tricky };
  assert.equal(sampleValue(families, "wasmplug_calls_total", { ...adder, result: "ok" }), 5);
  assert.equal(sampleValue(families, "wasmplug_calls_total", { ...adder, result: "error" }), 0);
  assert.equal(sampleValue(families, "wasmplug_calls_total", { ...oddLabels, result: "ok" }), 1);
  assert.equal(sampleValue(families, "wasmplug_calls_total", { ...oddLabels, result: "error" }), 1);
  assert.equal(sampleValue(families, "wasmplug_call_duration_seconds_count", adder), 5);
  assert.equal(sampleValue(families, "wasmplug_call_duration_seconds_count", oddLabels), 2);
  const sum = sampleValue(families, "wasmplug_call_duration_seconds_sum", adder)!;
  const metrics = await manager.get(plain).metrics();
  assert.ok(Math.abs(sum - metrics.totalExecutionTimeNs / 1e9) < 1e-6, `sum ${sum}`);
  assert.equal(sampleValue(families, "wasmplug_fuel_consumed_total", adder), metrics.fuelConsumed);
  assert.ok(metrics.fuelConsumed > 0);
  assert.equal(sampleValue(families, "wasmplug_memory_bytes", adder), 65536);
  const buckets = families.get("wasmplug_call_duration_seconds")!.samples
    .filter((s) => s.name.endsWith("_bucket") && s.labels.get("plugin_id") === plain.id);
  assert.ok(buckets.length > 10, "the histogram has finite buckets besides +Inf");
});

Deno.test("The exposition validator rejects what Prometheus would reject", async (t) => {
  const help = "# HELP h Durations.\n# TYPE h histogram\n";
  const cases: [string, string][] = [
    ["an unescaped quote in a label value", 'm{a="x"y"} 1\n'],
    ["an unknown escape", 'm{a="x\\ty"} 1\n'],
    ["a bad value", "m 1,5\n"],
    ["a missing value", 'm{a="x"}\n'],
    ["a bad metric name", "1m 1\n"],
    ["no final line feed", "m 1"],
    ["TYPE after samples", "m 1\n# TYPE m gauge\n"],
    ["a second TYPE", "# TYPE m gauge\n# TYPE m gauge\nm 1\n"],
    ["a family split in two", "a 1\nb 1\na 2\n"],
    ["a negative counter", "# TYPE c_total counter\nc_total -1\n"],
    [
      "buckets that shrink",
      `${help}h_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n`,
    ],
    ["no +Inf bucket", `${help}h_bucket{le="1"} 2\nh_sum 1\nh_count 2\n`],
    ["+Inf other than _count", `${help}h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n`],
    ["no _sum", `${help}h_bucket{le="+Inf"} 2\nh_count 2\n`],
    ["a bucket without le", `${help}h_bucket 2\nh_sum 1\nh_count 2\n`],
  ];
  for (const [what, text] of cases) {
    await t.step(what, () => {
      assert.throws(() => parseExposition(text), SyntaxError);
    });
  }
  await t.step("and accepts a well-formed histogram", () => {
    const ok = `${help}h_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1.5\nh_count 2\n`;
    assert.equal(parseExposition(ok).get("h")!.samples.length, 4);
  });
});

function fakeMetrics(overrides: Partial<PluginMetrics> = {}): PluginMetrics {
  return {
    callCount: 0,
    successCount: 0,
    failureCount: 0,
    avgExecutionTimeNs: 0,
    totalExecutionTimeNs: 0,
    p50ExecutionTimeNs: 0,
    p99ExecutionTimeNs: 0,
    maxExecutionTimeNs: 0,
    fuelConsumed: 0,
    peakMemoryBytes: 0,
    currentMemoryBytes: 0,
    lastExecution: null,
    droppedLogRecords: 0,
    ...overrides,
  };
}

Deno.test("renderPrometheus() turns a latency histogram into cumulative le buckets", () => {
  const histogram = new LatencyHistogram();
  for (const ns of [500, 3_000, 2_000_000, 2_000_000_000]) histogram.record(ns);
  const plugin: PrometheusPlugin = {
    id: "p",
    name: "p",
    metrics: fakeMetrics({ callCount: 4, successCount: 4 }),
    durations: histogram,
  };
  const families = parseExposition(renderPrometheus([plugin]));
  const bucket = (le: string) =>
    sampleValue(families, "wasmplug_call_duration_seconds_bucket", { plugin_id: "p", le });
  assert.equal(bucket("0.000001"), 1);
  assert.equal(bucket("0.0000025"), 1);
  assert.equal(bucket("0.000005"), 2);
  assert.equal(bucket("0.001"), 2);
  assert.equal(bucket("0.0025"), 3);
  assert.equal(bucket("1"), 3);
  assert.equal(bucket("2.5"), 4);
  assert.equal(bucket("+Inf"), 4);
  const sum = sampleValue(families, "wasmplug_call_duration_seconds_sum", { plugin_id: "p" })!;
  assert.ok(Math.abs(sum - 2.0020035) < 1e-9, `sum ${sum}`);
});

Deno.test("renderPrometheus() without a histogram still writes a complete one (+Inf only)", () => {
  const plugin: PrometheusPlugin = {
    id: "p",
    name: "p",
    metrics: fakeMetrics({ callCount: 3, successCount: 3, totalExecutionTimeNs: 1_500 }),
  };
  const families = parseExposition(renderPrometheus([plugin]));
  const samples = families.get("wasmplug_call_duration_seconds")!.samples;
  assert.deepEqual(samples.map((s) => [s.name, s.labels.get("le"), s.value]), [
    ["wasmplug_call_duration_seconds_bucket", "+Inf", 3],
    ["wasmplug_call_duration_seconds_sum", undefined, 1.5e-6],
    ["wasmplug_call_duration_seconds_count", undefined, 3],
  ]);
});

Deno.test("renderPrometheus() with no plugins is metadata only, and still valid", () => {
  const families = parseExposition(renderPrometheus([]));
  assert.equal(families.size, 4);
  for (const family of families.values()) assert.equal(family.samples.length, 0);
});

Deno.test("escapeLabelValue() escapes backslash, double quote and line feed, nothing else", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue("tab\there <img> ünïcode"), "tab\there <img> ünïcode");
  const text = renderPrometheus([{ id: "x", name: 'a\\b"c\nd', metrics: fakeMetrics() }]);
  assert.ok(text.includes('plugin_name="a\\\\b\\"c\\nd"'), text);
  const families = parseExposition(text);
  assert.equal(
    families.get("wasmplug_memory_bytes")!.samples[0]!.labels.get("plugin_name"),
    'a\\b"c\nd',
  );
});

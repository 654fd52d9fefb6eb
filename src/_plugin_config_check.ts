/**
 * Checks a {@linkcode WasmPluginConfig} before anything is created: every
 * field of the wrong shape is a `TypeError` naming it, so that a bad config
 * never surfaces later as a message of Deno's permission parser, a worker's
 * startup failure, or a setting silently ignored.
 *
 * @module
 */

import { describeValue } from "./common/mod.ts";
import type { WasmPluginConfig } from "./plugin_config.ts";
import { assertKnownKeys, optionFields } from "./common/mod.ts";
import { DEFAULT_LIMITS } from "./resource_limits.ts";
import { DEFAULT_MAX_OPEN_FILES, MAX_OPEN_FILES } from "./wasi/mod.ts";

/** The keys of a `WasmPluginConfig`. */
const PLUGIN_CONFIG_KEYS = [
  "name",
  "id",
  "capabilities",
  "resourceLimits",
  "config",
  "allowedHosts",
  "allowedPaths",
  "wasi",
  "manifest",
  "onMessage",
  "onLog",
  "isolation",
];

/** Throws a `TypeError` about `key` unless `value` is `"worker"` or `"inline"`. */
export function checkIsolation(isolation: unknown, key: string): void {
  if (isolation !== "inline" && isolation !== "worker") {
    throw new TypeError(
      `Cannot use '${key}': expected "worker" or "inline", received ${describeValue(isolation)}`,
    );
  }
}

function fail(key: string, expected: string, value: unknown): never {
  throw new TypeError(
    `Cannot use '${key}': expected ${expected}, received ${describeValue(value)}`,
  );
}

/**
 * An `allowedHosts` entry as the fetch gate compares it and a worker's
 * `--allow-net` list takes it: its host lower-cased (a Unicode name in
 * punycode), and its port when it names one, the default ones too (Deno's
 * `127.0.0.1:80` is port 80 alone). Anything else (a URL, a path, a bare
 * IPv6 address, `*`) is a `TypeError`: a worker refused it with Deno's
 * untyped `URIError`, and inline it matched nothing.
 */
function normalizedHost(entry: string, i: number): string {
  const bad = (): never =>
    fail(
      `allowedHosts[${i}]`,
      'a host with an optional port, e.g. "api.example.com", "127.0.0.1:8080" or "[::1]"',
      entry,
    );
  if (/[/\\@?#\s]/.test(entry)) bad();
  // After the host (an IPv6 one in brackets), only `:` and a port's digits.
  const afterHost = entry.replace(/^\[[^\]]*\]/, "").replace(/^[^:]*/, "");
  if (afterHost !== "" && !/^:\d+$/.test(afterHost)) bad();
  let url: URL;
  try {
    url = new URL(`http://${entry}`);
  } catch {
    return bad();
  }
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)$/.test(url.hostname)) bad();
  // An empty label (".", "a..b", ".a"): Deno refuses it in a worker's --allow-net.
  if (/^\.|\.\./.test(url.hostname)) bad();
  const port = /:(\d+)$/.exec(entry)?.[1];
  if (port === undefined) return url.hostname;
  if (Number(port) === 0) bad();
  return `${url.hostname}:${Number(port)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkString(key: string, value: unknown, { nul = true } = {}): void {
  if (typeof value !== "string" || value === "") fail(key, "a non-empty string", value);
  if (!nul && value.includes("\0")) fail(key, "a string without NUL", value);
}

function checkStrings(key: string, value: unknown): void {
  if (!Array.isArray(value)) fail(key, "an array of strings", value);
  value.forEach((item, i) => checkString(`${key}[${i}]`, item, { nul: false }));
}

function checkStringRecord(
  key: string,
  value: unknown,
  { emptyValues = true } = {},
): void {
  if (!isRecord(value)) fail(key, "an object of strings", value);
  for (const [name, item] of Object.entries(value)) {
    if (typeof item !== "string") fail(`${key}.${name}`, "a string", item);
    if (!emptyValues) checkString(`${key}.${name}`, item, { nul: false });
  }
}

/** The keys of `wasi`, `allowedPaths` and `resourceLimits`. */
const WASI_KEYS = ["args", "env", "preopens", "maxOpenFiles"];
const ACCESS_KEYS = ["read", "write"];
const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS);

function checkWasi(wasi: unknown): void {
  if (!isRecord(wasi)) fail("wasi", "an object", wasi);
  assertKnownKeys("'wasi'", wasi, WASI_KEYS);
  const { args, env, preopens } = wasi;
  if (args !== undefined) {
    if (!Array.isArray(args)) fail("wasi.args", "an array of strings", args);
    args.forEach((arg, i) => {
      if (typeof arg !== "string" || arg.includes("\0")) {
        fail(`wasi.args[${i}]`, "a string without NUL", arg);
      }
    });
  }
  if (env !== undefined) {
    checkStringRecord("wasi.env", env);
    for (const [name, value] of Object.entries(env as Record<string, string>)) {
      if (name === "" || name.includes("=") || name.includes("\0") || value.includes("\0")) {
        fail(`wasi.env.${name}`, "a name without '=' or NUL and a value without NUL", value);
      }
    }
  }
  if (preopens !== undefined) checkStringRecord("wasi.preopens", preopens, { emptyValues: false });
  const { maxOpenFiles } = wasi;
  // stdio and the preopens take their descriptors first.
  const least = 3 + (isRecord(preopens) ? Object.keys(preopens).length : 0);
  if (maxOpenFiles === undefined && least > DEFAULT_MAX_OPEN_FILES) {
    fail(
      "wasi.preopens",
      `at most ${DEFAULT_MAX_OPEN_FILES - 3} preopens (raise wasi.maxOpenFiles for more)`,
      least - 3,
    );
  }
  if (
    maxOpenFiles !== undefined &&
    !(Number.isInteger(maxOpenFiles) && (maxOpenFiles as number) >= least &&
      (maxOpenFiles as number) <= MAX_OPEN_FILES)
  ) {
    fail(
      "wasi.maxOpenFiles",
      `an integer from ${least} (stdio and the preopens) to ${MAX_OPEN_FILES}`,
      maxOpenFiles,
    );
  }
}

/** `value` copied when it is an array (holes become `undefined`), else as it is. */
function copyArray(value: unknown): unknown {
  return Array.isArray(value) ? Array.from(value) : value;
}

/** `value` copied with `optionFields` when it is a record, else as it is. */
function copyRecord(value: unknown, known: readonly string[] = []): unknown {
  return isRecord(value) ? optionFields(value, known) : value;
}

/**
 * A snapshot of a config: its fields and those of its nested objects, each
 * read once, in objects without a prototype (see `optionFields`). So what
 * is checked is what is used: no getter is read twice, no field comes from a
 * (polluted) `Object.prototype`, and a `Proxy` or class instance becomes
 * plain data a worker can be sent.
 */
function snapshot(config: Record<string, unknown>): Record<string, unknown> {
  const copy = optionFields(config, PLUGIN_CONFIG_KEYS);
  copyFields(copy, {
    resourceLimits: (value) => copyRecord(value, LIMIT_KEYS),
    config: copyRecord,
    capabilities: copyArray,
    allowedHosts: copyArray,
    allowedPaths: (value) =>
      isRecord(value)
        ? copyFields(optionFields(value, ACCESS_KEYS), { read: copyArray, write: copyArray })
        : value,
    wasi: (value) =>
      isRecord(value)
        ? copyFields(optionFields(value, WASI_KEYS), {
          args: copyArray,
          env: copyRecord,
          preopens: copyRecord,
        })
        : value,
  });
  return copy;
}

/** Replaces each field of `record` named in `copiers` (those it has) with its copy. */
function copyFields(
  record: Record<string, unknown>,
  copiers: Record<string, (value: unknown) => unknown>,
): Record<string, unknown> {
  for (const [key, copier] of Object.entries(copiers)) {
    if (key in record) record[key] = copier(record[key]);
  }
  return record;
}

/**
 * Returns a snapshot of `config` (see {@linkcode snapshot}) when every field
 * has its documented shape.
 *
 * @throws {TypeError} Naming the first field that does not.
 */
export function checkPluginConfig(given: WasmPluginConfig): WasmPluginConfig {
  if (!isRecord(given)) {
    throw new TypeError(
      `Cannot create a plugin: expected a config object, received ${describeValue(given)}`,
    );
  }
  const config = snapshot(given) as WasmPluginConfig;
  assertKnownKeys("the plugin config", config, PLUGIN_CONFIG_KEYS);
  for (const key of ["name", "id"] as const) {
    const value = config[key];
    if (value === undefined) continue;
    checkString(key, value, { nul: false });
    // Encoded (a metric's label, a log category, a worker's message) a lone surrogate becomes
    // U+FFFD: "t\ud800" and "t\udc00" were two plugins with one label set.
    if (!value.isWellFormed()) fail(key, "a string without lone surrogates", value);
  }
  if (config.config !== undefined) checkStringRecord("config", config.config);
  if (config.isolation !== undefined) checkIsolation(config.isolation, "isolation");
  if (config.resourceLimits !== undefined && !isRecord(config.resourceLimits)) {
    fail("resourceLimits", "an object", config.resourceLimits);
  }
  if (config.resourceLimits?.maxInstances !== undefined) {
    throw new TypeError(
      "Cannot use 'resourceLimits.maxInstances' in a plugin config: it limits a runtime's plugins, so it belongs in the runtime's config",
    );
  }
  if (config.allowedHosts !== undefined) {
    checkStrings("allowedHosts", config.allowedHosts);
    (config as { allowedHosts: string[] }).allowedHosts = config.allowedHosts.map((entry, i) =>
      normalizedHost(entry, i)
    );
  }
  if (config.allowedPaths !== undefined) {
    const paths: unknown = config.allowedPaths;
    if (!isRecord(paths)) fail("allowedPaths", "an object { read?, write? }", paths);
    assertKnownKeys("'allowedPaths'", paths, ACCESS_KEYS);
    for (const access of ["read", "write"] as const) {
      if (paths[access] !== undefined) checkStrings(`allowedPaths.${access}`, paths[access]);
    }
  }
  if (config.wasi !== undefined) checkWasi(config.wasi);
  for (const key of ["onLog", "onMessage"] as const) {
    if (config[key] !== undefined && typeof config[key] !== "function") {
      fail(key, "a function", config[key]);
    }
  }
  return config;
}

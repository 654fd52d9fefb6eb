/**
 * Hostile configuration for the API fuzzer: plugin configs and runtime
 * configs with fields valid or bad, and linkers whose functions return the
 * wrong things. Like `_values.ts`, each draw says whether it is JS-level
 * invalid.
 *
 * @module
 */

import {
  Capability,
  Linker,
  type ModuleItem,
  type RuntimeConfig,
  TrapError,
  type WasmPluginConfig,
} from "../../mod.ts";
import { below, type Next, pick } from "./_mutate.ts";
import { anyValue, type Drawn, invalid, valid, wellTyped } from "./_values.ts";

/** Every capability. */
const CAPABILITIES: readonly Capability[] = Object.values(Capability);

/** A random subset of `list`. */
function subset<T>(list: readonly T[], next: Next): T[] {
  return list.filter(() => next() < 0.3);
}

/** The fields a config draw may set, each valid or bad. */
type ConfigField = (next: Next, paths: ConfigPaths) => Drawn<Partial<WasmPluginConfig>>;

/** Directories a config may name: one that exists and may be read, one that does not exist. */
export interface ConfigPaths {
  readonly readable: string;
  readonly missing: string;
}

const CONFIG_FIELDS: readonly ConfigField[] = [
  (next) =>
    next() < 0.8
      ? valid({ name: pick(["fuzz", "x".repeat(300), "\u540d\u524d"], next) })
      : invalid({
        // A NUL is refused as a WASI plugin's argv[0], which the name becomes.
        name: pick<unknown>(["", 5, null, {}, "a\u0000b"], next),
      }),
  (next) =>
    next() < 0.85
      ? valid({ id: `fuzz-${below(1e9, next)}` })
      : invalid({ id: pick<unknown>(["", 7], next) }),
  (next) =>
    next() < 0.8 ? valid({ capabilities: subset(CAPABILITIES, next) }) : invalid({
      capabilities: pick<unknown>(["timer", ["admin"], [5], [null], {}], next),
    }),
  (next) =>
    next() < 0.75
      ? valid({
        resourceLimits: pick<WasmPluginConfig["resourceLimits"]>([
          { maxMemoryPages: 1 + below(16, next) },
          { maxFuel: 1000 + below(1_000_000, next) },
          { maxCallDepth: 10 + below(300, next) },
          { maxExecutionTimeMs: 20 + below(80, next) },
          { maxTableElements: 10 + below(1000, next) },
          {},
        ], next),
      })
      : invalid({
        resourceLimits: pick<unknown>([
          { maxMemoryPages: -1 },
          { maxMemoryPages: NaN },
          { maxMemoryPages: "4" },
          { maxMemoryPages: 1.5 },
          { maxMemoryPages: 65_537 },
          { maxFuel: 0 },
          { maxFuel: Infinity },
          { maxCallDepth: -5 },
          { maxExecutionTimeMs: "fast" },
          { maxInstances: 2 },
          { maxWhatever: 1 },
          null,
          "limits",
        ], next),
      }),
  (next) =>
    next() < 0.8
      ? valid({ config: { greeting: "hello", prefix: "p:", [String(below(10, next))]: "v" } })
      : invalid({
        config: pick<unknown>([{ a: 5 }, { a: null }, { a: {} }, "config", null], next),
      }),
  (next, paths) =>
    next() < 0.6
      ? valid({
        wasi: { args: ["fuzz", "\u00e9"], env: { A: "1" }, preopens: { "/data": paths.readable } },
      })
      : invalid({
        wasi: pick<unknown>([
          // A directory that does not exist is as bad a preopen as a number.
          { preopens: { "/data": paths.missing } },
          5,
          { preopens: 5 },
          { preopens: { "/x": 5 } },
          { preopens: "/" },
          { args: "abc" },
          { env: { A: 5 } },
        ], next),
      }),
  (next, paths) =>
    next() < 0.7
      ? valid({ allowedPaths: { read: [paths.readable] } })
      : invalid({ allowedPaths: pick<unknown>([5, { read: 5 }, { read: [5] }], next) }),
  (next) =>
    next() < 0.6
      ? valid({ allowedHosts: pick([[], ["127.0.0.1:9"]], next) })
      : invalid({ allowedHosts: pick<unknown>([5, [5], "localhost"], next) }),
  (next) =>
    next() < 0.6 ? valid({}) : invalid({ isolation: pick<unknown>(["thread", 5, null], next) }),
  (next) =>
    next() < 0.5
      ? valid({
        manifest: pick([
          { name: "fuzz" },
          { name: "fuzz", exports: ["add"] },
          { name: "fuzz", capabilities: ["timer"] },
          { name: "fuzz", limits: { maxFuel: 1000 } },
          { name: "fuzz", limits: { maxMemoryPages: 65_536 } },
        ], next) as WasmPluginConfig["manifest"],
      })
      : invalid({ manifest: pick<unknown>([5, {}, { name: 5 }, { name: "m", extra: 1 }], next) }),
  (next) =>
    next() < 0.8
      ? valid({
        onLog: next() < 0.5 ? () => {} : () => {
          throw new Error("onLog throws");
        },
        onMessage: next() < 0.5 ? () => {} : () => {
          throw new Error("onMessage throws");
        },
      })
      : invalid({ onLog: pick<unknown>(["log", 5], next) }),
];

/**
 * A plugin config: a few fields, each valid or bad; `jsInvalid` when any is
 * bad. Valid limits stay small (16 pages at most), so a guest that grows
 * memory until refused cannot take the machine's memory.
 */
export function pluginConfig(next: Next, paths: ConfigPaths): Drawn<WasmPluginConfig> {
  let config: WasmPluginConfig = {};
  let jsInvalid = false;
  for (const field of CONFIG_FIELDS) {
    if (next() >= 0.35) continue;
    const drawn = field(next, paths);
    config = { ...config, ...drawn.value };
    jsInvalid ||= drawn.jsInvalid;
  }
  return { value: config, jsInvalid };
}

/** What a linker function returns for `results`: right, wrong-typed, a promise, or a throw. */
function linkerResult(results: readonly string[], next: Next): () => unknown {
  const roll = next();
  const right = (): unknown =>
    results.length <= 1
      ? wellTyped(results[0] ?? "i32", next)
      : results.map((t) => wellTyped(t, next));
  if (roll < 0.4) {
    const value = right();
    return () => value;
  }
  if (roll < 0.7) {
    const value = anyValue(next);
    return () => value;
  }
  if (roll < 0.8) {
    const value = next() < 0.5 ? right() : anyValue(next);
    return () => Promise.resolve(value);
  }
  const thrown = pick<unknown>(
    [
      new Error("linker throws"),
      new TypeError("linker type"),
      "a string",
      undefined,
      new TrapError(undefined, { trap: "fake" }),
    ],
    next,
  );
  return () => {
    throw thrown;
  };
}

/**
 * A linker defining every function `imports` names (the built-in `env`
 * functions sometimes overridden), each returning a random right or wrong
 * value, a promise, or throwing.
 */
export function hostileLinker(imports: readonly ModuleItem[], next: Next): Linker {
  const linker = new Linker();
  for (const item of imports) {
    if (item.kind !== "function" || next() < 0.1) continue;
    linker.funcWrap(item.module ?? "env", item.name, linkerResult(item.results ?? [], next));
  }
  if (next() < 0.2) linker.funcWrap("env", "host_log", linkerResult([], next));
  return linker;
}

/**
 * A runtime config: valid (small limits, a bounded cache) or with a bad
 * field (`jsInvalid`: the constructor documents `TypeError`/`RangeError`).
 */
export function runtimeConfig(next: Next): Drawn<RuntimeConfig> {
  if (next() < 0.4) {
    return valid({
      execution: {
        isolation: "inline",
        fuelMetering: next() < 0.5,
        epochInterruption: next() < 0.5,
      },
      resourceLimits: { maxInstances: 1 + below(4, next), maxMemoryPages: 1 + below(8, next) },
      cache: pick<boolean | { maxEntries: number }>(
        [false, true, { maxEntries: 0 }, { maxEntries: 4 }],
        next,
      ),
      idleTimeoutMs: pick([0, 10, Infinity], next),
    });
  }
  return invalid(pick<unknown>([
    null,
    5,
    { execution: { isolation: "thread" } },
    { execution: { fuelMetering: "yes" } },
    { resourceLimits: { maxInstances: 0 } },
    { resourceLimits: { maxMemoryPages: NaN } },
    { resourceLimits: "small" },
    { cache: { maxEntries: -1 } },
    { cache: { maxEntries: 1.5 } },
    { cache: { dir: 5 } },
    { cache: "yes" },
    { idleTimeoutMs: -1 },
    { idleTimeoutMs: "1" },
    { idleTimeoutMs: NaN },
  ], next));
}

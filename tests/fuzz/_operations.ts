/**
 * The operations the API fuzzer runs against a live plugin: typed calls,
 * bytes and JSON calls, memory access, host functions reached with
 * pointers that may lie, lifecycle calls, and the manager's handle-based
 * API. Each is drawn at random and described for a violation's report.
 *
 * @module
 */

import type { ModuleItem, PluginHandle, PluginManager, WasmPlugin } from "../../mod.ts";
import { below, type Next, pick } from "./_mutate.ts";
import type { Operation } from "./_property.ts";
import { show } from "./_property.ts";
import {
  byteInput,
  callArguments,
  callOptions,
  type Drawn,
  jsonValue,
  memoryIndex,
  wellTyped,
} from "./_values.ts";

/** A plugin under fuzzing, and the manager that loaded it, if one did. */
export interface Target {
  /** A name for reports. */
  readonly label: string;
  readonly plugin: WasmPlugin;
  /** The module's exports, from its `CompiledModule`. */
  readonly exports: readonly ModuleItem[];
  readonly managed?: { readonly manager: PluginManager; readonly handle: PluginHandle };
  /** Whether random writes to its memory are allowed (they would corrupt a real allocator). */
  readonly writable: boolean;
}

/** An operation, the stage it counts under, and what to clean up once it settled. */
export interface DrawnOperation extends Operation {
  readonly stage: string;
  readonly dispose: () => void;
}

const TYPED_METHODS = ["call", "callI32", "callI64", "callF32", "callF64", "callVoid"] as const;
type TypedMethod = typeof TYPED_METHODS[number];
/** The methods a `PluginManager` wraps by handle. */
const MANAGED_METHODS: ReadonlySet<string> = new Set([
  "call",
  "callI32",
  "callI64",
  "callF64",
  "callVoid",
  "callBytes",
  "callJson",
]);

const ODD_NAMES = [
  "",
  "missing",
  "then",
  "__proto__",
  "constructor",
  "__wasmplug_fuel",
  "a".repeat(5000),
];

function functions(exports: readonly ModuleItem[]): ModuleItem[] {
  return exports.filter((item) => item.kind === "function");
}

/** The method whose result type fits `results`, as a careful caller would pick it. */
function fittingMethod(results: readonly string[]): TypedMethod {
  if (results.length === 0) return "callVoid";
  if (results.length > 1) return "call";
  const byType: Record<string, TypedMethod> = {
    i32: "callI32",
    i64: "callI64",
    f32: "callF32",
    f64: "callF64",
  };
  return byType[results[0]!] ?? "call";
}

/** An export name: mostly a function's, else another export's, an odd string, or not a string. */
function exportName(exports: readonly ModuleItem[], next: Next): Drawn<string> {
  const roll = next();
  const fns = functions(exports);
  if (roll < 0.75 && fns.length > 0) return { value: pick(fns, next).name, jsInvalid: false };
  if (roll < 0.9) {
    return {
      value: pick([...exports.map((item) => item.name), ...ODD_NAMES], next),
      jsInvalid: false,
    };
  }
  return {
    value: pick<unknown>([Symbol("name"), 5, null, undefined, {}, ["add"]], next) as string,
    jsInvalid: true,
  };
}

/** Calls `method` on the manager by handle when the target is managed and the manager has it. */
function invoke(target: Target, method: string, args: unknown[], viaManager: boolean): unknown {
  const { managed } = target;
  if (viaManager && managed !== undefined && MANAGED_METHODS.has(method)) {
    const fn =
      (managed.manager as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!;
    return fn.call(managed.manager, managed.handle, ...args);
  }
  const fn = (target.plugin as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!;
  return fn.apply(target.plugin, args);
}

/**
 * A typed call (`call`, `callI32`…): `careful` picks a function, the method
 * its results fit and well-typed arguments; otherwise the name, method,
 * arguments and options are all drawn, hostile ones included.
 */
export function typedCall(target: Target, next: Next, careful: boolean): DrawnOperation {
  const fns = functions(target.exports);
  let name: Drawn<string>;
  let method: TypedMethod;
  let args: unknown;
  if (careful && fns.length > 0) {
    const fn = pick(fns, next);
    name = { value: fn.name, jsInvalid: false };
    method = next() < 0.8 ? fittingMethod(fn.results ?? []) : "call";
    args = (fn.params ?? []).map((type) => wellTyped(type, next));
  } else {
    name = exportName(target.exports, next);
    method = pick(TYPED_METHODS, next);
    const params = fns.find((fn) => fn.name === name.value)?.params ?? [];
    args = callArguments(params, next);
  }
  const options = careful && next() < 0.7
    ? { value: undefined, jsInvalid: false, dispose: () => {} }
    : callOptions(next);
  const viaManager = next() < 0.5;
  return {
    stage: "call",
    what: `${target.label}: ${viaManager && target.managed ? "manager." : ""}${method}(${
      show(name.value)
    }, ${show(args)}, ${show(options.value)})`,
    run: () => invoke(target, method, [name.value, args, options.value], viaManager),
    jsInvalid: name.jsInvalid || options.jsInvalid,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    dispose: options.dispose,
  };
}

/** True for a function of the bytes ABI's shape, `(i32, i32) -> i32 | i64`. */
function bytesShaped(item: ModuleItem): boolean {
  return item.kind === "function" && item.params?.length === 2 &&
    item.params.every((type) => type === "i32") && item.results?.length === 1 &&
    (item.results[0] === "i32" || item.results[0] === "i64");
}

/** `callBytes`, `callWithBytes` or `callJson` with random input, mostly on a bytes-shaped export. */
export function bytesCall(target: Target, next: Next): DrawnOperation {
  const method = pick(["callBytes", "callWithBytes", "callJson"], next);
  const wanted = method === "callWithBytes" ? "i32" : "i64";
  const shaped = target.exports.filter((item) => bytesShaped(item) && item.results![0] === wanted);
  const name = shaped.length > 0 && next() < 0.8
    ? { value: pick(shaped, next).name, jsInvalid: false }
    : exportName(target.exports, next);
  const input: Drawn<unknown> = method === "callJson"
    ? { value: jsonValue(next), jsInvalid: false }
    : byteInput(next);
  const options = next() < 0.8
    ? { value: undefined, jsInvalid: false, dispose: () => {} }
    : callOptions(next);
  const viaManager = next() < 0.5;
  return {
    stage: method === "callJson" ? "json" : "bytes",
    what: `${target.label}: ${method}(${show(name.value)}, ${show(input.value)}, ${
      show(options.value)
    })`,
    run: () => invoke(target, method, [name.value, input.value, options.value], viaManager),
    jsInvalid: name.jsInvalid || input.jsInvalid || options.jsInvalid,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    dispose: options.dispose,
  };
}

/** `readMemory` or (on a writable target) `writeMemory` at offsets and lengths in and out of range. */
export function memoryAccess(target: Target, next: Next): DrawnOperation {
  const size = target.plugin.limits.maxMemoryPages * 65_536;
  const offset = memoryIndex(size, next);
  if (target.writable && next() < 0.5) {
    const data = byteInput(next);
    return {
      stage: "memory",
      what: `${target.label}: writeMemory(${show(offset.value)}, ${show(data.value)})`,
      run: () => target.plugin.writeMemory(offset.value, data.value),
      jsInvalid: offset.jsInvalid || data.jsInvalid,
      dispose: () => {},
    };
  }
  const length = next() < 0.5
    ? { value: below(64, next), jsInvalid: false }
    : memoryIndex(size, next);
  return {
    stage: "memory",
    what: `${target.label}: readMemory(${show(offset.value)}, ${show(length.value)})`,
    run: () => target.plugin.readMemory(offset.value, length.value),
    jsInvalid: offset.jsInvalid || length.jsInvalid,
    dispose: () => {},
  };
}

/** Pointers and lengths for a host function: mostly near the data it was given, sometimes anywhere. */
function pointer(valid: number, next: Next): number {
  return next() < 0.7
    ? valid
    : pick([0, 65_535, 65_536, -1, 2 ** 31 - 1, -(2 ** 31), 60_000], next);
}

const TOOL_NAMES = [
  "echo",
  "throws",
  "throws_string",
  "cyclic",
  "bigint",
  "slow",
  "nothing",
  "missing",
];

/**
 * Writes a key, a tool name and JSON-ish arguments into a host-functions
 * plugin's memory, then calls one of its re-exported host functions with
 * pointers to them, or to anywhere. Needs the target of
 * `ALL_HOST_FUNCTIONS_WAT`.
 */
export function hostCall(target: Target, next: Next): DrawnOperation {
  const fn = pick(functions(target.exports), next);
  const key = pick(TOOL_NAMES, next);
  const payload = pick(['{"n":1}', "[1,2", "null", "\u00ff\u00fe", '"\\ud800"', ""], next);
  const encoder = new TextEncoder();
  const sleep = fn.name === "host_sleep_ms";
  const args = (fn.params ?? []).map((_, i) => {
    // Layout: the key at 0, the payload at 256, output at 1024.
    const natural = [0, key.length, 256, payload.length, 1024, 512][i] ?? 0;
    return sleep ? pick([0, 1, 3, 1000, -1, 2 ** 31 - 1], next) : pointer(natural, next);
  });
  // A long sleep ends at the call's deadline: keep it short.
  const options = sleep
    ? { value: { timeoutMs: 25 }, jsInvalid: false, dispose: () => {} }
    : callOptions(next);
  return {
    stage: "host",
    what: `${target.label}: ${fn.name}(${args.join(", ")}) with key ${show(key)} and payload ${
      show(payload)
    }, options ${show(options.value)}`,
    run: async () => {
      await target.plugin.writeMemory(0, encoder.encode(key));
      await target.plugin.writeMemory(256, encoder.encode(payload));
      return await target.plugin.call(fn.name, args, options.value as undefined);
    },
    jsInvalid: options.jsInvalid,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    dispose: options.dispose,
  };
}

/** `run()` of a WASI command, with random stdin (or not bytes at all) and options. */
export function runCommand(target: Target, next: Next): DrawnOperation {
  const stdin = byteInput(next);
  const options = callOptions(next);
  const runOptions = options.value === null || typeof options.value !== "object"
    ? { stdin: stdin.value }
    : { ...options.value, stdin: stdin.value };
  return {
    stage: "command",
    what: `${target.label}: run(${show(runOptions)})`,
    run: () => target.plugin.run(runOptions),
    jsInvalid: stdin.jsInvalid || options.jsInvalid,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    dispose: options.dispose,
  };
}

/** `initialize`, `metrics`, or `pause` then `resume`. */
export function lifecycle(target: Target, next: Next): DrawnOperation {
  const { plugin } = target;
  const [what, run] = pick<[string, () => unknown]>([
    ["initialize()", () => plugin.initialize()],
    ["metrics()", () => plugin.metrics()],
    ["pause() then resume()", async () => {
      await plugin.pause();
      plugin.resume();
    }],
  ], next);
  return {
    stage: "lifecycle",
    what: `${target.label}: ${what}`,
    run,
    jsInvalid: false,
    dispose: () => {},
  };
}

/** The manager's handle-based API with handles that are stale, forged or not handles at all. */
export function managerCall(
  manager: PluginManager,
  handles: readonly PluginHandle[],
  next: Next,
): DrawnOperation {
  const handle: Drawn<PluginHandle> = next() < 0.5 && handles.length > 0
    ? { value: pick(handles, next), jsInvalid: false }
    : next() < 0.6
    ? { value: { id: pick(["nope", "", "plugin-0"], next) }, jsInvalid: false }
    : {
      value: pick<unknown>([null, undefined, "plugin-1", 5, {}, Symbol("h")], next) as PluginHandle,
      jsInvalid: true,
    };
  const capability = pick(["timer", "nope"], next) as "timer";
  const [what, run, synchronous] = pick<[string, () => unknown, boolean]>([
    ["getInfo", () => manager.getInfo(handle.value), false],
    ["callI32", () => manager.callI32(handle.value, "id_i32", [1]), false],
    ["callJson", () => manager.callJson(handle.value, "echo", { a: 1 }), false],
    ["get", () => manager.get(handle.value), true],
    ["stats", () => manager.stats(), true],
    ["listPlugins", () => manager.listPlugins(), true],
    ["pluginsWithCapability", () => manager.pluginsWithCapability(capability), true],
  ], next);
  return {
    stage: "manager",
    what: `manager.${what}(${show(handle.value)})`,
    run,
    jsInvalid: handle.jsInvalid,
    synchronous,
    dispose: () => {},
  };
}

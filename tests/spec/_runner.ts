/**
 * Runs one spec-testsuite JSON command file, either on the modules as they
 * are or on their instrumented versions, and records the outcome of every
 * command so that the two runs can be compared command by command.
 *
 * @module
 */

import {
  InstanceLimits,
  type InstanceLimits as Limits,
  instrument,
  type InstrumentOptions,
  type InstrumentResult,
  TrapReason,
} from "../../src/instrument/instrument.ts";
import {
  callExact,
  HostRefs,
  matchesExact,
  matchesJs,
  needsExactCall,
  type SpecValue,
  toJs,
  wrappable,
} from "./_values.ts";

/** How to run the modules of a file. */
export interface RunOptions {
  /** Passes to apply, or `null` to run the modules unchanged. */
  readonly instrument: InstrumentOptions | null;
  /** The compiled `spectest` host module. */
  readonly spectest: WebAssembly.Module;
}

/** What happened to one command. */
export interface Outcome {
  readonly line: number;
  readonly type: string;
  readonly status: "pass" | "fail" | "skip";
  readonly detail?: string;
}

/** Outcomes of one file. */
export interface FileReport {
  readonly name: string;
  readonly outcomes: readonly Outcome[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  /** How many `assert_exhaustion` commands the call-depth pass (not V8) stopped. */
  readonly depthTraps: number;
}

interface Action {
  type: "invoke" | "get";
  module?: string;
  field: string;
  args?: SpecValue[];
}

interface Command {
  type: string;
  line: number;
  filename?: string;
  name?: string;
  as?: string;
  definition?: string;
  module_type?: string;
  action?: Action;
  expected?: SpecValue[];
  either?: SpecValue[];
}

/** Budgets large enough never to stop a conforming test, small enough to catch runaways. */
const BUDGET = { fuel: 1n << 60n, maxCallDepth: 1000, deadline: Infinity } as const;

class Skip extends Error {}

interface Compiled {
  module: WebAssembly.Module;
  meta: InstrumentResult | null;
}

type Thrown = "trap" | "limit" | "exhaustion" | "exception" | "error";

/** Runs the commands of `<dir>/<name>.json`. */
export function runSpecFile(dir: URL, name: string, options: RunOptions): FileReport {
  const json = JSON.parse(Deno.readTextFileSync(new URL(`${name}.json`, dir))) as {
    commands: Command[];
  };
  const state = new FileState(dir, options);
  const outcomes: Outcome[] = [];
  for (const command of json.commands) {
    let status: Outcome["status"] = "pass";
    let detail: string | undefined;
    try {
      const failure = state.run(command);
      if (failure !== null) {
        status = "fail";
        detail = failure;
      }
    } catch (error) {
      if (error instanceof Skip) {
        status = "skip";
        detail = error.message;
      } else {
        status = "fail";
        detail = `Unexpected ${describe(error)}`;
      }
    }
    outcomes.push({
      line: command.line,
      type: command.type,
      status,
      ...(detail === undefined ? {} : { detail }),
    });
  }
  const count = (status: Outcome["status"]): number =>
    outcomes.filter((outcome) => outcome.status === status).length;
  return {
    name,
    outcomes,
    passed: count("pass"),
    failed: count("fail"),
    skipped: count("skip"),
    depthTraps: state.depthTraps,
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return String(error);
}

class FileState {
  readonly #dir: URL;
  readonly #options: RunOptions;
  readonly #refs = new HostRefs();
  readonly #registry = new Map<string, WebAssembly.Exports>();
  readonly #named = new Map<string, WebAssembly.Instance>();
  readonly #limits: Limits[] = [];
  #current: WebAssembly.Instance | null = null;
  /** Exhaustion tests stopped by the call-depth pass rather than by V8. */
  depthTraps = 0;

  constructor(dir: URL, options: RunOptions) {
    this.#dir = dir;
    this.#options = options;
    const spectest = new WebAssembly.Instance(options.spectest);
    this.#registry.set("spectest", spectest.exports);
  }

  /** Runs a command; returns `null` on success or why it failed. */
  run(command: Command): string | null {
    switch (command.type) {
      case "module":
        return this.#module(command);
      case "register": {
        const instance = command.name === undefined ? this.#current : this.#named.get(command.name);
        if (instance === undefined || instance === null) return "No module to register";
        this.#registry.set(command.as!, instance.exports);
        return null;
      }
      case "action":
        return this.#expectValues(command, false);
      case "assert_return":
        return this.#expectValues(command, true);
      case "assert_trap":
        return this.#expectThrow(command, "trap");
      case "assert_exhaustion":
        return this.#expectThrow(command, "exhaustion");
      case "assert_exception":
        return this.#expectThrow(command, "exception");
      case "assert_malformed":
      case "assert_invalid": {
        if (command.module_type !== "binary") throw new Skip("Text module");
        try {
          this.#compile(command.filename!);
        } catch {
          return null;
        }
        return "Module compiled";
      }
      case "assert_unlinkable":
      case "assert_uninstantiable": {
        const compiled = this.#compile(command.filename!);
        try {
          this.#instantiate(compiled);
        } catch (error) {
          const trapped = error instanceof WebAssembly.RuntimeError;
          if (command.type === "assert_uninstantiable") {
            return trapped ? null : `Expected a trap, got ${describe(error)}`;
          }
          return trapped ? `Expected a link error, got ${describe(error)}` : null;
        }
        return "Module instantiated";
      }
      default:
        throw new Skip(`Unknown command ${command.type}`);
    }
  }

  #module(command: Command): string | null {
    let compiled: Compiled;
    try {
      compiled = this.#compile(command.filename!);
    } catch (error) {
      // Memories and tables declared larger than V8 can ever allocate.
      if (/implementation limit/.test(String(error))) {
        throw new Skip("Beyond V8's implementation limits");
      }
      throw error;
    }
    if (command.definition === "true") return null;
    const instance = this.#instantiate(compiled);
    this.#current = instance;
    if (command.name !== undefined) this.#named.set(command.name, instance);
    return null;
  }

  #compile(filename: string): Compiled {
    const bytes = Deno.readFileSync(new URL(filename, this.#dir));
    const passes = this.#options.instrument;
    if (passes === null) return { module: new WebAssembly.Module(bytes), meta: null };
    const meta = instrument(bytes, passes);
    return { module: new WebAssembly.Module(meta.bytes), meta };
  }

  #instantiate(compiled: Compiled): WebAssembly.Instance {
    const imports: Record<string, Record<string, WebAssembly.ExportValue>> = {};
    for (const entry of WebAssembly.Module.imports(compiled.module)) {
      const source = this.#registry.get(entry.module);
      if (source === undefined || !(entry.name in source)) continue;
      (imports[entry.module] ??= {})[entry.name] = source[entry.name]!;
    }
    const instance = new WebAssembly.Instance(compiled.module, imports);
    if (compiled.meta !== null) {
      const limits = new InstanceLimits(instance, compiled.meta);
      this.#limits.push(limits);
      limits.prepare(BUDGET);
      limits.runStart();
    }
    return instance;
  }

  #perform(action: Action, resultTypes: readonly string[]): unknown[] {
    const instance = action.module === undefined ? this.#current : this.#named.get(action.module);
    if (instance === undefined || instance === null) {
      throw new Error(`No module ${action.module ?? ""}`);
    }
    const target = instance.exports[action.field];
    if (action.type === "get") {
      if (resultTypes.includes("v128")) throw new Skip("v128 global");
      return [(target as WebAssembly.Global).value];
    }
    if (typeof target !== "function") throw new Error(`No function ${action.field}`);
    for (const limits of this.#limits) limits.prepare(BUDGET);
    const args = action.args ?? [];
    const types = [...args.map((arg) => arg.type), ...resultTypes];
    if (needsExactCall(types)) {
      if (!wrappable(types)) throw new Skip(`Cannot pass ${types.join(" ")} exactly`);
      return callExact(target, args, resultTypes, this.#refs);
    }
    const returned = target(...args.map((arg) => toJs(arg, this.#refs)));
    if (resultTypes.length === 0) return [];
    if (resultTypes.length === 1) return [returned];
    return returned as unknown[];
  }

  #expectValues(command: Command, check: boolean): string | null {
    const expected = command.expected ?? [];
    const either = command.either;
    const types = either === undefined ? expected.map((value) => value.type) : [either[0]!.type];
    let results: unknown[];
    try {
      results = this.#perform(command.action!, types);
    } catch (error) {
      if (error instanceof Skip) throw error;
      return `Threw ${describe(error)}`;
    }
    if (!check) return null;
    const matches = (actual: unknown, value: SpecValue): boolean =>
      actual !== null && typeof actual === "object" && ("view" in actual || "ref" in actual)
        ? matchesExact(actual as Parameters<typeof matchesExact>[0], value, this.#refs)
        : matchesJs(actual, value, this.#refs);
    if (either !== undefined) {
      return either.some((value) => matches(results[0], value)) ? null : "No alternative matched";
    }
    for (let i = 0; i < expected.length; i++) {
      if (!matches(results[i], expected[i]!)) {
        return `Result ${i} differs from ${JSON.stringify(expected[i]!.value)}`;
      }
    }
    return null;
  }

  #expectThrow(command: Command, want: Thrown): string | null {
    const types = (command.expected ?? []).map((value) => value.type);
    try {
      this.#perform(command.action!, types);
    } catch (error) {
      if (error instanceof Skip) throw error;
      const got = this.#classify(error);
      if (got === want) return null;
      if (want === "exhaustion" && got === "limit" && this.#tripped() === TrapReason.CallDepth) {
        this.depthTraps++;
        return null;
      }
      return `Expected ${want}, got ${got} (${describe(error)})`;
    }
    return `Expected ${want}, returned normally`;
  }

  #tripped(): number {
    for (const limits of this.#limits) {
      if (limits.trapReason !== TrapReason.None) return limits.trapReason;
    }
    return TrapReason.None;
  }

  #classify(error: unknown): Thrown {
    if (error instanceof WebAssembly.RuntimeError) {
      return this.#tripped() === TrapReason.None ? "trap" : "limit";
    }
    if (error instanceof RangeError) return "exhaustion";
    if (error instanceof (WebAssembly as unknown as { Exception: typeof Error }).Exception) {
      return "exception";
    }
    return "error";
  }
}

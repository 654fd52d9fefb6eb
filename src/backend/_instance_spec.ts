/**
 * What one instance of a plugin's module is made from, in two parts:
 *
 * - the {@linkcode InstanceSpec}: plain data that describes the instance
 *   (module, import plan, capabilities, limits…). The runtime builds it once
 *   per plugin; a worker plugin posts it to its worker as is.
 * - the host side, which cannot be cloned: {@linkcode PluginHostSide}, what
 *   the host thread keeps for the plugin (linker functions, host
 *   environment), and {@linkcode InstanceBindings}, what the instance's
 *   imports call where it runs (on the host thread those functions
 *   themselves, in a worker proxies over the channel).
 *
 * @module
 */

import type { PreparedModule, StorageImport } from "../compile/mod.ts";
import type { CallBudget } from "./_call_budget.ts";
import type { HostCallable } from "../host/mod.ts";
import type { HostEnvironment, HostServices } from "../host/mod.ts";
import type { InstrumentMetadata } from "../metering/mod.ts";
import type { ResourceLimits } from "../resource_limits.ts";
import { absolutePaths, fileBudgetBuffer, newFileCell } from "../wasi/mod.ts";

/** How one import of the module is provided. */
export interface ImportPlan {
  readonly module: string;
  readonly name: string;
  /**
   * A function of the application's linker, a built-in host function of
   * `env`, WASI, or a memory or table the runtime makes for each instance.
   */
  readonly kind: "linker" | "builtin" | "wasi" | "memory" | "table";
  /** Index among the linker functions (`kind: "linker"`). */
  readonly index: number;
}

/** The serializable WASI part of a plugin config. */
export interface WasiSettings {
  readonly args?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly preopens?: Readonly<Record<string, string>> | undefined;
  readonly maxOpenFiles?: number | undefined;
}

/**
 * What an instance of an instrumented module hands over when its worker is
 * parked: the bytes of its defined memories and the values of its mutable
 * globals, in the order of `InstrumentMetadata.state`.
 */
export interface ParkedState {
  readonly memories: readonly Uint8Array[];
  readonly globals: readonly (number | bigint)[];
  /**
   * The `host_log` budget: records left, and when (`performance.timeOrigin +
   * performance.now()`, comparable across threads): a park must not refill it.
   */
  readonly logBudget?: { readonly tokens: number; readonly at: number };
  /** When its WASI instance was created (as `logBudget.at`): the CPU-time clocks go on from it. */
  readonly wasiCreatedAt?: number;
}

/** The budgets of a module's start function, without the abort signal (which cannot be cloned). */
export type StartBudget = Pick<CallBudget, "fuel" | "timeoutMs">;

/**
 * Everything that describes one instance of a plugin's module and can be
 * cloned: `structuredClone(spec)` (or posting it to a worker) gives a spec
 * of the same instance.
 */
export interface InstanceSpec {
  /** The plugin's module, prepared (clamped and instrumented) for its limits. */
  readonly module: WebAssembly.Module;
  /** What the instrumenter added to the module, or `null` when no pass was applied. */
  readonly instrumentation: InstrumentMetadata | null;
  /** The memories and tables the module imports, which each instance is given new. */
  readonly storageImports: readonly StorageImport[];
  /** Who provides each import of the module, in the module's order. */
  readonly imports: readonly ImportPlan[];
  /** The plugin's name: in messages, the worker's name, and WASI's `argv[0]`. */
  readonly pluginName: string;
  /** The capabilities the plugin was granted (`Capability` values). */
  readonly capabilities: readonly string[];
  /** The hosts `host_http_fetch` may reach (`PluginConfig.allowedHosts`). */
  readonly allowedHosts: readonly string[];
  /** The plugin's `maxCallDepth`: how deep guest calls may nest. */
  readonly maxCallDepth: number;
  /** WASI arguments, environment and preopens, for a module that imports WASI. */
  readonly wasi: WasiSettings | undefined;
  /**
   * The absolute paths WASI may change (`allowedPaths.write` with
   * `Capability.FileSystem`, else none): in a worker Deno's permissions say
   * the same, inline they are the only bound besides the host's own.
   */
  readonly writablePaths: readonly string[];
  /**
   * The process-wide count of the host files guests hold (`_file_budget.ts`),
   * which a worker adopts, and this plugin's own count in it, which the host
   * gives back when it ends a worker that could not close its files.
   */
  readonly files: { readonly budget: SharedArrayBuffer; readonly cell: SharedArrayBuffer };
  /** Budgets of the module's start function: the plugin's own limits. */
  readonly startBudget: StartBudget;
  /**
   * How long a worker plugin's worker may sit with no exchange before it is
   * parked; `Infinity` never parks it. Inline plugins are never parked.
   */
  readonly idleTimeoutMs: number;
  /**
   * The state of a parked instance to take over in place of running the
   * start function, or `null` for a fresh instance.
   */
  readonly restore: ParkedState | null;
}

/**
 * What a new instance's imports and checks call where it runs: the host's
 * functions themselves on the host thread, proxies over the channel in a
 * worker.
 */
export interface InstanceBindings {
  /** The linker function behind an import plan's `index`. */
  readonly linkerFunction: (index: number) => HostCallable;
  /** The state behind the built-in host functions (config, storage, tools, logs, messages). */
  readonly services: HostServices;
  /**
   * Whether the host, on another thread, asked the running call to stop:
   * asked as each call begins and at each of the clock hook's checks.
   */
  readonly stopRequested?: () => boolean;
}

/** What the host thread keeps for a plugin, beside its spec: none of it can be cloned. */
export interface PluginHostSide {
  /** Linker functions by import index (the plan's `index`). */
  readonly linkerFunctions: readonly HostCallable[];
  /**
   * The plugin's host environment: the state behind its built-in host
   * functions, and who its host calls are made for (see `_host_call_scope.ts`).
   */
  readonly env: HostEnvironment;
  /** Aborts the start function (the runtime closing while the plugin starts). */
  readonly startSignal: AbortSignal | undefined;
}

/** What a backend is made from: the instance's spec and the plugin's host side. */
export interface BackendParts {
  /** The instance, as plain data. */
  readonly spec: InstanceSpec;
  /** What stays on the host thread. */
  readonly host: PluginHostSide;
}

/** What {@linkcode describeInstance} builds a spec from. */
export interface InstanceDescription {
  /** The module prepared for the plugin's limits. */
  readonly prepared: PreparedModule;
  /** Who provides each import (see `_import_plan.ts`). */
  readonly imports: readonly ImportPlan[];
  /** The plugin's name. */
  readonly pluginName: string;
  /** The capabilities granted. */
  readonly capabilities: Iterable<string>;
  /** The hosts `host_http_fetch` may reach. */
  readonly allowedHosts: readonly string[];
  /** The plugin's resolved limits. */
  readonly limits: Readonly<ResourceLimits>;
  /** The plugin config's WASI settings. */
  readonly wasi: WasiSettings | undefined;
  /** The paths WASI may change, as configured (see {@linkcode InstanceSpec.writablePaths}). */
  readonly writablePaths: readonly string[];
  /** The runtime's `idleTimeoutMs`. */
  readonly idleTimeoutMs: number;
}

/** The spec of a fresh instance (nothing to restore). */
export function describeInstance(description: InstanceDescription): InstanceSpec {
  const { prepared, limits } = description;
  return {
    module: prepared.module,
    instrumentation: prepared.instrumentation,
    storageImports: prepared.storageImports,
    imports: description.imports,
    pluginName: description.pluginName,
    capabilities: [...description.capabilities],
    allowedHosts: [...description.allowedHosts],
    maxCallDepth: limits.maxCallDepth,
    wasi: plainWasi(description.wasi),
    writablePaths: absolutePaths(description.writablePaths),
    files: { budget: fileBudgetBuffer(), cell: newFileCell() },
    startBudget: { fuel: limits.maxFuel, timeoutMs: limits.maxExecutionTimeMs },
    idleTimeoutMs: description.idleTimeoutMs,
    restore: null,
  };
}

/** A plain copy of WASI settings, which can be cloned whatever objects the config used. */
function plainWasi(wasi: WasiSettings | undefined): WasiSettings | undefined {
  if (wasi === undefined) return undefined;
  const { args, env, preopens, maxOpenFiles } = wasi;
  return {
    ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
    ...(args === undefined ? {} : { args: [...args] }),
    ...(env === undefined ? {} : { env: { ...env } }),
    ...(preopens === undefined ? {} : { preopens: { ...preopens } }),
  };
}

/** The budget a spec's start function runs under, with the host's abort signal. */
export function startBudgetOf(spec: InstanceSpec, host: PluginHostSide): CallBudget {
  return { ...spec.startBudget, signal: host.startSignal };
}

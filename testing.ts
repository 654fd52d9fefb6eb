/**
 * Helpers for testing your own plugins with `deno test`: load a plugin for
 * the length of a test and always clean up, assert that a call fails with a
 * given error kind, and a fake host that records what a plugin logs and
 * sends and answers its tool calls with canned results.
 *
 * @example Test a plugin in a few lines
 * ```ts
 * import { withPlugin, assertTrapKind } from "@wasmplug/wasmplug/testing";
 *
 * await withPlugin(
 *   '(module (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))',
 *   {},
 *   async (plugin) => {
 *     console.log(await plugin.callI32("div", [10, 2])); // 5
 *     await assertTrapKind(plugin.callI32("div", [1, 0]), "trap");
 *   },
 * );
 * ```
 *
 * @module
 */

import {
  Capability,
  type Linker,
  type PluginLogEntry,
  type PluginMessage,
  type RuntimeConfig,
  WasmError,
  type WasmErrorKind,
  type WasmPlugin,
  type WasmPluginConfig,
  WasmRuntime,
} from "./mod.ts";

/**
 * Options of {@linkcode withPlugin}.
 *
 * @example
 * ```ts
 * import type { WithPluginOptions } from "@wasmplug/wasmplug/testing";
 * const options: WithPluginOptions = { runtime: { execution: { isolation: "inline" } } };
 * ```
 */
export interface WithPluginOptions {
  /**
   * The runtime to create; its plugins run inline unless it says otherwise
   * (inline needs no Deno flag and no permission).
   *
   * @default {{ execution: { isolation: "inline" } }}
   */
  runtime?: RuntimeConfig;
  /** A fake host whose hooks, tools and grants the plugin gets. */
  host?: FakeHost;
  /**
   * The application's host functions the plugin may import (from any
   * runtime's `createLinker()`); the plugin also needs
   * `Capability.CallHostFunction` to call them.
   */
  linker?: Linker;
}

/**
 * Loads a plugin from WAT text or wasm bytes, runs `fn` with it, and always
 * stops the plugin and closes its runtime, whatever `fn` does: when `fn`
 * throws, a call it left running is ended rather than waited for. (It runs
 * inline unless `runtime.execution.isolation` says otherwise: a runaway loop there holds the
 * test's thread until the plugin's `maxExecutionTimeMs`, which its limits
 * may lower.)
 *
 * @example
 * ```ts
 * import { withPlugin } from "@wasmplug/wasmplug/testing";
 * const answer = await withPlugin(
 *   '(module (func (export "answer") (result i32) i32.const 42))',
 *   { name: "answer" },
 *   (plugin) => plugin.callI32("answer"),
 * );
 * console.log(answer); // 42
 * ```
 *
 * @param source WAT text, or the bytes of a binary module.
 * @param config The plugin's config.
 * @param fn The test body.
 * @param options The runtime's config and a fake host.
 * @returns What `fn` returns.
 */
export async function withPlugin<T>(
  source: string | Uint8Array,
  config: WasmPluginConfig,
  fn: (plugin: WasmPlugin, runtime: WasmRuntime) => T | Promise<T>,
  options: WithPluginOptions = {},
): Promise<T> {
  const runtimeConfig = options.runtime ?? {};
  await using runtime = new WasmRuntime({
    ...runtimeConfig,
    execution: { isolation: "inline", ...runtimeConfig.execution },
  });
  const host = options.host;
  host?.install(runtime);
  const pluginConfig = host === undefined ? config : host.configure(config);
  const compiled = typeof source === "string"
    ? await runtime.compileWat(config.name ?? "plugin", source)
    : await runtime.compile(config.name ?? "plugin", source);
  const linker = options.linker;
  await using plugin = linker === undefined
    ? await runtime.createPlugin(compiled, pluginConfig)
    : await runtime.createPluginWithLinker(compiled, pluginConfig, linker);
  try {
    return await fn(plugin, runtime);
  } catch (err) {
    // The test failed: a call it left running is ended, not waited for (it waited for the
    // call's whole time limit, 30 s by default, before the failure was reported).
    await plugin.stop({ abort: true }).catch(() => {});
    throw err;
  }
}

/**
 * Asserts that `promise` rejects with a {@linkcode WasmError} of `kind`, and
 * returns that error.
 *
 * @example
 * ```ts
 * import { assertTrapKind, withPlugin } from "@wasmplug/wasmplug/testing";
 * await withPlugin("(module)", {}, async (plugin) => {
 *   const error = await assertTrapKind(plugin.callI32("missing"), "invalid_function");
 *   console.log(error.kind); // invalid_function
 * });
 * ```
 *
 * @param promise A call that should fail.
 * @param kind The expected `err.kind`.
 * @throws {Error} If the promise resolves, or rejects with something else.
 */
export async function assertTrapKind(
  promise: Promise<unknown>,
  kind: WasmErrorKind,
): Promise<WasmError> {
  let result: unknown;
  try {
    result = await promise;
  } catch (err) {
    if (err instanceof WasmError && err.kind === kind) return err;
    const found = err instanceof WasmError ? `a WasmError of kind "${err.kind}"` : String(err);
    throw new Error(`Expected a WasmError of kind "${kind}", got ${found}`, { cause: err });
  }
  throw new Error(
    `Expected a WasmError of kind "${kind}", but the call returned ${String(result)}`,
  );
}

/**
 * A fake host for plugin tests: it records `host_log` and
 * `host_send_message`, answers `host_call_tool` with canned results, and
 * grants the capabilities those need.
 *
 * @example Check what a plugin logs and which tool it calls
 * ```ts
 * import { FakeHost, withPlugin } from "@wasmplug/wasmplug/testing";
 *
 * const host = new FakeHost().answerTool("lookup", { found: true });
 * await withPlugin(`(module
 *   (import "env" "host_log" (func $log (param i32 i32 i32)))
 *   (memory (export "memory") 1)
 *   (data (i32.const 0) "hello")
 *   (func (export "run") (call $log (i32.const 1) (i32.const 0) (i32.const 5))))`,
 *   {},
 *   (plugin) => plugin.callVoid("run"),
 *   { host },
 * );
 * console.log(host.logs.map((entry) => entry.message)); // [ "hello" ]
 * ```
 */
export class FakeHost {
  /** Every `host_log` call, in order. */
  readonly logs: PluginLogEntry[] = [];
  /** Every `host_send_message` call, in order. */
  readonly messages: PluginMessage[] = [];
  /** Every `host_call_tool` call, in order, with its parsed arguments. */
  readonly toolCalls: { readonly name: string; readonly args: unknown }[] = [];
  readonly #answers = new Map<string, unknown>();

  /**
   * Makes the tool `name` answer `result` (a JSON-serializable value).
   *
   * @param name The tool name the plugin calls.
   * @param result The canned answer.
   * @returns The host, for chaining.
   *
   * @example
   * ```ts
   * import { FakeHost } from "@wasmplug/wasmplug/testing";
   * const host = new FakeHost().answerTool("weather", { sunny: true });
   * ```
   */
  answerTool(name: string, result: unknown): this {
    this.#answers.set(name, result);
    return this;
  }

  /**
   * Registers the canned tools with a runtime.
   *
   * @param runtime The runtime the plugin is created in.
   *
   * @example
   * ```ts
   * import { FakeHost } from "@wasmplug/wasmplug/testing";
   * import { WasmRuntime } from "@wasmplug/wasmplug";
   * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
   * new FakeHost().answerTool("weather", { sunny: true }).install(runtime);
   * ```
   */
  install(runtime: WasmRuntime): void {
    for (const [name, result] of this.#answers) {
      runtime.registerTool(name, (args) => {
        this.toolCalls.push({ name, args });
        return result;
      });
    }
  }

  /**
   * Returns `config` with this host's hooks and the capabilities they need.
   *
   * @param config The plugin's own config.
   *
   * @example
   * ```ts
   * import { FakeHost } from "@wasmplug/wasmplug/testing";
   * const config = new FakeHost().configure({ name: "p" });
   * console.log(config.capabilities); // [ "send_message" ]
   * ```
   */
  configure(config: WasmPluginConfig): WasmPluginConfig {
    const capabilities = new Set(config.capabilities ?? []);
    capabilities.add(Capability.SendMessage);
    if (this.#answers.size > 0) capabilities.add(Capability.CallTool);
    return {
      ...config,
      capabilities: [...capabilities],
      onLog: (entry) => {
        this.logs.push(entry);
        config.onLog?.(entry);
      },
      onMessage: (message) => {
        this.messages.push(message);
        config.onMessage?.(message);
      },
    };
  }
}

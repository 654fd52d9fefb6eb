/**
 * wasmplug runs untrusted WebAssembly plugins in a sandbox with enforced
 * resource limits and capability-gated host functions. It re-creates the
 * WASM plugin runtime of the MoFA agent framework (`WasmRuntime`,
 * `compile_wat`, `create_plugin`, `call_i32`, `ResourceLimits`,
 * `WasmPluginManager`) in TypeScript for Deno.
 *
 * @example Compile, load and call a plugin
 * ```ts
 * import { WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const compiled = await runtime.compileWat("math-module", `
 *   (module
 *     (func (export "add") (param i32 i32) (result i32)
 *       local.get 0
 *       local.get 1
 *       i32.add))
 * `);
 * await using plugin = await runtime.createPlugin(compiled, { name: "math-plugin" });
 * await plugin.initialize();
 * console.log(`10 + 5 = ${await plugin.callI32("add", [10, 5])}`); // 10 + 5 = 15
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export * from "./src/resource_limits.ts";
export * from "./src/capability.ts";
export * from "./src/runtime_config.ts";
export * from "./src/plugin_config.ts";
export * from "./src/call_options.ts";
export * from "./src/command_run.ts";
export * from "./src/plugin_metrics.ts";
export * from "./src/plugin_state.ts";
export * from "./src/compile/compiled_module.ts";
export * from "./src/cache_stats.ts";
export * from "./src/linker.ts";
export * from "./src/host/plugin_message.ts";
export * from "./src/host/plugin_log_entry.ts";
export * from "./src/host/tool_function.ts";
export { type StopOptions, WasmPlugin } from "./src/wasm_plugin.ts";
export { type ResolvedExecution, WasmRuntime } from "./src/wasm_runtime.ts";
export * from "./src/plugin_event.ts";
export * from "./src/event_subscription.ts";
export * from "./src/plugin_manager.ts";
export type { DashboardServer, ServeOptions } from "./src/observe/dashboard_server.ts";
export * from "./src/observe/anomaly.ts";
export * from "./src/plugin_manifest.ts";
export * from "./src/wasi/wasi_preview1.ts";
export * from "./src/wasi/wasi_exit.ts";

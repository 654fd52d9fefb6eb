/**
 * Host functions defined by the application for its plugins.
 *
 * @module
 */

/**
 * A host function callable from wasm. It receives the wasm arguments as JS
 * values (i32/f32/f64 as `number`, i64 as `bigint`) and returns the result
 * (or nothing for a function without results).
 *
 * @example
 * ```ts
 * import type { HostFunction } from "@wasmplug/wasmplug";
 * const double: HostFunction = (x: number) => x * 2;
 * ```
 */
export type HostFunction = (...args: never[]) => unknown;

/**
 * A set of host functions to link into plugins, like wasmtime's `Linker`.
 * Calling a linker function needs `Capability.CallHostFunction`; an exception
 * thrown by the function reaches the caller as a `HostFunctionError` whose
 * `cause` is that exception (a `WasmError` reaches it as it is). The guest
 * itself gets a stand-in that holds nothing of it, and the call ends with
 * the error whatever the guest does.
 *
 * @example Log from a plugin (the guide's module linking)
 * ```ts
 * import { Capability, WasmRuntime } from "@wasmplug/wasmplug";
 *
 * await using runtime = new WasmRuntime({ execution: { isolation: "inline" } });
 * const logged: number[] = [];
 * const linker = runtime.createLinker();
 * linker.funcWrap("env", "log", (msg: number) => {
 *   logged.push(msg);
 * });
 * const compiled = await runtime.compileWat(
 *   "logger",
 *   '(module (import "env" "log" (func $log (param i32))) (func (export "run") (call $log (i32.const 7))))',
 * );
 * await using plugin = await runtime.createPluginWithLinker(compiled, {
 *   capabilities: [Capability.CallHostFunction],
 * }, linker);
 * await plugin.callVoid("run", []);
 * console.log(logged); // [ 7 ]
 * ```
 */
export class Linker {
  readonly #functions = new Map<string, { module: string; name: string; fn: HostFunction }>();

  /**
   * Defines `module.name` as a host function, replacing an earlier definition.
   *
   * @param module The import module name, e.g. `"env"`.
   * @param name The import name, e.g. `"log"`.
   * @param fn The function.
   * @returns The linker, for chaining.
   * @throws {TypeError} If a name is not a string or `fn` is not a function.
   *
   * @example
   * ```ts
   * import { Linker } from "@wasmplug/wasmplug";
   * const linker = new Linker().funcWrap("env", "now", () => Date.now());
   * ```
   */
  funcWrap(module: string, name: string, fn: HostFunction): this {
    if (typeof module !== "string" || typeof name !== "string") {
      throw new TypeError("Cannot define a host function: module and name must be strings");
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot define host function "${module}"."${name}": expected a function, received ${typeof fn}`,
      );
    }
    this.#functions.set(`${module}\u0000${name}`, { module, name, fn });
    return this;
  }

  /**
   * Returns the function defined as `module.name`, if any.
   *
   * @param module The import module name.
   * @param name The import name.
   *
   * @example
   * ```ts
   * import { Linker } from "@wasmplug/wasmplug";
   * const linker = new Linker().funcWrap("env", "twice", (x: number) => 2 * x);
   * console.log(typeof linker.get("env", "twice")); // function
   * ```
   */
  get(module: string, name: string): HostFunction | undefined {
    return this.#functions.get(`${module}\u0000${name}`)?.fn;
  }

  /**
   * Every definition, as `[module, name]` pairs.
   *
   * @example
   * ```ts
   * import { Linker } from "@wasmplug/wasmplug";
   * console.log(new Linker().funcWrap("env", "log", () => {}).definitions()); // [ [ "env", "log" ] ]
   * ```
   */
  definitions(): [module: string, name: string][] {
    return [...this.#functions.values()].map(({ module, name }) => [module, name]);
  }
}

/**
 * Helpers shared by the runtime tests: an inline runtime, a plugin loaded
 * from WAT with its runtime, and assertions on typed errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type RuntimeConfig, type WasmPlugin, type WasmPluginConfig, WasmRuntime } from "../mod.ts";

/** A runtime whose plugins run inline (the only isolation available today). */
export function inlineRuntime(config: RuntimeConfig = {}): WasmRuntime {
  return new WasmRuntime({ ...config, execution: { isolation: "inline", ...config.execution } });
}

/** A plugin and the runtime that owns it; disposing it closes the runtime. */
export interface LoadedPlugin extends AsyncDisposable {
  readonly runtime: WasmRuntime;
  readonly plugin: WasmPlugin;
}

/**
 * Compiles `wat` in a fresh inline runtime and creates one plugin from it.
 * Use it with `await using`.
 */
export async function loadPlugin(
  wat: string,
  config: WasmPluginConfig = {},
  runtimeConfig: RuntimeConfig = {},
): Promise<LoadedPlugin> {
  const runtime = inlineRuntime(runtimeConfig);
  try {
    const plugin = await runtime.createPluginFromWat(wat, config);
    return { runtime, plugin, [Symbol.asyncDispose]: () => runtime.close() };
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = abstract new (...args: any[]) => E;

/** The fields of an error a test may assert, checked with `deepStrictEqual`. */
export type Expected<E> = { readonly [K in keyof E]?: unknown };

function checkError<E extends Error>(err: unknown, type: ErrorClass<E>, expected: Expected<E>): E {
  assert.ok(
    err instanceof type,
    `expected ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : err}`,
  );
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual((err as unknown as Record<string, unknown>)[key], value, `error.${key}`);
  }
  return err;
}

/**
 * Asserts that `run` rejects (never throws synchronously) with an instance of
 * `type` whose fields equal `expected`; returns the error for more checks.
 */
export async function assertRejectsWith<E extends Error>(
  run: () => Promise<unknown>,
  type: ErrorClass<E>,
  expected: Expected<E> = {},
): Promise<E> {
  let promise: Promise<unknown>;
  try {
    promise = run();
  } catch (err) {
    assert.fail(`expected a rejected promise, the call threw synchronously: ${err}`);
  }
  try {
    await promise;
  } catch (err) {
    return checkError(err, type, expected);
  }
  assert.fail(`expected a rejection with ${type.name}, the call succeeded`);
}

/** Asserts that `run` throws an instance of `type` whose fields equal `expected`. */
export function assertThrowsWith<E extends Error>(
  run: () => unknown,
  type: ErrorClass<E>,
  expected: Expected<E> = {},
): E {
  try {
    run();
  } catch (err) {
    return checkError(err, type, expected);
  }
  assert.fail(`expected ${type.name} to be thrown, the call returned`);
}

const utf8 = new TextEncoder();

/** Encodes text as UTF-8. */
export function bytesOf(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Decodes UTF-8. */
export function textOf(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Writes `text` into the plugin's memory at `ptr`; returns `[ptr, byteLength]`. */
export async function putString(
  plugin: WasmPlugin,
  ptr: number,
  text: string,
): Promise<[ptr: number, len: number]> {
  const bytes = bytesOf(text);
  await plugin.writeMemory(ptr, bytes);
  return [ptr, bytes.length];
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The Deno executable running the tests, for tests that start a subprocess. */
export const DENO: string = Deno.execPath();

/** What a finished subprocess printed. */
export interface DenoOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `deno <args>` in the repository root and collects its output. */
export async function runDeno(args: readonly string[]): Promise<DenoOutput> {
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: [...args],
    cwd: new URL("..", import.meta.url),
    stdin: "null",
  }).output();
  return { code, stdout: textOf(stdout), stderr: textOf(stderr) };
}

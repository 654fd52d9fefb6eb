/**
 * Cases that make a new plugin: a mutated module through every way in, or a
 * known-good module with a drawn config; then every export called, bytes
 * and memory exercised, and the plugin stopped and called once more.
 *
 * @module
 */

import { Capability, type CompiledModule, type ModuleItem, type WasmPlugin } from "../../mod.ts";
import { randomProgram } from "../instrument/_random_program.ts";
import { mutateModule, mutateText, type Next, pick } from "./_mutate.ts";
import {
  bytesCall,
  type DrawnOperation,
  lifecycle,
  memoryAccess,
  runCommand,
  type Target,
  typedCall,
} from "./_operations.ts";
import { type Operation, show } from "./_property.ts";
import { type Run, runAll, runOne } from "./_run.ts";
import { hostileLinker, pluginConfig } from "./_configs.ts";

/** Wraps mutated bytes the way a caller might hand them over. */
function wrapBytes(bytes: Uint8Array, next: Next): Uint8Array | ArrayBuffer {
  const roll = next();
  if (roll < 0.6) return bytes;
  if (roll < 0.85) return bytes.slice().buffer;
  // A view into the middle of a larger buffer.
  const larger = new Uint8Array(bytes.length + 16);
  larger.set(bytes, 7);
  return larger.subarray(7, 7 + bytes.length);
}

/**
 * A mutated binary: mostly one that validates, so that a plugin gets
 * created and called (always in worker isolation, where that is the point).
 */
function mutatedBinary(run: Run): Uint8Array {
  const { next, binaries } = run;
  for (let attempt = 0;; attempt++) {
    const { bytes } = mutateModule(pick(binaries, next), pick(binaries, next), next);
    // Inline, half of the mutants are kept whatever they are; worker cases want a plugin to run.
    if ((run.isolation === "inline" && attempt === 0 && next() < 0.5) || attempt >= 8) return bytes;
    if (WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) return bytes;
  }
}

/** Mutated text: a seed, an example, or a generated program (kept as is half of the time). */
function mutatedText(run: Run): string {
  const { next } = run;
  if (next() < 0.25) {
    const program = randomProgram(next, 3).plain;
    return next() < 0.5 ? program : mutateText(program, next);
  }
  return mutateText(pick(run.texts, next), next);
}

/** A plugin just created from a fuzzed module, and how to stop it. */
interface Fresh {
  readonly target: Target;
  readonly stop: (abort: boolean) => Promise<void>;
}

/** Drawn config for a fresh plugin: mostly capabilities only, sometimes anything. */
function freshConfig(run: Run, linked: boolean): { config: unknown; jsInvalid: boolean } {
  const { next } = run;
  if (next() < 0.3) {
    const drawn = pluginConfig(next, run.paths);
    return { config: drawn.value, jsInvalid: drawn.jsInvalid };
  }
  const capabilities = Object.values(Capability).filter(() => next() < 0.3);
  if (linked && next() < 0.9) capabilities.push(Capability.CallHostFunction);
  return { config: { capabilities: [...new Set(capabilities)] }, jsInvalid: false };
}

/** Creates a plugin from a compiled module with a drawn config, maybe a hostile linker or the manager. */
async function createFresh(
  run: Run,
  compiled: CompiledModule,
  where: string,
): Promise<Fresh | undefined> {
  const { next, runtime, manager } = run;
  const roll = next();
  const linked = roll < 0.3;
  const { config, jsInvalid } = freshConfig(run, linked);
  if (roll < 0.8) {
    const linker = linked ? hostileLinker(compiled.imports, next) : undefined;
    const settled = await runOne(run, "create", {
      what: `${linked ? "createPluginWithLinker" : "createPlugin"}(${show(compiled.name)}, ${
        show(config)
      })`,
      run: () =>
        linker === undefined
          ? runtime.createPlugin(compiled, config as never)
          : runtime.createPluginWithLinker(compiled, config as never, linker),
      jsInvalid,
    }, where);
    if (!settled.ok) return undefined;
    const plugin = settled.value as WasmPlugin;
    return {
      target: { label: "fresh", plugin, exports: compiled.exports, writable: true },
      stop: (abort) => plugin.stop({ abort }),
    };
  }
  const settled = await runOne(run, "create", {
    what: `manager.loadCompiled(${show(compiled.name)}, ${show(config)})`,
    run: () => manager.loadCompiled(compiled, config as never),
    jsInvalid,
  }, where);
  if (!settled.ok) return undefined;
  const handle = settled.value as { id: string };
  return {
    target: {
      label: "fresh",
      plugin: manager.get(handle),
      exports: compiled.exports,
      writable: true,
      managed: { manager, handle },
    },
    stop: (abort) => manager.unload(handle, { abort }),
  };
}

/** Up to six calls of its exports (at once, half of the time in a worker), bytes, a command, memory. */
async function exercise(run: Run, target: Target, where: string): Promise<void> {
  const { next } = run;
  const operations: DrawnOperation[] = [];
  if (next() < 0.5) operations.push(lifecycle(target, next));
  const functionCount = target.exports.filter((item) => item.kind === "function").length;
  for (let i = 0; i < Math.min(functionCount, 6); i++) {
    operations.push(typedCall(target, next, next() < 0.8));
  }
  if (next() < 0.4) operations.push(bytesCall(target, next));
  if (target.exports.some((item) => item.name === "_start") && next() < 0.5) {
    operations.push(runCommand(target, next));
  }
  if (next() < 0.3) operations.push(memoryAccess(target, next));
  if (run.isolation === "worker" && next() < 0.5) {
    await runAll(run, operations, where);
  } else {
    for (const operation of operations) await runAll(run, [operation], where);
  }
}

/** Stops a fresh plugin (sometimes aborting a call in flight), then calls it once more. */
async function stopFresh(run: Run, fresh: Fresh, where: string): Promise<void> {
  const { next } = run;
  const stop: Operation = {
    what: `${fresh.target.label}: stop`,
    run: () => fresh.stop(false),
    jsInvalid: false,
  };
  if (next() < 0.15) {
    // A call in flight when the plugin is stopped with { abort: true }.
    const call = typedCall(fresh.target, next, true);
    await runAll(run, [call, {
      ...stop,
      stage: "stop",
      what: `${fresh.target.label}: stop({ abort: true })`,
      run: () => fresh.stop(true),
      dispose: () => {},
    }], where);
  } else {
    await runOne(run, "stop", stop, where);
  }
  if (next() < 0.3) await runAll(run, [typedCall(fresh.target, next, true)], where);
}

/** A mutated module through every way in, then created, exercised and stopped. */
export async function moduleCase(run: Run, index: number, where: string): Promise<void> {
  const { next, runtime, manager } = run;
  const name = `fuzz${index}`;
  const binary = next() < 0.5;
  const roll = next();
  let operation: Operation;
  let loaded: "compiled" | "plugin" | "handle";
  let source: string | Uint8Array | ArrayBuffer;
  if (binary) {
    const bytes = wrapBytes(mutatedBinary(run), next);
    source = bytes;
    const kind = bytes instanceof ArrayBuffer ? "ArrayBuffer" : "Uint8Array";
    loaded = roll < 0.8 ? "compiled" : "handle";
    operation = loaded === "compiled"
      ? {
        what: `compile(${kind} of ${bytes.byteLength} bytes)`,
        run: () => runtime.compile(name, bytes),
        jsInvalid: false,
      }
      : {
        what: `manager.load(${kind} of ${bytes.byteLength} bytes)`,
        run: () => manager.load(bytes, { name }),
        jsInvalid: false,
      };
  } else {
    const text = mutatedText(run);
    source = text;
    loaded = roll < 0.7 ? "compiled" : roll < 0.85 ? "plugin" : "handle";
    const what = `${
      { compiled: "compileWat", plugin: "createPluginFromWat", handle: "manager.loadWat" }[loaded]
    }(${show(text.slice(0, 60))})`;
    operation = {
      what,
      run: () =>
        loaded === "compiled"
          ? runtime.compileWat(name, text)
          : loaded === "plugin"
          ? runtime.createPluginFromWat(text, { name })
          : manager.loadWat(text, { name }),
      jsInvalid: false,
    };
  }
  const settled = await runOne(run, binary ? "compile binary" : "compile text", operation, where);
  if (!settled.ok) return;
  let fresh: Fresh | undefined;
  if (loaded === "compiled") {
    fresh = await createFresh(run, settled.value as CompiledModule, where);
  } else if (loaded === "plugin") {
    const plugin = settled.value as WasmPlugin;
    fresh = {
      target: { label: "fresh", plugin, exports: await exportsOf(run, source), writable: true },
      stop: (abort) => plugin.stop({ abort }),
    };
  } else {
    const handle = settled.value as { id: string };
    const plugin = manager.get(handle);
    fresh = {
      target: {
        label: "fresh",
        plugin,
        exports: await exportsOf(run, source),
        writable: true,
        managed: { manager, handle },
      },
      stop: (abort) => manager.unload(handle, { abort }),
    };
  }
  if (fresh === undefined) return;
  try {
    await exercise(run, fresh.target, where);
  } finally {
    await stopFresh(run, fresh, where);
  }
}

/**
 * The exports of a module that was loaded in one step: compiling it again
 * (a cache hit for bytes) gives its `CompiledModule`.
 */
async function exportsOf(
  run: Run,
  source: string | Uint8Array | ArrayBuffer,
): Promise<readonly ModuleItem[]> {
  const compiled = typeof source === "string"
    ? await run.runtime.compileWat("again", source)
    : await run.runtime.compile("again", source);
  return compiled.exports;
}

/** A known-good module created with a drawn plugin config, then exercised and stopped. */
export async function configCase(run: Run, where: string): Promise<void> {
  const { next } = run;
  const compiled = pick(run.known, next);
  const drawn = pluginConfig(next, run.paths);
  const settled = await runOne(run, "config", {
    what: `createPlugin(${show(compiled.name)}, ${show(drawn.value)})`,
    run: () => run.runtime.createPlugin(compiled, drawn.value),
    jsInvalid: drawn.jsInvalid,
  }, where);
  if (!settled.ok) return;
  const plugin = settled.value as WasmPlugin;
  const fresh: Fresh = {
    target: { label: "configured", plugin, exports: compiled.exports, writable: true },
    stop: (abort) => plugin.stop({ abort }),
  };
  try {
    await exercise(run, fresh.target, where);
  } finally {
    await stopFresh(run, fresh, where);
  }
}

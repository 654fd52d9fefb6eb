import assert from "node:assert/strict";
import { BinaryFormatError } from "../../src/instrument/_bytes.ts";
import { clampLimits, type StorageLimits } from "../../src/instrument/_limits.ts";
import { parseModule } from "../../src/instrument/_module.ts";

const SUITE = new URL("../../../shared/spec-testsuite/", import.meta.url);

function suiteExists(): boolean {
  try {
    return Deno.statSync(SUITE).isDirectory;
  } catch {
    return false;
  }
}

interface SuiteModule {
  readonly path: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Whether the suite's command says the module is valid (`module`), as opposed to an assertion. */
  readonly specValid: boolean;
  readonly v8Valid: boolean;
}

interface Command {
  readonly type: string;
  readonly filename?: string;
}

function loadSuite(): SuiteModule[] {
  const modules: SuiteModule[] = [];
  for (const entry of Deno.readDirSync(SUITE)) {
    if (!entry.isDirectory) continue;
    const folder = new URL(`${entry.name}/`, SUITE);
    const validFiles = specValidFiles(new URL(`${entry.name}.json`, folder));
    for (const file of Deno.readDirSync(folder)) {
      if (!file.name.endsWith(".wasm")) continue;
      const bytes = Deno.readFileSync(new URL(file.name, folder));
      modules.push({
        path: `${entry.name}/${file.name}`,
        bytes,
        specValid: validFiles.has(file.name),
        v8Valid: WebAssembly.validate(bytes),
      });
    }
  }
  return modules;
}

function specValidFiles(commandsFile: URL): Set<string> {
  const { commands } = JSON.parse(Deno.readTextFileSync(commandsFile)) as { commands: Command[] };
  const files = new Set<string>();
  for (const command of commands) {
    if (command.type === "module" && command.filename !== undefined) files.add(command.filename);
  }
  return files;
}

interface ClampOutcome {
  readonly changed: boolean;
  /** Whether clamping kept the module's validity. The only allowed change: a spec-valid
   * module that V8 rejects for its own size caps (memory64 maximums above 2^18 pages)
   * becomes loadable once its maximum is clamped. */
  readonly sameValidity: boolean;
}

function clampOutcome(module: SuiteModule, limits: StorageLimits): ClampOutcome {
  let result;
  try {
    result = clampLimits(module.bytes, limits);
  } catch (error) {
    assert.ok(error instanceof BinaryFormatError, `${module.path}: ${error}`);
    return { changed: false, sameValidity: !module.v8Valid };
  }
  const valid = WebAssembly.validate(result.bytes);
  const sameValidity = valid === module.v8Valid || (valid && module.specValid);
  return { changed: result.changed, sameValidity };
}

Deno.test({
  name: "parseModule() and clampLimits() agree with V8 on the spec testsuite",
  ignore: !suiteExists(),
  fn: async (t) => {
    const modules = loadSuite();
    const valid = modules.filter((module) => module.v8Valid);
    assert.ok(valid.length > 1000, `only ${valid.length} valid modules found`);

    await t.step("every module V8 validates parses", () => {
      for (const module of valid) {
        try {
          parseModule(module.bytes);
        } catch (error) {
          assert.fail(`${module.path}: ${error}`);
        }
      }
    });
    await t.step("parse failures are BinaryFormatErrors", () => {
      for (const module of modules) {
        if (module.v8Valid) continue;
        try {
          parseModule(module.bytes);
        } catch (error) {
          assert.ok(error instanceof BinaryFormatError, `${module.path}: ${error}`);
        }
      }
    });
    const limitSets: [string, StorageLimits][] = [
      ["generous", { maxMemoryPages: 65536, maxTableElements: 2 ** 32 - 1 }],
      ["tight", { maxMemoryPages: 1, maxTableElements: 3 }],
      ["zero", { maxMemoryPages: 0, maxTableElements: 0 }],
    ];
    for (const [label, limits] of limitSets) {
      await t.step(`clamped modules validate the same way with ${label} limits`, () => {
        const differ: string[] = [];
        let changed = 0;
        for (const module of modules) {
          const outcome = clampOutcome(module, limits);
          if (!outcome.sameValidity) differ.push(module.path);
          if (outcome.changed) changed++;
        }
        assert.deepEqual(differ, []);
        assert.ok(changed > 300, `only ${changed} modules were rewritten`);
      });
    }
  },
});

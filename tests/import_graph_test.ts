/**
 * The module graph of the library, as `deno info --json` reports it: no
 * import cycles, type-only ones included, and folders as modules: a file
 * whose name starts with `_` is imported only from its own folder, so every
 * folder under `src/` is reached through its `mod.ts` or its public files.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).href;

/** The library's own modules and what each imports (code or types), by path from the root. */
async function importGraph(entry: string): Promise<Map<string, Set<string>>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL(ROOT).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
    }[];
  };
  const graph = new Map<string, Set<string>>();
  for (const module of info.modules) {
    if (!module.specifier.startsWith(ROOT)) continue;
    const imports = new Set<string>();
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
        if (target?.startsWith(ROOT)) imports.add(target.slice(ROOT.length));
      }
    }
    graph.set(module.specifier.slice(ROOT.length), imports);
  }
  return graph;
}

/** One cycle of `graph` as a path that ends where it starts, or `undefined`. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (module: string): string[] | undefined => {
    if (onPath.has(module)) return [...path.slice(path.indexOf(module)), module];
    if (done.has(module)) return undefined;
    path.push(module);
    onPath.add(module);
    for (const next of graph.get(module) ?? []) {
      const cycle = visit(next);
      if (cycle !== undefined) return cycle;
    }
    path.pop();
    onPath.delete(module);
    done.add(module);
    return undefined;
  };
  for (const module of graph.keys()) {
    const cycle = visit(module);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

Deno.test("findCycle() finds a cycle, and only a cycle", () => {
  const graph = (edges: [string, string][]) => {
    const map = new Map<string, Set<string>>();
    for (const [from, to] of edges) map.set(from, (map.get(from) ?? new Set()).add(to));
    return map;
  };
  assert.equal(findCycle(graph([["a", "b"], ["b", "c"], ["a", "c"]])), undefined);
  assert.deepEqual(findCycle(graph([["a", "b"], ["b", "c"], ["c", "b"]])), ["b", "c", "b"]);
});

for (const entry of ["mod.ts", "cli.ts", "testing.ts", "src/worker/_worker_main.ts"]) {
  Deno.test(`${entry} imports no module that imports it back, even for types`, async () => {
    const graph = await importGraph(entry);
    assert.ok(graph.size > 1, `deno info found the graph of ${entry}`);
    const cycle = findCycle(graph);
    assert.equal(cycle, undefined, `import cycle: ${cycle?.join(" → ")}`);
  });
}

/** The imports in `graph` that reach another folder's `_` file, as `from → to`. */
function crossFolderInternalImports(graph: Map<string, Set<string>>): string[] {
  const folder = (path: string) => path.slice(0, path.lastIndexOf("/") + 1);
  const isInternal = (path: string) => path.slice(path.lastIndexOf("/") + 1).startsWith("_");
  const found: string[] = [];
  for (const [from, imports] of graph) {
    for (const to of imports) {
      if (isInternal(to) && folder(to) !== folder(from)) found.push(`${from} → ${to}`);
    }
  }
  return found;
}

Deno.test("crossFolderInternalImports() reports only another folder's _ files", () => {
  const graph = new Map([
    ["src/a.ts", new Set(["src/_b.ts", "src/host/mod.ts", "src/host/_env.ts"])],
    ["src/host/mod.ts", new Set(["src/host/_env.ts", "src/errors.ts", "src/_format.ts"])],
  ]);
  assert.deepEqual(crossFolderInternalImports(graph), [
    "src/a.ts → src/host/_env.ts",
    "src/host/mod.ts → src/_format.ts",
  ]);
});

for (const entry of ["mod.ts", "cli.ts", "testing.ts", "src/worker/_worker_main.ts"]) {
  Deno.test(`${entry} reaches other folders' internal files only through their mod.ts`, async () => {
    const graph = await importGraph(entry);
    assert.deepEqual(crossFolderInternalImports(graph), []);
  });
}

Deno.test("every folder under src/ has an entry module", async () => {
  const missing: string[] = [];
  for await (const item of Deno.readDir(new URL("src/", ROOT))) {
    if (!item.isDirectory) continue;
    try {
      await Deno.stat(new URL(`src/${item.name}/mod.ts`, ROOT));
    } catch {
      missing.push(`src/${item.name}/mod.ts`);
    }
  }
  assert.deepEqual(missing, []);
});

/**
 * Every relative link of the README and the repository's docs points to a
 * file of the repository.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("README.md, SECURITY.md and docs/ link only to files that exist", async () => {
  for (const doc of ["README.md", "SECURITY.md", "ARCHITECTURE.md", "docs/ABI.md"]) {
    const text = await Deno.readTextFile(new URL(doc, root));
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // an absolute URL
      const file = new URL(target!, new URL(doc, root));
      assert.ok(
        (await Deno.stat(file).catch(() => null)) !== null,
        `${doc} links to ${target}, which does not exist`,
      );
    }
  }
});

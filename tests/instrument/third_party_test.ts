import assert from "node:assert/strict";
import { RUN_SLOW, SLOW } from "../_helpers.ts";
import { runWorkloadProcess } from "../fixtures/third_party/_run_process.ts";
import { WORKLOADS } from "../fixtures/third_party/_workloads.ts";

// Packages from npm that ship WebAssembly (Rust and C, built with wasm-bindgen and
// emscripten), each driven by its own glue code: instrumented as plugins' modules are,
// they compute what their plain bytes compute, and consume the same fuel every time.
for (const name of Object.keys(WORKLOADS)) {
  Deno.test({
    name: `${SLOW}instrumented third-party code computes what its plain bytes do: ${name}`,
    ignore: !RUN_SLOW,
    async fn() {
      const once = { runs: 1, warmUpMs: 0 };
      const plain = await runWorkloadProcess(name, { instrumented: false, ...once });
      const first = await runWorkloadProcess(name, { instrumented: true, ...once });
      const second = await runWorkloadProcess(name, { instrumented: true, ...once });

      assert.equal(plain.modules, 0);
      assert.ok(first.modules > 0, "its modules were instrumented");
      assert.equal(first.result, plain.result);
      assert.equal(second.result, plain.result);
      assert.ok(first.fuel > 0);
      assert.equal(second.fuel, first.fuel, "the same work consumes the same fuel");
    },
  });
}

/**
 * `instrumentSteps` instruments a module in steps, so that the runtime can
 * give the event loop its turns between them (`src/compile/_artifact.ts`): a
 * megabyte of small functions held the host's thread for a second at once.
 */
import assert from "node:assert/strict";
import { instrument, instrumentSteps } from "../../src/instrument/instrument.ts";
import { wat } from "./_wasm.ts";

/** A module of `count` functions, each calling the one before it. */
function manyFunctions(count: number): Uint8Array<ArrayBuffer> {
  const funcs = Array.from(
    { length: count },
    (_, i) => `(func $f${i} (result i32) ${i === 0 ? "i32.const 1" : `call $f${i - 1}`})`,
  );
  return wat(`(module ${funcs.join("\n")} (export "last" (func $f${count - 1})))`);
}

Deno.test("instrumentSteps() yields between runs of bodies and gives what instrument() gives", () => {
  const bytes = manyFunctions(5000);
  for (
    const options of [
      { fuel: true, callDepth: true, deadline: "clock" as const },
      { callDepth: true },
      { deadline: "clock" as const },
    ]
  ) {
    const steps = instrumentSteps(bytes, options);
    let yields = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) yields++;
    // Each pass over 5 000 bodies yields about five times; with fuel there are three.
    assert.ok(yields >= 8, `${yields} yields with ${JSON.stringify(options)}`);
    assert.deepEqual(step.value, instrument(bytes, options));
  }
});

Deno.test("instrumentSteps() throws what instrument() throws", () => {
  const bytes = wat('(module (func (export "__wasmplug_x")))');
  assert.throws(() => instrument(bytes, { fuel: true }), TypeError);
  assert.throws(() => [...instrumentSteps(bytes, { fuel: true })], TypeError);
});

/**
 * The fuzzers' property itself: what it lets through and what it reports,
 * so that a fuzzing run that passes means something.
 */
import assert from "node:assert/strict";
import { TrapError } from "../../mod.ts";
import {
  type Operation,
  PropertyViolation,
  settle,
  Tally,
  UncaughtWatch,
  watchdog,
} from "./_property.ts";

function operation(run: () => unknown, extra: Partial<Operation> = {}): Operation {
  return { what: "the operation", run, jsInvalid: false, ...extra };
}

Deno.test("settle() lets results, WasmErrors and the caller's abort reason through", {
  permissions: "none",
}, async (t) => {
  await t.step("a result is labelled returned", async () => {
    const settled = await settle(operation(() => Promise.resolve(5)), "case 0");
    assert.deepEqual(settled, { ok: true, value: 5, label: "returned" });
  });
  await t.step("a WasmError is labelled with its kind", async () => {
    const trap = new TrapError(undefined, { trap: "boom" });
    const settled = await settle(operation(() => Promise.reject(trap)), "case 0");
    assert.equal(settled.label, "trap");
  });
  await t.step("the reason of the signal the call was given is labelled aborted", async () => {
    const signal = AbortSignal.abort(42);
    const settled = await settle(operation(() => Promise.reject(42), { signal }), "case 0");
    assert.equal(settled.label, "aborted");
  });
  await t.step("a TypeError or RangeError passes for a JS-level invalid argument", async () => {
    const type = await settle(
      operation(() => Promise.reject(new TypeError("bad")), { jsInvalid: true }),
      "case 0",
    );
    assert.equal(type.label, "TypeError");
    const range = await settle(
      operation(() => Promise.reject(new RangeError("bad")), { jsInvalid: true }),
      "case 0",
    );
    assert.equal(range.label, "RangeError");
  });
  await t.step("a synchronous API may throw", async () => {
    const settled = await settle(
      operation(() => {
        throw new TypeError("bad");
      }, { jsInvalid: true, synchronous: true }),
      "case 0",
    );
    assert.equal(settled.label, "TypeError");
  });
});

Deno.test("settle() reports every other outcome as a violation naming the case", {
  permissions: "none",
}, async (t) => {
  const violations: [string, Operation][] = [
    ["a TypeError for valid arguments", operation(() => Promise.reject(new TypeError("bad")))],
    ["a plain Error", operation(() => Promise.reject(new Error("x")), { jsInvalid: true })],
    ["a thrown string", operation(() => Promise.reject("x"), { jsInvalid: true })],
    [
      "another reason than the signal's",
      operation(() => Promise.reject(1), { signal: AbortSignal.abort(2) }),
    ],
    [
      "a promise-returning API that throws synchronously",
      operation(() => {
        throw new TypeError("sync");
      }, { jsInvalid: true }),
    ],
  ];
  for (const [what, op] of violations) {
    await t.step(what, async () => {
      await assert.rejects(settle(op, "case 7 (seed 1)"), (error: unknown) => {
        assert.ok(error instanceof PropertyViolation);
        assert.match(error.message, /^case 7 \(seed 1\): the operation /);
        return true;
      });
    });
  }
});

Deno.test("watchdog() fails a case that does not settle in time, naming it", {
  permissions: "none",
}, async () => {
  let release = (): void => {};
  const never = new Promise<void>((resolve) => release = resolve);
  await assert.rejects(watchdog(never, 10, "case 3"), /case 3: did not settle within 10 ms/);
  release();
  assert.equal(await watchdog(Promise.resolve(1), 1000, "case 4"), 1);
});

Deno.test("UncaughtWatch reports an unhandled rejection with the case it happened in", {
  permissions: "none",
}, async () => {
  using watch = new UncaughtWatch();
  watch.enter("case 9");
  watch.check();
  void Promise.reject(new Error("nobody handles this"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.throws(() => watch.check(), /during or after case 9: an unhandled rejection/);
});

Deno.test(
  "Tally counts outcomes by stage and names those never reached",
  { permissions: "none" },
  () => {
    const tally = new Tally();
    tally.add("call", "returned");
    tally.add("call", "returned");
    tally.add("call", "trap");
    assert.equal(tally.count("call"), 3);
    assert.equal(tally.count("call", "returned"), 2);
    assert.deepEqual(tally.missing({ call: ["trap", "timeout"], memory: ["returned"] }), [
      "call: timeout",
      "memory: returned",
    ]);
    assert.equal(tally.toString(), "call: returned 2, trap 1");
  },
);

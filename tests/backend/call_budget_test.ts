import assert from "node:assert/strict";
import {
  type CallBudget,
  CallWatch,
  type PluginBudget,
  resolveCallBudget,
} from "../../src/backend/_call_budget.ts";
import { TimeoutError } from "../../src/errors.ts";

const stop = new AbortController();
const PLUGIN: PluginBudget = {
  budget: Object.freeze({ timeoutMs: 1_000, fuel: 500, signal: stop.signal }),
  fuelMetered: true,
};

Deno.test("resolveCallBudget() narrows the plugin's budget with the call's options", async (t) => {
  await t.step("without options, the call gets the plugin's own budget object", () => {
    assert.equal(resolveCallBudget(undefined, PLUGIN), PLUGIN.budget);
  });

  await t.step("options narrow the time and fuel; unset ones keep the plugin's", () => {
    const budget = resolveCallBudget({ timeoutMs: 10 }, PLUGIN);
    assert.deepEqual({ ...budget }, { timeoutMs: 10, fuel: 500, signal: stop.signal });
    assert.equal(resolveCallBudget({ fuel: 7 }, PLUGIN).fuel, 7);
  });

  await t.step("the call's signal is joined to the plugin's: either aborts the call", () => {
    const call = new AbortController();
    const { signal } = resolveCallBudget({ signal: call.signal }, PLUGIN);
    assert.ok(signal !== call.signal && signal !== stop.signal);
    call.abort("mine");
    assert.equal(signal!.reason, "mine");
  });

  await t.step("a call may not widen a budget", () => {
    assert.throws(() => resolveCallBudget({ timeoutMs: 1_001 }, PLUGIN), {
      name: "RangeError",
      message:
        "Cannot call with 'timeoutMs' = 1001: it is above the plugin's maxExecutionTimeMs of 1000",
    });
    assert.throws(() => resolveCallBudget({ fuel: 501 }, PLUGIN), {
      name: "RangeError",
      message: "Cannot call with 'fuel' = 501: it is above the plugin's maxFuel of 500",
    });
  });

  await t.step("nor ask for fuel when fuel is not metered", () => {
    assert.throws(() => resolveCallBudget({ fuel: 1 }, { ...PLUGIN, fuelMetered: false }), {
      name: "RangeError",
      message:
        "Cannot call with 'fuel' = 1: the runtime does not meter fuel (execution.fuelMetering is false)",
    });
  });

  await t.step("malformed options are refused, naming what was wrong", () => {
    assert.throws(() => resolveCallBudget(5 as never, PLUGIN), {
      name: "TypeError",
      message:
        "Cannot call with options number 5: expected an object { signal?, timeoutMs?, fuel? }",
    });
    assert.throws(() => resolveCallBudget({ timeout: 5 } as never, PLUGIN), TypeError);
    assert.throws(() => resolveCallBudget({ signal: "no" } as never, PLUGIN), {
      name: "TypeError",
      message: `Cannot call with 'signal' = string "no": expected an AbortSignal`,
    });
    assert.throws(() => resolveCallBudget({ timeoutMs: 0 }, PLUGIN), {
      name: "RangeError",
      message: "Cannot call with 'timeoutMs' = 0: it must be a positive number",
    });
    assert.throws(() => resolveCallBudget({ fuel: 1.5 }, PLUGIN), {
      name: "RangeError",
      message: "Cannot call with 'fuel' = 1.5: it must be a positive integer",
    });
  });

  await t.step("a budget that is not a number is a TypeError naming what it is", () => {
    const wrong: [string, unknown, string][] = [
      ["timeoutMs", 5n, "bigint 5n"],
      ["timeoutMs", "5", 'string "5"'],
      ["timeoutMs", Symbol("s"), "a symbol"],
      ["fuel", Object.create(null), "an object"],
      ["fuel", new Uint8Array(1), "a Uint8Array"],
      ["fuel", null, "null"],
    ];
    for (const [name, value, described] of wrong) {
      assert.throws(() => resolveCallBudget({ [name]: value } as never, PLUGIN), {
        name: "TypeError",
        message: `Cannot call with '${name}': expected a number, received ${described}`,
      });
    }
  });
});

/** A budget with a signal the test aborts. */
function budgetWith(timeoutMs: number): { budget: CallBudget; controller: AbortController } {
  const controller = new AbortController();
  return { budget: { timeoutMs, fuel: null, signal: controller.signal }, controller };
}

Deno.test("CallWatch stops a call once, at its deadline or when aborted", async (t) => {
  await t.step("the deadline's timer stops it with a TimeoutError", async () => {
    const { budget } = budgetWith(5);
    const { promise, resolve } = Promise.withResolvers<unknown>();
    const watch = new CallWatch(budget, { deadline: performance.now() + 5, onStop: resolve });
    const reason = await promise;
    assert.ok(reason instanceof TimeoutError);
    assert.equal(reason.timeoutMs, 5);
    assert.equal(watch.stopped, true);
    watch[Symbol.dispose]();
  });

  await t.step("aborting stops it with the signal's reason, and only once", () => {
    const { budget, controller } = budgetWith(1_000);
    const reasons: unknown[] = [];
    using watch = new CallWatch(budget, {
      deadline: performance.now() + 1_000,
      onStop: (reason) => reasons.push(reason),
    });
    controller.abort("enough");
    watch.expire();
    assert.deepEqual(reasons, ["enough"]);
  });

  await t.step("a signal aborted already stops it from the constructor", () => {
    const { budget, controller } = budgetWith(1_000);
    controller.abort("before");
    const reasons: unknown[] = [];
    using watch = new CallWatch(budget, {
      deadline: performance.now() + 1_000,
      onStop: (reason) => reasons.push(reason),
    });
    assert.deepEqual(reasons, ["before"]);
    assert.equal(watch.stopped, true);
  });

  await t.step("disposed, it clears its timer and listener: nothing fires later", async () => {
    const { budget, controller } = budgetWith(5);
    const reasons: unknown[] = [];
    {
      using _watch = new CallWatch(budget, {
        deadline: performance.now() + 5,
        onStop: (reason) => reasons.push(reason),
      });
    }
    controller.abort("late");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(reasons, []);
    // The test's sanitizers also fail it if a timer were left behind.
  });

  await t.step("without a timer, expire() is the deadline (a caller that waits itself)", () => {
    const { budget } = budgetWith(5);
    const reasons: unknown[] = [];
    using watch = new CallWatch(budget, {
      deadline: performance.now() + 5,
      timer: false,
      onStop: (reason) => reasons.push(reason),
    });
    assert.equal(watch.deadline > 0, true);
    watch.expire();
    watch.expire();
    assert.equal(reasons.length, 1);
    assert.ok(reasons[0] instanceof TimeoutError);
  });

  await t.step("no deadline (Infinity) and no signal: it never stops the call", async () => {
    const reasons: unknown[] = [];
    using _watch = new CallWatch({ timeoutMs: Infinity, fuel: null, signal: undefined }, {
      deadline: Infinity,
      onStop: (reason) => reasons.push(reason),
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(reasons, []);
  });

  await t.step("a deadline past the longest timer does not fire at once", async () => {
    const reasons: unknown[] = [];
    const timeoutMs = 2 ** 32;
    using _watch = new CallWatch({ timeoutMs, fuel: null, signal: undefined }, {
      deadline: performance.now() + timeoutMs,
      onStop: (reason) => reasons.push(reason),
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(reasons, []);
  });
});

import assert from "node:assert/strict";
import {
  DEFAULT_LIMITS,
  FuelExhaustedError,
  OutOfMemoryError,
  ResourceLimitError,
  type ResourceLimits,
  RESTRICTIVE_LIMITS,
  TimeoutError,
  UNLIMITED_LIMITS,
} from "../mod.ts";
import { resolveLimits } from "../src/compile/_limit_overrides.ts";
import {
  assertRejectsWith,
  assertThrowsWith,
  inlineRuntime,
  testEachIsolation,
} from "./_helpers.ts";
import { CALLS_WAT, growableWat, LOOPS_WAT } from "./fixtures/wat.ts";

const PAGE = 65_536;

type Overrides = Record<string, unknown>;

/** `resolveLimits()` on the defaults, with input the types would not allow. */
function resolveUnchecked(overrides: unknown): Readonly<ResourceLimits> {
  return resolveLimits(DEFAULT_LIMITS, overrides as Partial<ResourceLimits>);
}

Deno.test("ResourceLimits presets have the documented values", {
  permissions: "none",
}, async (t) => {
  await t.step("DEFAULT_LIMITS", () => {
    assert.deepEqual({ ...DEFAULT_LIMITS }, {
      maxMemoryPages: 256,
      maxTableElements: 10_000,
      maxInstances: 10,
      maxExecutionTimeMs: 30_000,
      maxFuel: 100_000_000,
      maxCallDepth: 1000,
      maxStorageBytes: 16 * 1024 * 1024,
    });
  });
  await t.step("RESTRICTIVE_LIMITS", () => {
    assert.deepEqual({ ...RESTRICTIVE_LIMITS }, {
      maxMemoryPages: 16,
      maxTableElements: 1_000,
      maxInstances: 1,
      maxExecutionTimeMs: 5_000,
      maxFuel: 10_000_000,
      maxCallDepth: 100,
      maxStorageBytes: 1024 * 1024,
    });
  });
  await t.step("UNLIMITED_LIMITS leaves fuel unmetered", () => {
    assert.equal(UNLIMITED_LIMITS.maxFuel, null);
    assert.equal(UNLIMITED_LIMITS.maxMemoryPages, 65_536);
    assert.equal(UNLIMITED_LIMITS.maxInstances, Infinity);
  });
  await t.step("presets are frozen", () => {
    for (const preset of [DEFAULT_LIMITS, RESTRICTIVE_LIMITS, UNLIMITED_LIMITS]) {
      assert.ok(Object.isFrozen(preset));
    }
  });
});

Deno.test("resolveLimits() overlays partial limits on a base", {
  permissions: "none",
}, async (t) => {
  await t.step("given fields replace the base, the rest is kept", () => {
    const limits = resolveLimits(DEFAULT_LIMITS, { maxCallDepth: 100, maxFuel: null });
    assert.deepEqual({ ...limits }, { ...DEFAULT_LIMITS, maxCallDepth: 100, maxFuel: null });
    assert.ok(Object.isFrozen(limits));
  });
  await t.step("undefined overrides and undefined fields are ignored", () => {
    assert.equal(resolveLimits(DEFAULT_LIMITS, undefined), DEFAULT_LIMITS);
    assert.deepEqual(
      { ...resolveUnchecked({ maxMemoryPages: undefined }) },
      { ...DEFAULT_LIMITS },
    );
  });
  await t.step("the maximum values are accepted", () => {
    const limits = resolveLimits(DEFAULT_LIMITS, {
      maxMemoryPages: 65_536,
      maxTableElements: 0xffff_ffff,
      maxInstances: Infinity,
      maxExecutionTimeMs: Infinity,
      maxCallDepth: Infinity,
      maxFuel: Number.MAX_SAFE_INTEGER,
    });
    assert.equal(limits.maxFuel, Number.MAX_SAFE_INTEGER);
  });
});

const RANGE_ERRORS: readonly [Overrides, RegExp][] = [
  [{ maxMemoryPages: 0 }, /'maxMemoryPages'.*positive integer, current value is 0/],
  [{ maxMemoryPages: -1 }, /'maxMemoryPages'.*positive integer, current value is -1/],
  [{ maxMemoryPages: 1.5 }, /'maxMemoryPages'.*positive integer, current value is 1\.5/],
  [{ maxMemoryPages: 65_537 }, /'maxMemoryPages'.*at most 65536, current value is 65537/],
  [{ maxMemoryPages: Infinity }, /'maxMemoryPages'.*positive integer, current value is Infinity/],
  [{ maxTableElements: 2 ** 32 }, /'maxTableElements'.*at most 4294967295/],
  [{ maxInstances: 0 }, /'maxInstances'.*positive integer, current value is 0/],
  [{ maxExecutionTimeMs: -5 }, /'maxExecutionTimeMs'.*current value is -5/],
  [{ maxFuel: 0 }, /'maxFuel'.*current value is 0/],
  [{ maxFuel: 2 ** 60 }, /'maxFuel'.*at most 9007199254740991 or null/],
  [{ maxCallDepth: -Infinity }, /'maxCallDepth'.*current value is -Infinity/],
  // The guest counts its depth in an i32: a larger finite limit would wrap around.
  [{ maxCallDepth: 2 ** 32 + 1 }, /'maxCallDepth'.*at most 2147483647 or Infinity/],
  [{ maxCallDepth: 2 ** 31 }, /'maxCallDepth'.*at most 2147483647 or Infinity/],
];

const TYPE_ERRORS: readonly [unknown, RegExp][] = [
  [{ maxMemoryPages: "16" }, /'maxMemoryPages'.*expected a number, received string "16"/],
  [{ maxMemoryPages: NaN }, /'maxMemoryPages'.*expected a number, received number NaN/],
  [{ maxCallDepth: null }, /'maxCallDepth'.*expected a number, received null/],
  [{ maxFuel: "lots" }, /'maxFuel'.*expected a number or null/],
  [
    { maxMemory: 16 },
    /unknown key 'maxMemory' \(did you mean 'maxMemoryPages'\?\); expected one of maxMemoryPages, /,
  ],
  [42, /expected an object, received number 42/],
  [null, /expected an object, received null/],
];

Deno.test("resolveLimits() rejects limits out of range with clear messages", {
  permissions: "none",
}, async (t) => {
  const cases = [
    ...RANGE_ERRORS.map(([overrides, message]) => [RangeError, overrides, message] as const),
    ...TYPE_ERRORS.map(([overrides, message]) => [TypeError, overrides, message] as const),
  ];
  for (const [type, overrides, message] of cases) {
    await t.step(`${type.name} for ${Deno.inspect(overrides)}`, () => {
      const error = assertThrowsWith(() => resolveUnchecked(overrides), type);
      assert.match(error.message, message);
    });
  }
  await t.step("the runtime constructor and the plugin config validate the same way", async () => {
    assert.throws(() => inlineRuntime({ resourceLimits: { maxMemoryPages: 0 } }), RangeError);
    await using runtime = inlineRuntime();
    await assertRejectsWith(
      () =>
        runtime.createPluginFromWat("(module)", {
          resourceLimits: { maxTableElements: -1 },
        }),
      RangeError,
    );
    await assertRejectsWith(
      () =>
        runtime.createPluginFromWat("(module)", {
          resourceLimits: { bogus: 1 } as unknown as Partial<ResourceLimits>,
        }),
      TypeError,
    );
  });
});

testEachIsolation("ResourceLimits.maxInstances bounds the live plugins of a runtime", {
  permissions: "none",
}, async (t, { createRuntime }) => {
  await using runtime = createRuntime({ resourceLimits: { maxInstances: 2 } });
  const compiled = await runtime.compileWat("calls", CALLS_WAT);
  const first = await runtime.createPlugin(compiled);
  await using _second = await runtime.createPlugin(compiled);

  await t.step("one more plugin is a ResourceLimitError", async () => {
    const error = await assertRejectsWith(
      () => runtime.createPlugin(compiled, { name: "third" }),
      ResourceLimitError,
      { kind: "resource_limit", limit: "maxInstances" },
    );
    assert.match(error.message, /Cannot create plugin "third": 2 instances are alive/);
    assert.equal(runtime.pluginCount, 2);
  });

  await t.step("stopping a plugin frees its slot", async () => {
    await first.stop();
    assert.equal(runtime.pluginCount, 1);
    await using third = await runtime.createPlugin(compiled, { name: "third" });
    assert.equal(await third.callI32("add", [1, 2]), 3);
  });

  await t.step("plugins created concurrently cannot overshoot the limit", async () => {
    const results = await Promise.allSettled([
      runtime.createPlugin(compiled),
      runtime.createPlugin(compiled),
    ]);
    const created = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    const rejected = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    assert.equal(created.length, 1);
    assert.ok(rejected[0] instanceof ResourceLimitError);
    for (const plugin of created) await plugin.stop();
  });
});

testEachIsolation("ResourceLimits.maxMemoryPages is enforced on load and on growth", {
  permissions: "none",
}, async (t, { createRuntime, loadPlugin }) => {
  await t.step(
    "a declared minimum over the limit fails to load with OutOfMemoryError",
    async () => {
      await using runtime = createRuntime({ resourceLimits: { maxMemoryPages: 4 } });
      const error = await assertRejectsWith(
        () => runtime.createPluginFromWat(growableWat({ min: 5 })),
        OutOfMemoryError,
        { kind: "out_of_memory" },
      );
      assert.match(error.message, /needs at least 5 pages, above the limit maxMemoryPages = 4/);
      assert.equal(runtime.pluginCount, 0);
    },
  );

  await t.step(
    "a declared maximum above the limit is clamped: memory.grow returns -1",
    async () => {
      await using loaded = await loadPlugin(growableWat({ max: 100 }), {}, {
        resourceLimits: { maxMemoryPages: 3 },
      });
      const { plugin } = loaded;
      assert.equal(await plugin.callI32("grow", [2]), 1);
      assert.equal(await plugin.callI32("grow", [1]), -1);
      assert.equal(await plugin.callI32("size"), 3);
      assert.equal((await plugin.metrics()).currentMemoryBytes, 3 * PAGE);
    },
  );

  await t.step("a memory without a declared maximum is clamped too", async () => {
    await using loaded = await loadPlugin(growableWat(), {}, {
      resourceLimits: { maxMemoryPages: 2 },
    });
    assert.equal(await loaded.plugin.callI32("grow", [2]), -1);
    assert.equal(await loaded.plugin.callI32("grow", [1]), 1);
    assert.equal(await loaded.plugin.callI32("grow", [1]), -1);
  });

  await t.step("a plugin's own limit overrides the runtime's", async () => {
    await using loaded = await loadPlugin(growableWat(), {
      resourceLimits: { maxMemoryPages: 5 },
    }, { resourceLimits: { maxMemoryPages: 2 } });
    assert.equal(loaded.plugin.limits.maxMemoryPages, 5);
    assert.equal(await loaded.plugin.callI32("grow", [4]), 1);
    assert.equal(await loaded.plugin.callI32("grow", [1]), -1);
  });
});

testEachIsolation("ResourceLimits.maxTableElements is enforced on load and on growth", {
  permissions: "none",
}, async (t, { createRuntime, loadPlugin }) => {
  await t.step("a declared minimum over the limit is a ResourceLimitError", async () => {
    await using runtime = createRuntime({ resourceLimits: { maxTableElements: 10 } });
    const error = await assertRejectsWith(
      () => runtime.createPluginFromWat(growableWat({ tableMin: 11 })),
      ResourceLimitError,
      { limit: "maxTableElements" },
    );
    assert.match(error.message, /needs at least 11 elements, above the limit/);
  });

  await t.step("table.grow returns -1 past the limit", async () => {
    await using loaded = await loadPlugin(growableWat(), {}, {
      resourceLimits: { maxTableElements: 3 },
    });
    assert.equal(await loaded.plugin.callI32("grow_table", [2]), 1);
    assert.equal(await loaded.plugin.callI32("grow_table", [1]), -1);
    assert.equal(await loaded.plugin.callI32("table_size"), 3);
  });
});

testEachIsolation("ResourceLimits.maxFuel and maxExecutionTimeMs stop running guest code", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await t.step("a loop that outlives its fuel is a FuelExhaustedError", async () => {
    await using loaded = await loadPlugin(LOOPS_WAT, { resourceLimits: { maxFuel: 10_000 } });
    const { plugin } = loaded;
    await assertRejectsWith(() => plugin.callVoid("spin"), FuelExhaustedError, {
      kind: "fuel_exhausted",
      fuelLimit: 10_000,
    });
    assert.equal(await plugin.callI32("count", [10]), 10);
    const metrics = await plugin.metrics();
    assert.ok(metrics.fuelConsumed > 10_000, `fuelConsumed = ${metrics.fuelConsumed}`);
    assert.equal(metrics.failureCount, 1);
  });

  await t.step("a call's own fuel budget replaces the plugin's", async () => {
    await using loaded = await loadPlugin(LOOPS_WAT, { resourceLimits: { maxFuel: 10_000 } });
    await assertRejectsWith(
      () => loaded.plugin.callI32("count", [1000], { fuel: 100 }),
      FuelExhaustedError,
      { fuelLimit: 100 },
    );
  });

  await t.step("a loop that outlives its time is a TimeoutError", async () => {
    await using loaded = await loadPlugin(LOOPS_WAT, {
      resourceLimits: { maxFuel: null, maxExecutionTimeMs: 30 },
    });
    await assertRejectsWith(() => loaded.plugin.callVoid("spin"), TimeoutError, {
      kind: "timeout",
      timeoutMs: 30,
    });
    await assertRejectsWith(
      () => loaded.plugin.callVoid("spin", [], { timeoutMs: 10 }),
      TimeoutError,
      { timeoutMs: 10 },
    );
    assert.equal(await loaded.plugin.callI32("count", [3]), 3);
  });

  await t.step("a call cannot give itself more time or fuel than its plugin's limit", async () => {
    await using loaded = await loadPlugin(LOOPS_WAT, {
      resourceLimits: { maxFuel: 10_000, maxExecutionTimeMs: 20 },
    });
    await assertRejectsWith(
      () => loaded.plugin.callVoid("spin", [], { timeoutMs: 60_000 }),
      RangeError,
      {
        message:
          "Cannot call with 'timeoutMs' = 60000: it is above the plugin's maxExecutionTimeMs of 20",
      },
    );
    await assertRejectsWith(
      () => loaded.plugin.callBytes("spin", new Uint8Array(), { fuel: 10_001 }),
      RangeError,
      { message: "Cannot call with 'fuel' = 10001: it is above the plugin's maxFuel of 10000" },
    );
    // At the limit is fine.
    assert.equal(await loaded.plugin.callI32("count", [3], { timeoutMs: 20, fuel: 10_000 }), 3);
  });
});

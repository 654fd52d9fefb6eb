/**
 * A short soak in CI: a few plugins, two callers each, a few seconds, with a
 * fault in every five calls. Every check of the harness must pass (no call
 * lost, every outcome the expected one, nothing left behind) and every kind
 * of fault must have been injected. `deno task soak` runs the long one.
 */
import assert from "node:assert/strict";
import { allowingWorkers, RUN_SLOW, SLOW } from "../_helpers.ts";
import { FAULT_ACTIONS } from "./_actions.ts";
import { formatText } from "./_report.ts";
import type { Flavor } from "./_soak_plugin.ts";
import { runSoak, type SoakOptions, type SoakReport } from "./soak.ts";

/** The soak's worker entry lives here: the host must be able to read it. */
const SOAK_DIR = new URL("./", import.meta.url).pathname;

const FLAVORS: readonly Flavor[] = ["sync", "async"];

/** Asserts every check of `report` passed and every fault its plugins can have was injected. */
async function assertSoak(t: Deno.TestContext, report: SoakReport): Promise<void> {
  const text = formatText(report);
  for (const check of report.checks) {
    await t.step(check.name, () => assert.ok(check.passed, `${check.detail}\n\n${text}`));
  }
  await t.step("every kind of fault was injected, and each ended as documented", () => {
    const { isolation } = report.settings;
    const possible = FAULT_ACTIONS
      .filter((action) => FLAVORS.some((flavor) => action.available(isolation, flavor)))
      .map((action) => action.name);
    for (const fault of [...possible, "restart"]) {
      assert.ok((report.faults[fault] ?? 0) > 0, `no ${fault} was injected\n\n${text}`);
    }
    assert.equal(report.unexpected.count, 0, text);
  });
  await t.step("the plugins kept answering normal calls correctly", () => {
    assert.ok(report.latency.count > report.settings.plugins * report.settings.callers, text);
  });
}

/** The CI soak's settings: small, short, faulty; a loose RSS bound (the long soak has the tight one). */
const SHORT: SoakOptions = {
  plugins: 8,
  callers: 2,
  faultRate: 0.2,
  seed: 1,
  rssGrowthBoundMb: 256,
  drainMs: 15_000,
};

Deno.test(
  `${SLOW}A short soak of worker plugins under injected faults loses no call and leaves nothing behind`,
  { permissions: allowingWorkers({ read: [SOAK_DIR] }), ignore: !RUN_SLOW },
  async (t) => {
    await assertSoak(t, await runSoak({ ...SHORT, isolation: "worker", durationMs: 5_000 }));
  },
);

Deno.test(
  `${SLOW}A short soak of inline plugins under injected faults loses no call and leaves nothing behind`,
  { permissions: "none", ignore: !RUN_SLOW },
  async (t) => {
    await assertSoak(t, await runSoak({ ...SHORT, isolation: "inline", durationMs: 2_000 }));
  },
);

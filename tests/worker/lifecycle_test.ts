import assert from "node:assert/strict";
import { DENO, RUN_SLOW, SLOW, textOf } from "../_helpers.ts";
import { runFixture } from "./_worker_helpers.ts";

/** How many plugins the loop creates and stops. */
const COUNT = 500;

Deno.test(
  `${SLOW}Creating and stopping ${COUNT} worker plugins leaves no worker and little memory`,
  {
    permissions: { run: [DENO] },
    ignore: !RUN_SLOW,
  },
  async (t) => {
    const modes: [mode: string, what: string][] = [
      ["fresh", "each in a new worker"],
      ["kept", "each in the worker the one before left"],
    ];
    for (const [mode, what] of modes) {
      await t.step(what, async () => {
        // In a process of its own: it exits only if no worker is left (a live worker keeps a
        // process alive, and Deno's test sanitizers do not see workers).
        const { code, stdout, stderr } = await runFixture(
          "create_and_stop.ts",
          [String(COUNT), mode],
          60_000,
        );
        assert.equal(code, 0, textOf(stderr));
        const { count, before, after, plugins } = JSON.parse(textOf(stdout));
        assert.equal(count, COUNT);
        assert.equal(plugins, 0);
        // An idle worker costs several MB: leaking even a tenth of them would show, and so
        // would an instance a kept worker held on to.
        const growth = (after - before) / 2 ** 20;
        assert.ok(growth < 100, `RSS grew by ${growth.toFixed(1)} MiB`);
      });
    }
  },
);

Deno.test(
  "A process whose call was aborted while its worker started exits once its plugin ends",
  { permissions: { run: [DENO] } },
  async (t) => {
    // The worker started for the aborted call came up after stop() or close(): nobody ended it.
    for (const how of ["stop", "abort", "close"]) {
      await t.step(how, async () => {
        const { code, stdout, stderr } = await runFixture("abort_while_starting.ts", [how], 30_000);
        assert.equal(code, 0, textOf(stderr));
        assert.equal(textOf(stdout).trim(), "done");
      });
    }
  },
);

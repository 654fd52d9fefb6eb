/**
 * How the host converts a worker's clock to its own (the start of a call
 * posted ahead, from which its deadline counts).
 */

import assert from "node:assert/strict";
import { clockOffsetOf } from "../../src/worker/_worker_start.ts";
import type { WorkerReady } from "../../src/worker/_protocol.ts";

/** A ready message the worker posted `lateMs` ago, from a clock whose origin is `originMs` after the host's. */
function readyMessage(originMs: number, lateMs: number): WorkerReady & { ok: true } {
  const sentAt = performance.now() - lateMs;
  return {
    ok: true,
    memoryBytes: 0,
    interrupt: new SharedArrayBuffer(4),
    hasStart: false,
    now: sentAt - originMs,
    timeOrigin: performance.timeOrigin + originMs,
  };
}

Deno.test("clockOffsetOf() takes the clocks' origins, not the message's lateness", () => {
  const offset = clockOffsetOf(readyMessage(12.5, 40));
  // By the message alone it would read 52.5 ms: 40 ms late.
  assert.ok(Math.abs(offset - 12.5) < 1e-6, `offset ${offset}`);
});

Deno.test("clockOffsetOf() falls back to the message when the origins cannot be right", async (t) => {
  await t.step(
    "an origin offset above the message's bound (the wall clock stepped forward)",
    () => {
      const ready = { ...readyMessage(3, 0), timeOrigin: performance.timeOrigin + 60_000 };
      const offset = clockOffsetOf(ready);
      assert.ok(offset < 10, `offset ${offset}`);
    },
  );
  await t.step("an origin offset more than a second below it (the wall clock stepped back)", () => {
    const ready = { ...readyMessage(3, 0), timeOrigin: performance.timeOrigin - 60_000 };
    const offset = clockOffsetOf(ready);
    assert.ok(offset > 2 && offset < 10, `offset ${offset}`);
  });
});

import assert from "node:assert/strict";
import { PluginManager } from "../../mod.ts";
import { isolatedRuntime, ISOLATIONS, WORKER_SOURCES } from "../_helpers.ts";
import { latencyHistogramOf } from "../../src/observe/_metrics_recorder.ts";

const LOOP_WAT = `
  (module
    (func (export "spin") (param $n i32) (result i32) (local $i i32)
      block $done
        loop $loop
          local.get $i local.get $n i32.ge_u br_if $done
          local.get $i i32.const 1 i32.add local.set $i
          br $loop
        end
      end
      local.get $i))
`;

/** The nearest-rank percentile of exact values. */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

for (const isolation of ISOLATIONS) {
  Deno.test(
    `PluginMetrics has p50, p99 and max within 1 % of every call's duration (${isolation})`,
    {
      permissions: isolation === "worker" ? { read: [WORKER_SOURCES] } : "none",
    },
    async () => {
      await using runtime = isolatedRuntime(isolation);
      await using manager = new PluginManager(runtime, { anomaly: false });
      const handle = await manager.loadWat(LOOP_WAT, { name: "spin" });
      const durationsNs: number[] = [];
      manager.addEventListener(
        "executed",
        (event) => durationsNs.push(event.detail.durationMs * 1e6),
      );
      // Calls of very different lengths, so that the percentiles are far apart.
      for (let i = 0; i < 200; i++) {
        await manager.callI32(handle, "spin", [i % 10 === 0 ? 200_000 : 10]);
      }
      await assert.rejects(manager.callI32(handle, "spin", ["not a number" as unknown as number]));

      const metrics = (await manager.getInfo(handle)).metrics;
      assert.equal(metrics.callCount, 201);
      assert.equal(durationsNs.length, 201, "the failed call counts too");
      durationsNs.sort((a, b) => a - b);
      const close = (actual: number, expected: number, what: string): void => {
        // 1 % of the histogram, plus the rounding to whole nanoseconds.
        assert.ok(
          Math.abs(actual - expected) <= expected * 0.01 + 1,
          `${what}: ${actual} ns, exactly ${expected} ns`,
        );
      };
      close(metrics.p50ExecutionTimeNs, exact(durationsNs, 0.5), "p50");
      close(metrics.p99ExecutionTimeNs, exact(durationsNs, 0.99), "p99");
      close(metrics.maxExecutionTimeNs, durationsNs.at(-1)!, "max");
      assert.ok(metrics.p50ExecutionTimeNs <= metrics.p99ExecutionTimeNs);

      const histogram = latencyHistogramOf(manager.get(handle));
      assert.equal(histogram.count, 201);
      assert.deepEqual(histogram.cumulativeCounts([Infinity]), [201]);
    },
  );
}

Deno.test("latencyHistogramOf() rejects what is not a plugin", () => {
  assert.throws(() => latencyHistogramOf({}), TypeError);
});

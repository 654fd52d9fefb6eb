import assert from "node:assert/strict";
import { metrics, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { isolatedRuntime, ISOLATIONS, WORKER_SOURCES } from "../_helpers.ts";
import { Capability } from "../../mod.ts";
import { telemetryActive } from "../../src/observe/_otel.ts";

const PLUGIN_WAT = `
  (module
    (import "env" "slow" (func $slow (result i32)))
    (memory (export "memory") 1)
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
    (func (export "fail") (result i32) unreachable)
    (func (export "waits") (result i32) call $slow))
`;

/** Spans and metrics captured by in-memory exporters of the OpenTelemetry SDK. */
interface Captured {
  spans(): ReadableSpan[];
  metrics(): Promise<MetricData[]>;
}

/** Registers an SDK tracer and meter provider for `fn`, then unregisters them. */
async function withTelemetry(fn: (captured: Captured) => Promise<void>): Promise<void> {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: spanExporter })],
  });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  assert.ok(trace.setGlobalTracerProvider(tracerProvider));
  assert.ok(metrics.setGlobalMeterProvider(meterProvider));
  try {
    await fn({
      spans: () => spanExporter.getFinishedSpans(),
      metrics: async () => {
        await reader.forceFlush();
        return metricExporter.getMetrics().at(-1)?.scopeMetrics
          .filter((scope) => scope.scope.name === "wasmplug")
          .flatMap((scope) => scope.metrics) ?? [];
      },
    });
  } finally {
    trace.disable();
    metrics.disable();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  }
}

function metric(all: MetricData[], name: string): MetricData {
  const found = all.find((m) => m.descriptor.name === name);
  assert.ok(found !== undefined, `no metric ${name} in ${all.map((m) => m.descriptor.name)}`);
  return found;
}

for (const isolation of ISOLATIONS) {
  Deno.test(`OpenTelemetry: every call is a wasmplug.call span with metrics (${isolation})`, {
    permissions: isolation === "worker" ? { read: [WORKER_SOURCES] } : "none",
  }, async (t) => {
    await withTelemetry(async (captured) => {
      await using runtime = isolatedRuntime(isolation);
      const linker = runtime.createLinker();
      let failing = false;
      linker.funcWrap("env", "slow", () => {
        const until = performance.now() + 5;
        while (performance.now() < until) { /* a host function that takes 5 ms */ }
        if (failing) throw new Error("slow and failing");
        return 7;
      });
      await using plugin = await runtime.createPluginWithLinker(
        await runtime.compileWat("traced", PLUGIN_WAT),
        { id: "traced-1", name: "traced", capabilities: [Capability.CallHostFunction] },
        linker,
      );

      await t.step("a successful call", async () => {
        assert.equal(await plugin.callI32("add", [2, 3]), 5);
        const [span] = captured.spans();
        assert.ok(span !== undefined, "a span was exported");
        assert.equal(span.name, "wasmplug.call");
        assert.equal(span.status.code, SpanStatusCode.UNSET);
        assert.equal(span.attributes["wasmplug.plugin.id"], "traced-1");
        assert.equal(span.attributes["wasmplug.plugin.name"], "traced");
        assert.equal(span.attributes["wasmplug.function"], "add");
        assert.equal(span.attributes["wasmplug.isolation"], isolation);
        const fuel = span.attributes["wasmplug.fuel_consumed"];
        assert.ok(typeof fuel === "number" && fuel > 0, `fuel ${fuel}`);
        assert.equal(fuel, (await plugin.metrics()).fuelConsumed);
        assert.equal(span.attributes["error.type"], undefined);
      });

      await t.step("a failing call has error.type and status ERROR", async () => {
        await assert.rejects(plugin.callI32("fail"));
        const span = captured.spans().at(-1)!;
        assert.equal(span.attributes["wasmplug.function"], "fail");
        assert.equal(span.attributes["error.type"], "trap");
        assert.equal(span.status.code, SpanStatusCode.ERROR);
        assert.match(span.status.message ?? "", /unreachable/);
      });

      await t.step("a slow host call is an event of the span", async () => {
        assert.equal(await plugin.callI32("waits"), 7);
        const span = captured.spans().at(-1)!;
        assert.equal(span.attributes["wasmplug.function"], "waits");
        const events = span.events.filter((event) => event.name === "wasmplug.host_call");
        assert.equal(events.length, 1, JSON.stringify(span.events));
        assert.equal(events[0]!.attributes?.["wasmplug.host_function"], "env.slow");
        const ms = events[0]!.attributes?.["wasmplug.host_call.duration_ms"];
        assert.ok(typeof ms === "number" && ms >= 5, `duration ${ms}`);
        // A fast call has no such event.
        await plugin.callI32("add", [1, 1]);
        assert.deepEqual(captured.spans().at(-1)!.events, []);
        // Nor had a slow one that failed: the one most worth seeing.
        failing = true;
        await assert.rejects(plugin.callI32("waits"));
        failing = false;
        const failed = captured.spans().at(-1)!;
        assert.equal(failed.attributes["error.type"], "host_function");
        assert.equal(
          failed.events.filter((event) => event.name === "wasmplug.host_call").length,
          1,
        );
      });

      await t.step("the four instruments carry the plugin's id and name", async () => {
        const all = await captured.metrics();
        const attributes = { "wasmplug.plugin.id": "traced-1", "wasmplug.plugin.name": "traced" };
        const calls = metric(all, "wasmplug.calls");
        assert.equal(calls.dataPointType, DataPointType.SUM);
        assert.deepEqual(calls.dataPoints.map((p) => [p.attributes, p.value]), [[attributes, 5]]);

        const duration = metric(all, "wasmplug.call.duration");
        assert.equal(duration.descriptor.unit, "s");
        assert.equal(duration.dataPointType, DataPointType.HISTOGRAM);
        const [point] = duration.dataPoints;
        assert.deepEqual(point!.attributes, attributes);
        const histogram = point!.value as { count: number; sum: number };
        assert.equal(histogram.count, 5);
        const metricsNow = await plugin.metrics();
        assert.ok(
          Math.abs(histogram.sum - metricsNow.totalExecutionTimeNs / 1e9) < 1e-5,
          `sum ${histogram.sum} s vs ${metricsNow.totalExecutionTimeNs} ns`,
        );

        const fuel = metric(all, "wasmplug.fuel");
        const fuelPoint = fuel.dataPoints[0]!.value as { count: number; sum: number };
        assert.equal(fuelPoint.count, 5);
        assert.equal(fuelPoint.sum, metricsNow.fuelConsumed);

        const memory = metric(all, "wasmplug.memory");
        assert.equal(memory.descriptor.unit, "By");
        assert.equal(memory.dataPointType, DataPointType.GAUGE);
        assert.deepEqual(memory.dataPoints.map((p) => [p.attributes, p.value]), [[
          attributes,
          65_536,
        ]]);
      });

      await t.step("a slow tool is an event of the span, whether it answers or fails", async () => {
        let failing = false;
        runtime.registerTool("slow_tool", async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (failing) throw new Error("slow and failing");
          return 1;
        });
        await using tooled = await runtime.createPluginFromWat(
          `(module
            (import "env" "host_call_tool" (func $tool (param i32 i32 i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "slow_tool")
            (data (i32.const 16) "{}")
            (func (export "go") (result i32)
              (call $tool (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 2) (i32.const 64)
                (i32.const 64))))`,
          { capabilities: [Capability.CallTool] },
        );
        for (const fails of [false, true]) {
          failing = fails;
          await tooled.callI32("go").catch(() => {});
          const span = captured.spans().at(-1)!;
          const events = span.events.map((event) => event.attributes?.["wasmplug.host_function"]);
          // A failing one had none.
          assert.deepEqual(events, ["tool slow_tool"], `failing: ${fails}`);
        }
      });
    });
  });
}

Deno.test(
  "OpenTelemetry: nothing is recorded without a provider, and a later one is seen at once",
  {
    permissions: "none",
  },
  async () => {
    await using runtime = isolatedRuntime("inline");
    await using plugin = await runtime.createPluginFromWat(
      '(module (func (export "one") (result i32) i32.const 1))',
    );
    assert.equal(telemetryActive(), false);
    await plugin.callI32("one");
    await withTelemetry(async (captured) => {
      assert.equal(telemetryActive(), true);
      await plugin.callI32("one");
      assert.equal(captured.spans().length, 1, "only the call made with the provider");
      const calls = metric(await captured.metrics(), "wasmplug.calls");
      assert.equal(calls.dataPoints[0]!.value, 1);
    });
    assert.equal(telemetryActive(), false, "unregistering turns it off again");
  },
);

Deno.test("OpenTelemetry: a failing tracer never fails the plugin's call", {
  permissions: "none",
}, async () => {
  await using runtime = isolatedRuntime("inline");
  await using plugin = await runtime.createPluginFromWat(
    '(module (func (export "one") (result i32) i32.const 1))',
  );
  const broken = {
    getTracer: () => ({
      startSpan: () => {
        throw new Error("the tracer is broken");
      },
    }),
  } as unknown as Parameters<typeof trace.setGlobalTracerProvider>[0];
  assert.ok(trace.setGlobalTracerProvider(broken));
  try {
    assert.equal(telemetryActive(), true);
    assert.equal(await plugin.callI32("one"), 1);
    assert.equal(await plugin.callI32("one"), 1);
    assert.equal((await plugin.metrics()).successCount, 2);
  } finally {
    trace.disable();
  }
});

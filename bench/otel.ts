/**
 * What OpenTelemetry costs an inline call: `plugin.callI32("add")` with the
 * OpenTelemetry API loaded and no provider registered (the check every call
 * makes), beside the same call with that check switched off, and, for
 * scale, with an SDK tracer and meter provider registered (spans and metrics
 * made, exported nowhere). Interleaved rounds, medians.
 *
 * @module
 */

import { metrics, trace } from "@opentelemetry/api";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { setTelemetryEnabled } from "../src/observe/_otel.ts";
import { ADD_WAT, bareInlineRuntime } from "./_add_plugin.ts";
import { type Figure, interleave, median } from "./_measure.ts";

/** Runs the comparison and returns its figures and ratios. */
export async function benchOtel(
  options: { rounds?: number; iterations?: number } = {},
): Promise<{ figures: Figure[]; ratios: Record<string, number> }> {
  const { rounds = 30, iterations = 20_000 } = options;
  await using runtime = bareInlineRuntime();
  await using plugin = await runtime.createPluginFromWat(ADD_WAT, { name: "add" });
  const tracerProvider = new TracerProvider();
  const meterProvider = new MeterProvider();

  let sink = 0;
  const calls = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) sink += await plugin.callI32("add", [i, 1]);
  };
  try {
    const off = {
      iterations,
      run: async (n: number) => {
        setTelemetryEnabled(false);
        try {
          await calls(n);
        } finally {
          setTelemetryEnabled(true);
        }
      },
    };
    // First with no provider ever registered, as a host without OpenTelemetry runs:
    // registering and disabling an SDK leaves the API's registry behind in a slower shape.
    const quiet = await interleave(
      {
        callI32OtelNoProvider: { iterations, run: calls },
        callI32OtelOff: off,
      },
      rounds,
      { settle: true },
    );
    const withSdk = await interleave(
      {
        callI32OtelSdk: {
          iterations,
          run: async (n) => {
            trace.setGlobalTracerProvider(tracerProvider);
            metrics.setGlobalMeterProvider(meterProvider);
            try {
              await calls(n);
            } finally {
              trace.disable();
              metrics.disable();
            }
          },
        },
        callI32OtelOffBesideSdk: off,
      },
      rounds,
      { settle: true },
    );
    const figures = [...quiet, ...withSdk];
    if (sink === 0.5) console.log(sink); // keeps the loops from being optimized away
    return {
      figures,
      ratios: {
        otelNoProviderVsOff: median(figures, "callI32OtelNoProvider") /
          median(figures, "callI32OtelOff"),
        otelSdkVsOff: median(figures, "callI32OtelSdk") /
          median(figures, "callI32OtelOffBesideSdk"),
      },
    };
  } finally {
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  }
}

/**
 * OpenTelemetry for plugin calls, through `@opentelemetry/api`: a
 * `wasmplug.call` span per call (with events for slow host calls) and the
 * `wasmplug.calls`, `wasmplug.call.duration`, `wasmplug.fuel` and
 * `wasmplug.memory` instruments. Deno's built-in exporter (`OTEL_DENO=true`)
 * or any SDK registered with the API receives them.
 *
 * Without a registered provider a call pays one lookup of the API's global
 * registry ({@linkcode telemetryActive}); nothing else runs. A provider
 * registered later is seen by the next call: the registry entries are
 * compared by identity on every call, and the tracer and instruments are
 * fetched again when they changed.
 *
 * @module
 */

import { cutText, thrownText } from "../common/mod.ts";
import {
  type Attributes,
  type Counter,
  type Gauge,
  type Histogram,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { getLogger } from "@logtape/logtape";
import { type PendingHostCall, setTracingCheck, takeHostCalls } from "../host/mod.ts";

/** Where `@opentelemetry/api` 1.x (and Deno's built-in telemetry) registers providers. */
const API_GLOBAL = Symbol.for("opentelemetry.js.api.1");
/** What a `ProxyTracerProvider` delegates to while no SDK is registered. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

const SCOPE = "wasmplug";

interface ApiGlobal {
  readonly trace?: unknown;
  readonly metrics?: unknown;
}

interface Instruments {
  readonly tracer: Tracer | null;
  readonly calls: Counter | null;
  readonly duration: Histogram | null;
  readonly fuel: Histogram | null;
  readonly memory: Gauge | null;
}

let seenGlobal: ApiGlobal | undefined;
let seenTrace: unknown;
let seenMetrics: unknown;
let instruments: Instruments | null = null;
/** `false` only while the bench measures calls without this module's check. */
let enabled = true;

/**
 * Turns telemetry off whatever is registered (`false`), or back on: for the
 * bench, which measures what the check costs. Not part of the public API.
 */
export function setTelemetryEnabled(on: boolean): void {
  enabled = on;
}

/**
 * The API's global registry, followed without a global lookup per call: read
 * once now, and when it does not exist yet, an accessor in its place learns
 * when the API (or Deno's built-in telemetry) creates or replaces it.
 */
let registry: ApiGlobal | undefined = followRegistry();
let callsWithoutRegistry = 0;

function followRegistry(): ApiGlobal | undefined {
  const global = globalThis as { [API_GLOBAL]?: ApiGlobal };
  const current = global[API_GLOBAL];
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, API_GLOBAL);
  if (descriptor !== undefined && descriptor.configurable !== true) return current;
  let value = current;
  Object.defineProperty(globalThis, API_GLOBAL, {
    configurable: true,
    enumerable: false,
    get: () => value,
    set: (next: ApiGlobal | undefined) => {
      value = next;
      registry = next;
    },
  });
  return current;
}

/**
 * True when a tracer or meter provider is registered with the OpenTelemetry
 * API. Without a registry this is one read of a module variable; with one,
 * two property reads compared by identity.
 */
export function telemetryActive(): boolean {
  if (!enabled) return false;
  let current = registry;
  if (current === undefined) {
    // Someone may have redefined the global over the accessor: look again now and then.
    if ((++callsWithoutRegistry & 1023) !== 0) return false;
    current = registry = (globalThis as { [API_GLOBAL]?: ApiGlobal })[API_GLOBAL];
    if (current === undefined) return false;
  }
  if (current !== seenGlobal || current.trace !== seenTrace || current.metrics !== seenMetrics) {
    refresh(current);
  }
  return instruments !== null;
}

function refresh(registry: ApiGlobal): void {
  seenGlobal = registry;
  seenTrace = registry.trace;
  seenMetrics = registry.metrics;
  const tracing = registry.trace !== undefined && !isNoopTracerProvider(registry.trace);
  const metering = registry.metrics !== undefined;
  if (!tracing && !metering) {
    instruments = null;
    return;
  }
  const meter = metering ? metrics.getMeter(SCOPE) : null;
  instruments = {
    tracer: tracing ? trace.getTracer(SCOPE) : null,
    calls: meter?.createCounter("wasmplug.calls", {
      description: "Calls made to plugins, successful or not",
      unit: "{call}",
    }) ?? null,
    duration: meter?.createHistogram("wasmplug.call.duration", {
      description: "Wall-clock duration of plugin calls",
      unit: "s",
    }) ?? null,
    fuel: meter?.createHistogram("wasmplug.fuel", {
      description: "Fuel consumed by each plugin call",
      unit: "{fuel}",
    }) ?? null,
    memory: meter?.createGauge("wasmplug.memory", {
      description: "A plugin's linear-memory size after its last call",
      unit: "By",
    }) ?? null,
  };
}

setTracingCheck(() => telemetryActive() && instruments!.tracer !== null);

function isNoopTracerProvider(provider: unknown): boolean {
  return provider === NOOP_TRACER_PROVIDER ||
    (provider instanceof ProxyTracerProvider &&
      (provider as ProxyTracerProvider).getDelegate() === NOOP_TRACER_PROVIDER);
}

/** Who made a call, as its telemetry names it. */
export interface CallTelemetryIdentity {
  readonly id: string;
  readonly name: string;
  readonly isolation: string;
  readonly fuelMetered: boolean;
  /** The owner of the plugin's host calls (see `_host_call_scope.ts`). */
  readonly hostScope: object;
}

/** One finished call, as the metrics recorder sees it. */
export interface FinishedCall {
  readonly fn: string;
  /** `performance.now()` at the start and the end of the call. */
  readonly startMs: number;
  readonly endMs: number;
  /** `undefined` when the call succeeded. */
  readonly error: unknown;
  readonly fuel: number;
  readonly memoryBytes: number;
}

const metricAttributes = new WeakMap<CallTelemetryIdentity, Attributes>();

/**
 * Exports one finished call: its span (with its slow host calls as events)
 * and its metrics. Call only when {@linkcode telemetryActive} is true.
 */
export function exportCall(identity: CallTelemetryIdentity, call: FinishedCall): void {
  const active = instruments;
  if (active === null) return;
  try {
    record(active, identity, call);
  } catch (error) {
    // A failing exporter or processor must not fail the plugin's call: say so once.
    if (reportedFailure) return;
    reportedFailure = true;
    logger.warn("Cannot export a plugin call to OpenTelemetry: {error}", { error });
  }
}

let reportedFailure = false;
const logger = getLogger(["wasmplug", "otel"]);

function record(active: Instruments, identity: CallTelemetryIdentity, call: FinishedCall): void {
  let attributes = metricAttributes.get(identity);
  if (attributes === undefined) {
    attributes = Object.freeze({
      "wasmplug.plugin.id": identity.id,
      "wasmplug.plugin.name": identity.name,
    });
    metricAttributes.set(identity, attributes);
  }
  const seconds = (call.endMs - call.startMs) / 1000;
  active.calls?.add(1, attributes);
  active.duration?.record(seconds, attributes);
  if (identity.fuelMetered) active.fuel?.record(call.fuel, attributes);
  active.memory?.record(call.memoryBytes, attributes);
  const hostCalls = takeHostCalls(
    identity.hostScope,
    identity.isolation === "inline",
    call.startMs,
    call.endMs,
  );
  if (active.tracer !== null) traceCall(active.tracer, identity, call, hostCalls);
}

function traceCall(
  tracer: Tracer,
  identity: CallTelemetryIdentity,
  call: FinishedCall,
  hostCalls: readonly PendingHostCall[],
): void {
  const origin = performance.timeOrigin;
  const attributes: Attributes = {
    "wasmplug.plugin.id": identity.id,
    "wasmplug.plugin.name": identity.name,
    // The host chose it, among names the guest chose: bounded as they are in messages.
    "wasmplug.function": call.fn.length > 256 ? `${cutText(call.fn, 256)}…` : call.fn,
    "wasmplug.isolation": identity.isolation,
  };
  if (identity.fuelMetered) attributes["wasmplug.fuel_consumed"] = call.fuel;
  const span = tracer.startSpan("wasmplug.call", {
    kind: SpanKind.INTERNAL,
    startTime: origin + call.startMs,
    attributes,
  });
  for (const host of hostCalls) {
    span.addEvent("wasmplug.host_call", {
      "wasmplug.host_function": host.label,
      "wasmplug.host_call.duration_ms": host.endMs - host.startMs,
    }, origin + host.startMs);
  }
  if (call.error !== undefined) {
    span.setAttribute("error.type", errorType(call.error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(call.error) });
  }
  span.end(origin + call.endMs);
}

/** A `WasmError`'s `kind`, else the error's class name: a low-cardinality `error.type`. */
export function errorType(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const kind = (error as { kind?: unknown }).kind;
    if (typeof kind === "string") return kind;
    const name = (error as { name?: unknown }).name;
    if (typeof name === "string" && name !== "") return name;
  }
  return "_OTHER";
}

function errorMessage(error: unknown): string {
  return thrownText(error);
}

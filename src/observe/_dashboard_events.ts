/**
 * A manager's event subscription as a Server-Sent Events body: one JSON
 * `data:` line per event, a comment as heartbeat, and bounded memory for a
 * client that reads slowly (the subscription drops its oldest events, and
 * the stream says how many).
 *
 * @module
 */

import { lenientUtf8, thrownText } from "../common/mod.ts";
import type { EventSubscription } from "../event_subscription.ts";
import type { PluginEvent } from "../plugin_event.ts";

const encoder = new TextEncoder();
/** How much of a message payload an event shows. */
const MAX_PREVIEW_BYTES = 1024;

/** Options of {@linkcode eventStream}. */
export interface EventStreamOptions {
  /** How often to send a heartbeat comment, in milliseconds. */
  readonly heartbeatMs: number;
  /** Called once when the stream ends, whoever ends it. */
  readonly onEnd: () => void;
}

/** The body of an `/events` response, and how the server ends it. */
export interface EventStream {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  /** Ends the stream (what is already queued is still sent). */
  close(): void;
}

/**
 * Streams `subscription` as Server-Sent Events until the subscription ends
 * (the manager closes), the client goes away or `close()` is called.
 */
export function eventStream(
  subscription: EventSubscription,
  options: EventStreamOptions,
): EventStream {
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let ended = false;
  let reportedDropped = 0;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Stops everything; `discard` drops what the subscription still buffers. */
  function end(discard: boolean): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    if (discard) void subscription.return();
    options.onEnd();
  }
  const body = new ReadableStream<Uint8Array>({
    start(streamController): void {
      controller = streamController;
      controller.enqueue(encoder.encode("retry: 2000\n: connected\n\n"));
      heartbeat = setInterval(() => {
        // Only into an empty queue: a client that stopped reading gets no backlog.
        if (!ended && (controller.desiredSize ?? 0) > 0) {
          controller.enqueue(encoder.encode(": heartbeat\n\n"));
        }
      }, options.heartbeatMs);
    },
    async pull(controller): Promise<void> {
      const result = await subscription.next();
      if (ended) return;
      if (result.done) {
        end(false);
        controller.close();
        return;
      }
      let text = "";
      const dropped = subscription.dropped;
      if (dropped > reportedDropped) {
        text += `event: dropped\ndata: {"count":${dropped - reportedDropped}}\n\n`;
        reportedDropped = dropped;
      }
      text += `data: ${serializeEvent(result.value)}\n\n`;
      controller.enqueue(encoder.encode(text));
    },
    cancel(): void {
      end(true);
    },
  });
  return {
    body,
    close(): void {
      if (ended) return;
      // A client that stopped reading would hold its backlog, and the server's shutdown, for
      // good: its stream ends at once, unsent events dropped. The others get the events
      // already buffered (a closing manager's last unloads), then the end.
      if ((controller.desiredSize ?? 1) <= 0) {
        end(true);
        controller.error(new Error("The dashboard closed"));
      } else {
        clearInterval(heartbeat);
        subscription.end();
      }
    },
  };
}

/**
 * An event as one line of JSON: `{ type, pluginId, time, detail }`, with
 * errors as `{ name, kind, message }`, bytes as `{ byteLength, text }` and
 * bigints as strings.
 */
export function serializeEvent(event: PluginEvent): string {
  const value = { type: event.type, pluginId: event.pluginId, time: event.time };
  try {
    return JSON.stringify({ ...value, detail: event.detail }, jsonSafe);
  } catch {
    // A thrown value that is cyclic or otherwise not serializable.
    return JSON.stringify({ ...value, detail: { error: { message: describe(event.detail) } } });
  }
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    const kind = (value as { kind?: unknown }).kind;
    return {
      name: value.name,
      ...(typeof kind === "string" ? { kind } : {}),
      message: thrownText(value),
    };
  }
  if (value instanceof Uint8Array) {
    const preview = value.subarray(0, MAX_PREVIEW_BYTES);
    return {
      byteLength: value.byteLength,
      text: lenientUtf8.decode(preview),
    };
  }
  return value;
}

function describe(value: unknown): string {
  try {
    return String((value as { error?: unknown })?.error ?? value);
  } catch {
    return "(unprintable)";
  }
}

/**
 * The queue behind a manager's {@linkcode EventSubscription}: bounded,
 * never blocking the producer. Internal: only the manager pushes.
 *
 * @module
 */

import { describeValue } from "./common/mod.ts";
import type { EventSubscription } from "./event_subscription.ts";
import type { PluginEvent } from "./plugin_event.ts";

/** How many taken events the buffer may keep a slot for before it is compacted. */
const COMPACT_AFTER = 1024;

/**
 * A subscription's buffer: the manager pushes into it and hands out its
 * {@linkcode EventQueue.subscription}, which can only read.
 */
export class EventQueue {
  /**
   * The unread events are `#buffer[#head]` onwards: taking one moves `#head`
   * instead of shifting the array, which costs a copy of it once it is large.
   */
  readonly #buffer: (PluginEvent | undefined)[] = [];
  #head = 0;
  readonly #bufferSize: number;
  readonly #onEnd: () => void;
  #waiter: ((result: IteratorResult<PluginEvent>) => void) | undefined;
  #ended = false;
  #dropped = 0;

  /**
   * Creates a subscription; managers do this in `subscribe()`.
   *
   * @param bufferSize How many unread events to keep.
   * @param onEnd Called once when the subscription ends.
   */
  constructor(bufferSize: number, onEnd: () => void) {
    if (typeof bufferSize !== "number") {
      throw new TypeError(
        `Cannot subscribe with 'bufferSize': expected a number, received ${
          describeValue(bufferSize)
        }`,
      );
    }
    if (!Number.isInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(
        `Cannot subscribe with 'bufferSize' = ${bufferSize}: it must be a positive integer`,
      );
    }
    this.#bufferSize = bufferSize;
    this.#onEnd = onEnd;
    this.subscription = new SubscriptionReader(this);
  }

  /** The reading side, what `manager.subscribe()` returns. */
  readonly subscription: EventSubscription;

  /**
   * Events dropped because the buffer was full.
   */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Events buffered and not yet read.
   */
  get pending(): number {
    return this.#buffer.length - this.#head;
  }

  /**
   * Delivers an event: to a waiting reader, else into the buffer.
   *
   * @param event The event.
   */
  push(event: PluginEvent): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ value: event, done: false });
      return;
    }
    if (this.pending >= this.#bufferSize) {
      this.#take();
      this.#dropped++;
    }
    this.#buffer.push(event);
  }

  /** The oldest unread event, taken out of the buffer. */
  #take(): PluginEvent | undefined {
    const buffer = this.#buffer;
    if (this.#head === buffer.length) return undefined;
    const event = buffer[this.#head];
    buffer[this.#head++] = undefined;
    if (this.#head === buffer.length) {
      buffer.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= buffer.length) {
      // Copies at most as many events as were taken since the last time.
      buffer.splice(0, this.#head);
      this.#head = 0;
    }
    return event;
  }

  /**
   * The next event, waiting for one if none is buffered.
   */
  next(): Promise<IteratorResult<PluginEvent>> {
    const event = this.#take();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) {
      return Promise.reject(new TypeError("Cannot read a subscription twice at the same time"));
    }
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /**
   * Ends the subscription (unread events are discarded).
   */
  return(): Promise<IteratorResult<PluginEvent>> {
    this.end();
    this.#buffer.length = 0;
    this.#head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * Ends the subscription after the buffered events are read.
   */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }
}

/** The reading side of an {@linkcode EventQueue}: no way to push. */
class SubscriptionReader implements EventSubscription {
  readonly #queue: EventQueue;

  constructor(queue: EventQueue) {
    this.#queue = queue;
  }

  get dropped(): number {
    return this.#queue.dropped;
  }

  get pending(): number {
    return this.#queue.pending;
  }

  next(): Promise<IteratorResult<PluginEvent>> {
    return this.#queue.next();
  }

  return(): Promise<IteratorResult<PluginEvent>> {
    return this.#queue.return();
  }

  end(): void {
    this.#queue.end();
  }

  [Symbol.asyncIterator](): EventSubscription {
    return this;
  }
}

/**
 * Counts the listeners registered on each EventTarget (an abort signal, a
 * plugin manager…) by wrapping `EventTarget.prototype.addEventListener` and
 * `removeEventListener`, so a soak can tell that no long-lived target
 * accumulates a listener per call.
 *
 * @module
 */

type Listener = EventListenerOrEventListenerObject;

/** What one target has registered: per listener, per `type|capture`, what was really added. */
type Registrations = Map<Listener, Map<string, Listener>>;

/** The largest number of listeners one target had. */
export interface ListenerCounts {
  /** The most listeners on any one target at any moment. */
  readonly peak: number;
}

/**
 * Wraps the EventTarget listener methods while installed; targets are held
 * weakly. A `once` listener stops counting when it fires, one added with a
 * `signal` when that signal aborts. Use it with `using`.
 */
export class ListenerProbe implements Disposable {
  readonly #targets = new WeakMap<EventTarget, Registrations>();
  readonly #sizes = new WeakMap<EventTarget, number>();
  #peak = 0;
  #restore: (() => void) | undefined;

  /** Starts counting. */
  static install(): ListenerProbe {
    const probe = new ListenerProbe();
    probe.#install();
    return probe;
  }

  /** The peak so far. */
  counts(): ListenerCounts {
    return { peak: this.#peak };
  }

  /** Listeners registered on `target` now. */
  countOn(target: EventTarget): number {
    return this.#sizes.get(target) ?? 0;
  }

  #resize(target: EventTarget, delta: number): void {
    const size = (this.#sizes.get(target) ?? 0) + delta;
    this.#sizes.set(target, size);
    this.#peak = Math.max(this.#peak, size);
  }

  #forget(target: EventTarget, listener: Listener, key: string): Listener | undefined {
    const byKey = this.#targets.get(target)?.get(listener);
    const registered = byKey?.get(key);
    if (registered === undefined) return undefined;
    byKey!.delete(key);
    if (byKey!.size === 0) this.#targets.get(target)!.delete(listener);
    this.#resize(target, -1);
    return registered;
  }

  /**
   * Counts a registration; returns the listener to register in its stead (a
   * `once` listener is wrapped to stop counting when it fires), or
   * `undefined` for a duplicate, which the DOM ignores.
   */
  #track(
    target: EventTarget,
    type: string,
    listener: Listener,
    options: boolean | AddEventListenerOptions | undefined,
  ): Listener | undefined {
    const key = `${type}|${capture(options)}`;
    let registrations = this.#targets.get(target);
    if (registrations === undefined) this.#targets.set(target, registrations = new Map());
    let byKey = registrations.get(listener);
    if (byKey?.has(key)) return undefined;
    const forget = (): void => void this.#forget(target, listener, key);
    const once = typeof options === "object" && options.once === true;
    const registered: Listener = once
      ? function (this: unknown, event: Event): void {
        forget();
        if (typeof listener === "function") listener.call(this, event);
        else listener.handleEvent(event);
      }
      : listener;
    if (byKey === undefined) registrations.set(listener, byKey = new Map());
    byKey.set(key, registered);
    this.#resize(target, 1);
    const signal = typeof options === "object" ? options.signal : undefined;
    signal?.addEventListener("abort", forget, { once: true });
    return registered;
  }

  #install(): void {
    const proto = EventTarget.prototype;
    const { addEventListener, removeEventListener } = proto;
    const track = (
      target: EventTarget,
      type: string,
      listener: Listener,
      options: boolean | AddEventListenerOptions | undefined,
    ): Listener | undefined => this.#track(target, type, listener, options);
    const forget = (target: EventTarget, type: string, listener: Listener, options: unknown) =>
      this.#forget(target, listener, `${type}|${capture(options)}`);
    proto.addEventListener = function (
      this: EventTarget,
      type: string,
      listener: Listener | null,
      options?: boolean | AddEventListenerOptions,
    ): void {
      const aborted = typeof options === "object" && options.signal?.aborted === true;
      if (listener === null || aborted) {
        return addEventListener.call(this, type, listener, options);
      }
      const registered = track(this, type, listener, options);
      if (registered !== undefined) addEventListener.call(this, type, registered, options);
    };
    proto.removeEventListener = function (
      this: EventTarget,
      type: string,
      listener: Listener | null,
      options?: boolean | EventListenerOptions,
    ): void {
      const registered = listener === null
        ? null
        : forget(this, type, listener, options) ?? listener;
      removeEventListener.call(this, type, registered, options);
    };
    this.#restore = () => {
      proto.addEventListener = addEventListener;
      proto.removeEventListener = removeEventListener;
    };
  }

  /** Stops counting and puts the real methods back. */
  [Symbol.dispose](): void {
    this.#restore?.();
    this.#restore = undefined;
  }
}

/** The `capture` flag of listener options, which with the type tells registrations apart. */
function capture(options: unknown): boolean {
  if (typeof options === "boolean") return options;
  return typeof options === "object" && options !== null &&
    (options as EventListenerOptions).capture === true;
}

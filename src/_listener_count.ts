/**
 * Which event types an `EventTarget` has listeners for, so that events made
 * on the call path (two state changes and a call, per call) are only made
 * when someone listens: building and dispatching an `Event` costs more than
 * an inline call. `WasmPlugin` and `PluginManager` extend
 * {@linkcode CountedEventTarget}.
 *
 * @module
 */

/**
 * Takes the events of the types it was set for from a
 * {@linkcode CountedEventTarget}, as type and detail: no `Event` is built or
 * dispatched for it. A manager forwards its plugins' events this way, building
 * one event (its own) instead of two.
 */
export type EventTap<Details extends object> = (
  type: keyof Details & string,
  detail: Details[keyof Details],
  target: CountedEventTarget<Details>,
) => void;

const NO_TYPES: ReadonlySet<never> = new Set();

let setTap: <Details extends object>(
  target: CountedEventTarget<Details>,
  tap: EventTap<Details> | null,
  types: ReadonlySet<string>,
) => void;

/**
 * An `EventTarget` that counts its listeners by type (see
 * {@linkcode ListenerCount}), so that it makes the events of a type only when
 * someone takes them: a listener, or the one tap set with
 * {@linkcode tapEvents}. `Details` maps each event type to its payload.
 *
 * Subclasses override `addEventListener` and `removeEventListener` only to
 * type and document them (calling these), and cache what their hot path asks
 * in the `listenersChanged` callback, called after every change of the
 * listeners or the tap.
 *
 * @internal
 */
export class CountedEventTarget<Details extends object> extends EventTarget {
  readonly #listeners = new ListenerCount();
  /** The listeners added with `once` or a `signal`, which leave by themselves, by key. */
  readonly #leaving = new Map<string, LeavingListener>();
  readonly #listenersChanged: (target: CountedEventTarget<Details>) => void;
  #tap: EventTap<Details> | null = null;
  #tapped: ReadonlySet<string> = NO_TYPES;

  static {
    setTap = (target, tap, types) => {
      target.#tap = tap;
      target.#tapped = tap === null ? NO_TYPES : types;
      target.#listenersChanged(target);
    };
  }

  /**
   * @param listenersChanged Called with the target after a listener was
   *   counted or uncounted, or the tap changed.
   */
  constructor(listenersChanged: (target: CountedEventTarget<Details>) => void) {
    super();
    this.#listenersChanged = listenersChanged;
  }

  /** Whether any listener is counted (the tap aside). */
  protected get listened(): boolean {
    return this.#listeners.any;
  }

  /** Whether a listener of `type` is counted (the tap aside). */
  protected listens(type: keyof Details & string): boolean {
    return this.#listeners.has(type);
  }

  /** Whether a listener or the tap takes events of `type`: whether to make them at all. */
  protected wants(type: keyof Details & string): boolean {
    return this.#tapped.has(type) || this.#listeners.has(type);
  }

  /** Hands an event to the tap, if it takes `type`. */
  protected toTap<K extends keyof Details & string>(type: K, detail: Details[K]): void {
    if (this.#tapped.has(type)) this.#tap!(type, detail, this);
  }

  /**
   * Adds a listener, counted. One added with `once` or a `signal` is
   * uncounted when it fires or the signal aborts.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    const { capture, once, signal } = typeof options === "object"
      ? options
      : { capture: options, once: false, signal: undefined };
    // Neither is added by EventTarget: a null listener, or one whose signal has aborted.
    if (listener === null || signal?.aborted === true) {
      return super.addEventListener(type, listener, options);
    }
    const key = listenerKey(type, listener, capture);
    // Added already, EventTarget ignores it (its first options stay).
    if (!this.#listeners.add(type, key)) return;
    this.#listenersChanged(this);
    if (once !== true && signal === undefined) {
      return super.addEventListener(type, listener, options);
    }
    const leave = (): void => {
      if (this.#leaving.get(key) !== leaving) return;
      this.#leaving.delete(key);
      signal?.removeEventListener("abort", leave);
      this.#listeners.remove(type, key);
      this.#listenersChanged(this);
    };
    const added: EventListenerOrEventListenerObject = once !== true ? listener : (event) => {
      leave();
      if (typeof listener === "function") listener.call(this, event);
      else listener.handleEvent(event);
    };
    const leaving: LeavingListener = { added, leave };
    this.#leaving.set(key, leaving);
    signal?.addEventListener("abort", leave, { once: true });
    super.addEventListener(type, added, options);
  }

  /** Removes a listener, uncounted. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    if (listener === null) return super.removeEventListener(type, listener, options);
    const key = listenerKey(
      type,
      listener,
      typeof options === "object" ? options.capture : options,
    );
    const leaving = this.#leaving.get(key);
    if (leaving !== undefined) {
      leaving.leave();
      return super.removeEventListener(type, leaving.added, options);
    }
    if (this.#listeners.remove(type, key)) this.#listenersChanged(this);
    super.removeEventListener(type, listener, options);
  }
}

/** A listener added with `once` or a `signal`: what was given to EventTarget, and its uncounting. */
interface LeavingListener {
  /** The listener itself, or for `once` a wrapper that uncounts it first. */
  readonly added: EventListenerOrEventListenerObject;
  /** Uncounts it (once; later calls do nothing). */
  readonly leave: () => void;
}

/**
 * Sets the tap of `target`: `tap` takes its events of `types` from now on
 * (and `null` removes it). A target has one tap: setting one replaces the last.
 *
 * @param target The target whose events to take.
 * @param tap What takes them, or `null` for nothing.
 * @param types The types it takes.
 */
export function tapEvents<Details extends object>(
  target: CountedEventTarget<Details>,
  tap: EventTap<Details> | null,
  types: ReadonlySet<keyof Details & string> = NO_TYPES,
): void {
  setTap(target, tap, types);
}

/**
 * Counts the listeners of an `EventTarget` by type, each known by the key
 * {@linkcode listenerKey} gives it (how `EventTarget` tells listeners apart).
 */
export class ListenerCount {
  /** The listeners added and not removed. */
  readonly #keys = new Set<string>();
  readonly #byType = new Map<string, number>();
  #total = 0;

  /** Whether any listener is counted. */
  get any(): boolean {
    return this.#total > 0;
  }

  /** Whether a listener of `type` is counted. */
  has(type: string): boolean {
    return (this.#byType.get(type) ?? 0) > 0;
  }

  /** Counts the listener of `type` known by `key`; false if it is counted already. */
  add(type: string, key: string): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    this.#count(type, 1);
    return true;
  }

  /** Uncounts the listener of `type` known by `key`; false if it was not counted. */
  remove(type: string, key: string): boolean {
    if (!this.#keys.delete(key)) return false;
    this.#count(type, -1);
    return true;
  }

  #count(type: string, delta: number): void {
    this.#byType.set(type, (this.#byType.get(type) ?? 0) + delta);
    this.#total += delta;
  }
}

const listenerIds = new WeakMap<object, number>();
let nextListenerId = 0;

/** What `EventTarget` tells listeners apart by: the type, the listener and the capture flag. */
export function listenerKey(type: string, listener: object, capture: boolean | undefined): string {
  let id = listenerIds.get(listener);
  if (id === undefined) listenerIds.set(listener, id = nextListenerId++);
  return `${type} ${id} ${capture === true}`;
}

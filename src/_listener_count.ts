/**
 * Which event types an `EventTarget` has listeners for, so that events made
 * on the call path (two state changes and a call, per call) are only made
 * when someone listens: building and dispatching an `Event` costs more than
 * an inline call. Used by `WasmPlugin` and `PluginManager`.
 *
 * @module
 */

/**
 * Counts the listeners of an `EventTarget` by type, the way it tells them
 * apart (type, listener, capture). Listeners added with `once` or a `signal`
 * leave without `removeEventListener`: they are counted and never uncounted,
 * so events may then be made for nobody, which costs time, not correctness.
 */
export class ListenerCount {
  /** The listeners added and not removed, as `EventTarget` identifies them. */
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

  /** Counts a listener `addEventListener` is given. */
  add(
    type: string,
    listener: object | null,
    options: boolean | AddEventListenerOptions | undefined,
  ): void {
    if (listener === null) return;
    const { capture, once, signal } = typeof options === "object"
      ? options
      : { capture: options, once: false, signal: undefined };
    if (once !== true && signal === undefined) {
      const key = listenerKey(type, listener, capture);
      // Added twice, it is still one listener.
      if (this.#keys.has(key)) return;
      this.#keys.add(key);
    }
    this.#count(type, 1);
  }

  /** Uncounts a listener `removeEventListener` is given. */
  remove(
    type: string,
    listener: object | null,
    options: boolean | EventListenerOptions | undefined,
  ): void {
    if (listener === null) return;
    const capture = typeof options === "object" ? options.capture : options;
    if (this.#keys.delete(listenerKey(type, listener, capture))) this.#count(type, -1);
  }

  #count(type: string, delta: number): void {
    this.#byType.set(type, (this.#byType.get(type) ?? 0) + delta);
    this.#total += delta;
  }
}

const listenerIds = new WeakMap<object, number>();
let nextListenerId = 0;

/** What `EventTarget` tells listeners apart by: the type, the listener and the capture flag. */
function listenerKey(type: string, listener: object, capture: boolean | undefined): string {
  let id = listenerIds.get(listener);
  if (id === undefined) listenerIds.set(listener, id = nextListenerId++);
  return `${type} ${id} ${capture === true}`;
}

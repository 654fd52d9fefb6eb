/**
 * Counts the Workers the host spawns and terminates by swapping the global
 * `Worker` for a subclass, so a soak can tell that no plugin worker outlives
 * its plugin.
 *
 * @module
 */

/** Workers spawned and terminated since {@linkcode WorkerProbe.install}. */
export interface WorkerCounts {
  /** Workers created. */
  readonly spawned: number;
  /** Workers terminated (each counted once). */
  readonly terminated: number;
  /** Spawned and not terminated. */
  readonly live: number;
  /** The most live workers at any moment. */
  readonly peak: number;
}

/**
 * Replaces `globalThis.Worker` while installed. Every way a plugin worker
 * ends (stop, crash, timeout, park) goes through `terminate()`, so a worker
 * still live at the end is one the runtime lost track of. Use it with `using`.
 */
export class WorkerProbe implements Disposable {
  #spawned = 0;
  #terminated = 0;
  #peak = 0;
  #restore: (() => void) | undefined;

  /** Starts counting. */
  static install(): WorkerProbe {
    const probe = new WorkerProbe();
    probe.#install();
    return probe;
  }

  /** The counts so far. */
  counts(): WorkerCounts {
    const live = this.#spawned - this.#terminated;
    return { spawned: this.#spawned, terminated: this.#terminated, live, peak: this.#peak };
  }

  #install(): void {
    const RealWorker = globalThis.Worker;
    const onSpawn = (): void => {
      this.#spawned++;
      this.#peak = Math.max(this.#peak, this.#spawned - this.#terminated);
    };
    const onTerminate = (): void => void this.#terminated++;
    class CountedWorker extends RealWorker {
      #ended = false;
      constructor(specifier: string | URL, options?: WorkerOptions) {
        super(specifier, options);
        onSpawn();
      }
      override terminate(): void {
        if (!this.#ended) {
          this.#ended = true;
          onTerminate();
        }
        super.terminate();
      }
    }
    globalThis.Worker = CountedWorker;
    this.#restore = () => {
      globalThis.Worker = RealWorker;
    };
  }

  /** Stops counting and puts the real `Worker` back. */
  [Symbol.dispose](): void {
    this.#restore?.();
    this.#restore = undefined;
  }
}

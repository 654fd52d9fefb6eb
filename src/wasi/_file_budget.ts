/**
 * The host files WASI guests hold open, counted process-wide. Each plugin's
 * `maxOpenFiles` bounds its own descriptors, but a host with many plugins
 * could still run out of file descriptors (`EMFILE`): then it can open no
 * file or socket, and Deno 2.9 ends the process when it next starts a
 * worker. So guests together may hold at most a budget of files, well
 * under the process's limit; past it, `path_open` answers `ENFILE`.
 *
 * The count lives in a `SharedArrayBuffer` the host makes and every plugin
 * worker adopts, so threads share it. Each plugin instance also counts its
 * own files in a cell of its own, which the host reads back when it ends a
 * worker that could not close them (a crash, a termination): the budget
 * gets them back.
 *
 * @module
 */

import { denoGrants } from "../host/mod.ts";

/** Files guests may hold at most, process-wide. */
export const MAX_GUEST_FILES = 4096;

/**
 * The budget when the process's limit of open files cannot be read (Deno
 * 2.9 lets only a process with every permission read `/proc/self/limits`):
 * half the 1024 many systems set.
 */
export const UNKNOWN_LIMIT_GUEST_FILES = 512;

const HELD = 0;
const BUDGET = 1;

let processCells: Int32Array | undefined;

/** The process's count and budget, made on first use (by the host) or adopted (by a worker). */
function cells(): Int32Array {
  if (processCells !== undefined) return processCells;
  processCells = new Int32Array(new SharedArrayBuffer(8));
  processCells[BUDGET] = guestFileBudget();
  return processCells;
}

/** The buffer of the process-wide count, for plugin workers to adopt. */
export function fileBudgetBuffer(): SharedArrayBuffer {
  return cells().buffer as SharedArrayBuffer;
}

/** Makes this thread count in the host's buffer (a plugin worker, before its first instance). */
export function adoptFileBudget(buffer: SharedArrayBuffer): void {
  processCells = new Int32Array(buffer);
}

/** A new cell for one plugin's count of the files it holds. */
export function newFileCell(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** How many files guests hold now, and may hold at most, process-wide. */
export function guestFiles(): { held: number; budget: number } {
  const process = cells();
  return { held: Atomics.load(process, HELD), budget: Atomics.load(process, BUDGET) };
}

/**
 * Gives back to the budget the files of a plugin whose worker ended without
 * closing them, and zeroes its cell. Call it once the worker is terminated.
 */
export function returnFiles(cell: SharedArrayBuffer): void {
  const count = Atomics.exchange(new Int32Array(cell), 0, 0);
  if (count > 0) Atomics.sub(cells(), HELD, count);
}

/** Counts the files one WASI instance holds, in the process's budget and in its own cell. */
export class FileCount {
  readonly #own: Int32Array | null;

  /** @param cell The plugin's cell (see {@linkcode newFileCell}), if the host keeps one. */
  constructor(cell: SharedArrayBuffer | null) {
    this.#own = cell === null ? null : new Int32Array(cell);
  }

  /** Takes one file from the budget; `false`, taking nothing, when it is spent. */
  take(): boolean {
    const process = cells();
    if (Atomics.add(process, HELD, 1) >= Atomics.load(process, BUDGET)) {
      Atomics.sub(process, HELD, 1);
      return false;
    }
    if (this.#own !== null) Atomics.add(this.#own, 0, 1);
    return true;
  }

  /** Gives one file back. */
  release(): void {
    Atomics.sub(cells(), HELD, 1);
    if (this.#own !== null) Atomics.sub(this.#own, 0, 1);
  }
}

/**
 * Half the process's limit of open files when Linux says it and Deno lets
 * this thread read it (asked first: never a prompt), at most
 * {@linkcode MAX_GUEST_FILES}; {@linkcode UNKNOWN_LIMIT_GUEST_FILES}
 * otherwise.
 */
function guestFileBudget(): number {
  const path = "/proc/self/limits";
  if (!denoGrants({ name: "read", path })) return UNKNOWN_LIMIT_GUEST_FILES;
  try {
    const line = Deno.readTextFileSync(path).split("\n").find((row) =>
      row.startsWith("Max open files")
    );
    const soft = Number(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
    return Number.isSafeInteger(soft) && soft > 0
      ? Math.min(MAX_GUEST_FILES, Math.floor(soft / 2))
      : UNKNOWN_LIMIT_GUEST_FILES;
  } catch {
    return UNKNOWN_LIMIT_GUEST_FILES;
  }
}

/**
 * Bounds-checked access to a plugin's linear memory from the host.
 *
 * @module
 */

import { copyBytes, lenientUtf8 } from "../common/mod.ts";
import { MemoryOutOfBoundsError } from "../errors.ts";

/**
 * Picks the memory that the host reads and writes: the export named
 * `memory`, else the module's only exported memory.
 */
export function findExportedMemory(
  exports: WebAssembly.Exports,
): WebAssembly.Memory | undefined {
  const named = exports.memory;
  if (named instanceof WebAssembly.Memory) return named;
  let only: WebAssembly.Memory | undefined;
  for (const [name, value] of Object.entries(exports)) {
    // The instrumenter's own exports are not the plugin's.
    if (!(value instanceof WebAssembly.Memory) || name.startsWith("__wasmplug_")) continue;
    if (only !== undefined) return undefined;
    only = value;
  }
  return only;
}

/** A view of a plugin's memory that never reads or writes outside it. */
export class GuestMemory {
  #memory: WebAssembly.Memory | undefined;
  /**
   * All of the memory's bytes as of the last look, or `null` without a
   * memory. A memory that grows detaches its old buffer (this view's length
   * becomes 0), or for a shared memory leaves it shorter: an access past
   * its end looks at the memory again.
   */
  #all: Uint8Array | null = null;
  /**
   * Bytes accessed since the last {@linkcode takeTouched}: the host functions
   * of an instrumented instance are paced by the guest memory they move
   * (see `InstanceLimits.hostCallEnded`).
   */
  #touched = 0;

  /** The bytes accessed since the last call of this, which starts the count again. */
  takeTouched(): number {
    const touched = this.#touched;
    this.#touched = 0;
    return touched;
  }

  /** Attaches the instance's memory (after instantiation). */
  attach(memory: WebAssembly.Memory | undefined): void {
    this.#memory = memory;
    this.#all = memory === undefined ? null : new Uint8Array(memory.buffer);
  }

  /** Current size in bytes, 0 without a memory. */
  get byteLength(): number {
    return this.#memory?.buffer.byteLength ?? 0;
  }

  /** Returns a live view of `[offset, offset + length)` after checking bounds. */
  view(offset: number, length: number): Uint8Array {
    const memory = this.#memory;
    if (memory === undefined) {
      throw new MemoryOutOfBoundsError(
        'The plugin has no memory the host can access: export one named "memory" (or exactly one memory)',
        { offset, size: length },
      );
    }
    const buffer = memory.buffer;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > buffer.byteLength
    ) {
      throw new MemoryOutOfBoundsError(
        `Memory access out of bounds: ${length} bytes at offset ${offset} exceed the memory of ${buffer.byteLength} bytes`,
        { offset, size: length },
      );
    }
    this.#touched += length;
    return new Uint8Array(buffer, offset, length);
  }

  /** Copies bytes out of memory. */
  read(offset: number, length: number): Uint8Array {
    return this.view(offset, length).slice();
  }

  /** Copies bytes into memory. */
  write(offset: number, data: Uint8Array): void {
    copyBytes(this.#checked(offset, data.length), offset, data, 0, data.length);
  }

  /** Copies `[offset, offset + length)` into `target` from its start (which must be long enough). */
  copyOut(offset: number, length: number, target: Uint8Array): void {
    copyBytes(target, 0, this.#checked(offset, length), offset, length);
  }

  /**
   * All of the memory's bytes once `[offset, offset + length)` is checked
   * to lie inside: no view is made for the access (see `copyBytes`).
   */
  #checked(offset: number, length: number): Uint8Array {
    const all = this.#all;
    if (
      all !== null && Number.isSafeInteger(offset) && Number.isSafeInteger(length) &&
      offset >= 0 && length >= 0 && offset + length <= all.length
    ) {
      this.#touched += length;
      return all;
    }
    this.view(offset, length); // Throws why (or counts), unless the memory grew since the last look.
    return this.#all = new Uint8Array(this.#memory!.buffer);
  }

  /** Decodes UTF-8 (invalid sequences become U+FFFD). */
  readString(offset: number, length: number): string {
    return lenientUtf8.decode(this.view(offset, length));
  }

  /**
   * Writes `data` at `[offset, offset + capacity)` when it fits, and returns
   * its full length either way (the `out_ptr, out_cap` convention of the ABI).
   */
  writeResult(offset: number, capacity: number, data: Uint8Array): number {
    const view = this.view(offset, capacity);
    if (data.length <= capacity) view.set(data);
    return data.length;
  }
}

/** Reads a wasm i32 pointer or length as the unsigned offset it stands for. */
export function unsigned(value: number): number {
  return value >>> 0;
}

import assert from "node:assert/strict";
import { MemoryOutOfBoundsError } from "../../mod.ts";
import { GuestMemory } from "../../src/host/mod.ts";

const PAGE = 65_536;

Deno.test("GuestMemory writes and copies out inside the memory, and refuses the rest", () => {
  const memory = new GuestMemory();
  memory.attach(new WebAssembly.Memory({ initial: 1 }));
  memory.write(PAGE - 3, new Uint8Array([1, 2, 3]));
  const out = new Uint8Array(3);
  memory.copyOut(PAGE - 3, 3, out);
  assert.deepEqual(out, new Uint8Array([1, 2, 3]));
  for (const [offset, length] of [[PAGE - 2, 3], [-1, 1], [1.5, 1], [PAGE + 1, 0]] as const) {
    assert.throws(() => memory.write(offset, new Uint8Array(length)), MemoryOutOfBoundsError);
    assert.throws(() => memory.copyOut(offset, length, new Uint8Array(8)), MemoryOutOfBoundsError);
  }
  assert.throws(() => memory.copyOut(0, -1, new Uint8Array(8)), MemoryOutOfBoundsError);
});

Deno.test("GuestMemory follows its memory as it grows, shared or not", () => {
  for (const shared of [false, true]) {
    const raw = new WebAssembly.Memory({ initial: 1, maximum: 4, shared });
    const memory = new GuestMemory();
    memory.attach(raw);
    memory.write(10, new Uint8Array([7]));
    raw.grow(1);
    // Below the old end (a detached buffer must not take it), and past it.
    memory.write(11, new Uint8Array([8]));
    memory.write(PAGE + 5, new Uint8Array([9]));
    const bytes = new Uint8Array(raw.buffer);
    assert.deepEqual([bytes[10], bytes[11], bytes[PAGE + 5]], [7, 8, 9], `shared: ${shared}`);
    const out = new Uint8Array(2);
    memory.copyOut(10, 2, out);
    assert.deepEqual(out, new Uint8Array([7, 8]));
  }
});

Deno.test("GuestMemory without a memory refuses every access, even an empty one", () => {
  const memory = new GuestMemory();
  memory.attach(undefined);
  assert.throws(() => memory.write(0, new Uint8Array()), MemoryOutOfBoundsError);
  assert.throws(() => memory.copyOut(0, 0, new Uint8Array()), MemoryOutOfBoundsError);
});

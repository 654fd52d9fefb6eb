import assert from "node:assert/strict";
import { copyBytes } from "../../src/common/_copy_bytes.ts";

Deno.test("copyBytes copies a range between buffers, short or long", () => {
  const source = new Uint8Array(300).map((_, i) => i % 251);
  for (const length of [0, 1, 16, 64, 65, 200]) {
    const target = new Uint8Array(length + 4).fill(0xee);
    copyBytes(target, 2, source, 7, length);
    assert.deepEqual(target.subarray(2, 2 + length), source.subarray(7, 7 + length), `${length}`);
    assert.deepEqual([target[0], target[1], target[length + 2], target[length + 3]], [
      0xee,
      0xee,
      0xee,
      0xee,
    ]);
  }
});

Deno.test("copyBytes reads from and writes into shared memory", () => {
  const shared = new Uint8Array(new SharedArrayBuffer(32));
  copyBytes(shared, 8, new Uint8Array([1, 2, 3]), 0, 3);
  const out = new Uint8Array(3);
  copyBytes(out, 0, shared, 8, 3);
  assert.deepEqual(out, new Uint8Array([1, 2, 3]));
});

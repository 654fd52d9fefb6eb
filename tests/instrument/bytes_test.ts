import assert from "node:assert/strict";
import { BinaryFormatError, ByteReader, ByteWriter } from "../../src/instrument/_bytes.ts";

function reader(...bytes: number[]): ByteReader {
  return new ByteReader(new Uint8Array(bytes));
}

/** Asserts that `read` fails with a BinaryFormatError whose message and offset match. */
function assertFails(read: () => unknown, message: RegExp, offset: number): void {
  assert.throws(read, (error: unknown) => {
    assert.ok(error instanceof BinaryFormatError, `expected BinaryFormatError, got ${error}`);
    assert.match(error.message, message);
    assert.equal(error.offset, offset);
    return true;
  });
}

const FF9 = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const X80_9 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80];

Deno.test("ByteReader.u32() decodes unsigned 32-bit LEB128", async (t) => {
  await t.step("reads zero, one-byte and maximum values", () => {
    assert.equal(reader(0x00).u32(), 0);
    assert.equal(reader(0x7f).u32(), 127);
    assert.equal(reader(0x80, 0x01).u32(), 128);
    assert.equal(reader(0xff, 0xff, 0xff, 0xff, 0x0f).u32(), 0xffffffff);
  });
  await t.step("accepts non-minimal encodings up to five bytes", () => {
    const r = reader(0x80, 0x80, 0x80, 0x80, 0x00, 0x81, 0x80, 0x00);
    assert.equal(r.u32(), 0);
    assert.equal(r.pos, 5);
    assert.equal(r.u32(), 1);
    assert.equal(r.pos, 8);
  });
  await t.step("rejects unused bits set in the fifth byte", () => {
    assertFails(() => reader(0xff, 0xff, 0xff, 0xff, 0x1f).u32(), /Integer too large/, 0);
    assertFails(() => reader(0x80, 0x80, 0x80, 0x80, 0x40).u32(), /Integer too large/, 0);
  });
  await t.step("rejects a sixth byte", () => {
    assertFails(
      () => reader(0x80, 0x80, 0x80, 0x80, 0x80, 0x00).u32(),
      /Integer representation too long/,
      0,
    );
  });
  await t.step("rejects truncated input at the offset of the missing byte", () => {
    assertFails(() => reader(0x80, 0x80).u32(), /Unexpected end of input/, 2);
  });
  await t.step("reports offsets relative to the module through base", () => {
    const r = new ByteReader(new Uint8Array([0x00, 0xff, 0xff, 0xff, 0xff, 0x7f]), {
      start: 1,
      base: 100,
    });
    assertFails(() => r.u32(), /Integer too large at byte offset 101$/, 101);
  });
});

Deno.test("ByteReader.s32() decodes signed 32-bit LEB128", async (t) => {
  await t.step("reads extremes and short negative encodings", () => {
    assert.equal(reader(0x7f).s32(), -1);
    assert.equal(reader(0x40).s32(), -64);
    assert.equal(reader(0x3f).s32(), 63);
    assert.equal(reader(0xc0, 0x00).s32(), 64);
    assert.equal(reader(0xff, 0xff, 0xff, 0xff, 0x07).s32(), 0x7fffffff);
    assert.equal(reader(0x80, 0x80, 0x80, 0x80, 0x78).s32(), -0x80000000);
  });
  await t.step("accepts non-minimal encodings", () => {
    assert.equal(reader(0xff, 0xff, 0xff, 0xff, 0x7f).s32(), -1);
    assert.equal(reader(0x80, 0x80, 0x80, 0x80, 0x00).s32(), 0);
    assert.equal(reader(0xff, 0x7f).s32(), -1);
  });
  await t.step("rejects a fifth byte whose unused bits differ from the sign", () => {
    assertFails(() => reader(0xff, 0xff, 0xff, 0xff, 0x0f).s32(), /Integer too large/, 0);
    assertFails(() => reader(0x80, 0x80, 0x80, 0x80, 0x70).s32(), /Integer too large/, 0);
    assertFails(() => reader(0x80, 0x80, 0x80, 0x80, 0x1f).s32(), /Integer too large/, 0);
  });
  await t.step("rejects a sixth byte", () => {
    assertFails(
      () => reader(0xff, 0xff, 0xff, 0xff, 0xff, 0x7f).s32(),
      /Integer representation too long/,
      0,
    );
  });
});

Deno.test("ByteReader.s33() decodes block-type LEB128", async (t) => {
  await t.step("sign-extends one-byte encodings", () => {
    assert.equal(reader(0x40).s33(), -64);
    assert.equal(reader(0x7f).s33(), -1);
    assert.equal(reader(0x70).s33(), -16);
    assert.equal(reader(0x05).s33(), 5);
  });
  await t.step("reads the 33-bit extremes", () => {
    assert.equal(reader(0xff, 0xff, 0xff, 0xff, 0x0f).s33(), 0xffffffff);
    assert.equal(reader(0x80, 0x80, 0x80, 0x80, 0x70).s33(), -(2 ** 32));
  });
  await t.step("accepts non-minimal encodings", () => {
    assert.equal(reader(0xff, 0xff, 0xff, 0xff, 0x7f).s33(), -1);
    assert.equal(reader(0x83, 0x80, 0x00).s33(), 3);
  });
  await t.step("rejects overflow and over-long encodings", () => {
    assertFails(() => reader(0x80, 0x80, 0x80, 0x80, 0x20).s33(), /Integer too large/, 0);
    assertFails(() => reader(0xff, 0xff, 0xff, 0xff, 0x5f).s33(), /Integer too large/, 0);
    assertFails(
      () => reader(0x80, 0x80, 0x80, 0x80, 0x80, 0x00).s33(),
      /Integer representation too long/,
      0,
    );
  });
});

Deno.test("ByteReader.u64() decodes unsigned 64-bit LEB128", async (t) => {
  await t.step("reads zero and the maximum", () => {
    assert.equal(reader(0x00).u64(), 0n);
    assert.equal(reader(...FF9, 0x01).u64(), 2n ** 64n - 1n);
  });
  await t.step("accepts a ten-byte zero", () => {
    assert.equal(reader(...X80_9, 0x00).u64(), 0n);
  });
  await t.step("rejects overflow and over-long encodings", () => {
    assertFails(() => reader(...FF9, 0x02).u64(), /Integer too large/, 0);
    assertFails(() => reader(...X80_9, 0x80, 0x00).u64(), /Integer representation too long/, 0);
  });
});

Deno.test("ByteReader.s64() decodes signed 64-bit LEB128", async (t) => {
  await t.step("sign-extends short encodings", () => {
    assert.equal(reader(0x7f).s64(), -1n);
    assert.equal(reader(0x40).s64(), -64n);
    assert.equal(reader(0x80, 0x7f).s64(), -128n);
  });
  await t.step("reads the 64-bit extremes", () => {
    assert.equal(reader(...FF9, 0x00).s64(), 2n ** 63n - 1n);
    assert.equal(reader(...X80_9, 0x7f).s64(), -(2n ** 63n));
    assert.equal(reader(...FF9, 0x7f).s64(), -1n);
  });
  await t.step("rejects a tenth byte that is not a pure sign extension", () => {
    assertFails(() => reader(...FF9, 0x01).s64(), /Integer too large/, 0);
    assertFails(() => reader(...X80_9, 0x7e).s64(), /Integer too large/, 0);
    assertFails(() => reader(...X80_9, 0x80, 0x00).s64(), /Integer too large/, 0);
  });
});

Deno.test("ByteWriter round-trips through ByteReader with minimal encodings", async (t) => {
  await t.step("u32", () => {
    for (const value of [0, 1, 127, 128, 16383, 16384, 2 ** 31, 0xffffffff]) {
      const bytes = new ByteWriter().u32(value).finish();
      assert.equal(bytes.length, Math.max(1, Math.ceil(Math.log2(value + 1) / 7)));
      const r = new ByteReader(bytes);
      assert.equal(r.u32(), value);
      assert.ok(r.done);
    }
  });
  await t.step("s32", () => {
    for (const value of [0, 1, -1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31)]) {
      const r = new ByteReader(new ByteWriter().s32(value).finish());
      assert.equal(r.s32(), value);
      assert.ok(r.done);
    }
    assert.deepEqual([...new ByteWriter().s32(-64).finish()], [0x40]);
    assert.deepEqual([...new ByteWriter().s32(64).finish()], [0xc0, 0x00]);
  });
  await t.step("u64", () => {
    for (const value of [0n, 127n, 128n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]) {
      const r = new ByteReader(new ByteWriter().u64(value).finish());
      assert.equal(r.u64(), value);
      assert.ok(r.done);
    }
  });
  await t.step("s64, also through s33 where it fits", () => {
    for (const value of [0n, -1n, 63n, -64n, 64n, -65n, 2n ** 32n - 1n, -(2n ** 32n)]) {
      const bytes = new ByteWriter().s64(value).finish();
      assert.equal(new ByteReader(bytes).s64(), value);
      assert.equal(new ByteReader(bytes).s33(), Number(value));
    }
    for (const value of [2n ** 63n - 1n, -(2n ** 63n)]) {
      assert.equal(new ByteReader(new ByteWriter().s64(value).finish()).s64(), value);
    }
  });
  await t.step("names, including non-ASCII", () => {
    const r = new ByteReader(new ByteWriter().name("").name("häst 🐎").finish());
    assert.equal(r.name(), "");
    assert.equal(r.name(), "häst 🐎");
    assert.ok(r.done);
  });
  await t.step("grows past its initial capacity", () => {
    const writer = new ByteWriter(1);
    for (let i = 0; i < 1000; i++) writer.u32(i);
    const r = new ByteReader(writer.finish());
    for (let i = 0; i < 1000; i++) assert.equal(r.u32(), i);
  });
});

Deno.test("ByteReader rejects malformed names and short ranges", async (t) => {
  await t.step("malformed UTF-8 fails at the name's bytes", () => {
    const r = new ByteReader(new Uint8Array([0x00, 0x02, 0xc3, 0x28]), { start: 1 });
    assertFails(() => r.name(), /Malformed UTF-8/, 2);
  });
  await t.step("a name longer than the input fails", () => {
    assertFails(() => reader(0x05, 0x61).name(), /Expected 5 bytes, 1 remain/, 1);
  });
  await t.step("reads stop at the range end, not the buffer end", () => {
    const r = new ByteReader(new Uint8Array([0x01, 0x02, 0x03]), { end: 1 });
    assert.equal(r.u8(), 1);
    assertFails(() => r.u8(), /Unexpected end of input/, 1);
  });
  await t.step("a range beyond the buffer is a RangeError", () => {
    assert.throws(() => new ByteReader(new Uint8Array(2), { end: 3 }), RangeError);
    assert.throws(() => new ByteReader(new Uint8Array(2), { start: 2, end: 1 }), RangeError);
  });
});

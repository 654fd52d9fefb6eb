/**
 * The call channel between the host and a worker: the wire format, and the
 * wake-ups (spin, sleep, the process's one doorbell) with real threads.
 */

import assert from "node:assert/strict";
import { ResourceLimitError } from "../../mod.ts";
import {
  CHANNEL_HEADER_BYTES,
  type ChannelBuffers,
  ChannelWaits,
  createChannelBuffers,
  createLaneBuffers,
  HostChannel,
} from "../../src/worker/_channel.ts";
import {
  exportIndex,
  exportName,
  packBytesShape,
  unpackBytesShape,
} from "../../src/worker/_protocol.ts";
import { readMessage, wireBuffer, type WireValue, writeMessage } from "../../src/worker/_wire.ts";

const ECHO = new URL("./fixtures/echo_channel.ts", import.meta.url);

/**
 * A worker answering on its own channel (see `fixtures/echo_channel.ts`);
 * `bulkBytes`: the most its bulk buffer may grow to.
 */
async function echoWorker(
  { bulkBytes }: { bulkBytes?: number } = {},
): Promise<{ channel: HostChannel; buffers: ChannelBuffers } & AsyncDisposable> {
  const buffers: ChannelBuffers = createChannelBuffers(
    bulkBytes === undefined ? undefined : new SharedArrayBuffer(1024, { maxByteLength: bulkBytes }),
  );
  const worker = new Worker(ECHO, { type: "module" });
  await new Promise((resolve, reject) => {
    worker.onmessage = resolve;
    worker.onerror = reject;
    worker.postMessage(buffers);
  });
  const channel = new HostChannel(buffers);
  return {
    channel,
    buffers,
    [Symbol.asyncDispose]() {
      channel.close();
      worker.terminate();
      return Promise.resolve();
    },
  };
}

Deno.test("the wire carries every kind of value, and long or non-ASCII text", () => {
  const wire = wireBuffer(new SharedArrayBuffer(64, { maxByteLength: 1 << 20 }));
  const values: WireValue[] = [
    0,
    -0,
    -1.5,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    2 ** 53,
    Number.NaN,
    -Infinity,
    2n ** 63n - 1n,
    -(2n ** 63n),
    null,
    undefined,
    "",
    "add",
    "héllo wörld ✓",
    "\u0000\u007f",
    "x".repeat(65),
    "é".repeat(40),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(0),
  ];
  writeMessage(wire, 7, values);
  const message = readMessage(wire);
  assert.equal(message.op, 7);
  assert.deepEqual(message.values, values);
});

Deno.test("the wire writes after the channel's header, and a call's request and answer fit in one cache line", () => {
  const buffer = new SharedArrayBuffer(256, { maxByteLength: 1 << 20 });
  const header = new Uint8Array(buffer, 0, CHANNEL_HEADER_BYTES).fill(0xff);
  const wire = wireBuffer(buffer, CHANNEL_HEADER_BYTES);
  // A call of add(i, 1) (export 3) with a fuel and a time budget, and its answer (result, fuel
  // used, memory).
  const request: WireValue[] = [123_456, 1, 3, 10_000_000, 30_000];
  assert.ok(writeMessage(wire, 1, request) <= 64);
  assert.deepEqual(readMessage(wire), { op: 1, values: request });
  assert.ok(writeMessage(wire, 2, [123_457, 1_234, 20 * 65_536]) <= 64);
  assert.deepEqual(readMessage(wire).values, [123_457, 1_234, 20 * 65_536]);
  // A bytes call of 16 B: export, budgets, shape and input; its answer: output, fuel, memory.
  const input = new Uint8Array(16).fill(7);
  const bytesRequest: WireValue[] = [3, 10_000_000, 30_000, 5, input];
  assert.ok(writeMessage(wire, 15, bytesRequest) <= 64);
  assert.deepEqual(readMessage(wire).values, bytesRequest);
  assert.ok(writeMessage(wire, 10, [input, 2_345, 20 * 65_536]) <= 64);
  assert.ok(header.every((byte) => byte === 0xff));
});

Deno.test("a short message copies no bytes of another channel's messages into its buffer", () => {
  const first = new SharedArrayBuffer(256, { maxByteLength: 1 << 20 });
  const second = new SharedArrayBuffer(256, { maxByteLength: 1 << 20 });
  writeMessage(wireBuffer(first, CHANNEL_HEADER_BYTES), 1, ["x".repeat(40)]);
  const end = writeMessage(wireBuffer(second, CHANNEL_HEADER_BYTES), 1, [7]);
  assert.ok(new Uint8Array(first).includes(120), "the first channel holds its message");
  assert.ok(!new Uint8Array(second, end, 64 - end).includes(120));
});

Deno.test("the wire grows its buffer, and a reader with older views sees the growth", () => {
  const buffer = new SharedArrayBuffer(64, { maxByteLength: 1 << 22 });
  const writer = wireBuffer(buffer);
  const reader = wireBuffer(buffer);
  writeMessage(writer, 1, ["small"]);
  assert.deepEqual(readMessage(reader).values, ["small"]);
  const big = new Uint8Array(1 << 20).map((_, i) => i % 251);
  writeMessage(writer, 2, [big, "after"]);
  assert.ok(buffer.byteLength >= big.length);
  const message = readMessage(reader);
  assert.deepEqual(message.values, [big, "after"]);
  // Views into the buffer are only asked for when the bytes are consumed at once.
  const views = readMessage(reader, true);
  assert.equal((views.values[0] as Uint8Array).buffer, buffer);
});

Deno.test("the wire copies bytes into the spare buffer only if it has their length, once", () => {
  const buffer = new SharedArrayBuffer(256, { maxByteLength: 1 << 20 });
  const writer = wireBuffer(buffer);
  const reader = wireBuffer(buffer);
  const spare = new Uint8Array(3);
  reader.spare = spare;
  writeMessage(writer, 1, [new Uint8Array([1, 2]), "abc"]);
  const other = readMessage(reader).values[0] as Uint8Array;
  assert.notEqual(other, spare, "a value of another length is a buffer of its own");
  assert.equal(reader.spare, spare, "the spare waits for a value of its length");
  writeMessage(writer, 2, [new Uint8Array([4, 5, 6]), new Uint8Array([7, 8, 9])]);
  const [first, second] = readMessage(reader).values as Uint8Array[];
  assert.equal(first, spare);
  assert.deepEqual(spare, new Uint8Array([4, 5, 6]));
  assert.notEqual(second!.buffer, spare.buffer, "the spare is used once");
  assert.deepEqual(second, new Uint8Array([7, 8, 9]));
  assert.equal(reader.spare, undefined);
});

Deno.test("the wire refuses a message above the buffer's maximum with a RangeError", () => {
  const wire = wireBuffer(new SharedArrayBuffer(64, { maxByteLength: 1024 }));
  assert.throws(
    () => writeMessage(wire, 1, [new Uint8Array(2048)]),
    (err: unknown) => err instanceof RangeError && /limit is 1024/.test(err.message),
  );
  // The next message is written whole.
  writeMessage(wire, 3, ["next", 1]);
  assert.deepEqual(readMessage(wire).values, ["next", 1]);
});

Deno.test("a channel answers many round trips in order", async () => {
  await using echo = await echoWorker();
  for (let i = 0; i < 2_000; i++) {
    echo.channel.post(10, [0, i, `call ${i}`]);
    const reply = echo.channel.poll() ?? await echo.channel.receive();
    assert.deepEqual(reply, { op: 11, values: [0, i, `call ${i}`] });
  }
});

Deno.test("a message too long for its channel goes both ways through the bulk buffer, which alone grows", async () => {
  await using echo = await echoWorker();
  const channelBytes = echo.buffers.data.byteLength;
  for (const length of [channelBytes, 1 << 20, 16, 3 << 20, channelBytes - 64]) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 13 + length) & 0xff);
    echo.channel.post(1, [0, bytes, "after"]);
    const reply = echo.channel.poll() ?? await echo.channel.receive();
    assert.deepEqual(reply, { op: 2, values: [0, bytes, "after"] });
  }
  assert.equal(echo.buffers.data.byteLength, channelBytes);
  assert.ok(echo.buffers.bulk.byteLength >= 3 << 20);
});

Deno.test("a message too long for the bulk buffer is a ResourceLimitError, and the next one goes through", async () => {
  await using echo = await echoWorker({ bulkBytes: 256 * 1024 });
  assert.throws(
    () => echo.channel.post(1, [0, new Uint8Array(300 * 1024)]),
    (err: unknown) =>
      err instanceof ResourceLimitError && err.limit === "MAX_WORKER_MESSAGE_BYTES" &&
      /limit is 262144/.test(err.message) && err.cause instanceof RangeError,
  );
  const bytes = new Uint8Array(200 * 1024).fill(7);
  echo.channel.post(1, [0, bytes]);
  assert.deepEqual(await echo.channel.receive(10_000), { op: 2, values: [0, bytes] });
});

Deno.test("the channels of one worker share one bulk buffer", () => {
  const [first, ...others] = createLaneBuffers(4);
  assert.equal(others.length, 3);
  for (const buffers of others) {
    assert.equal(buffers.bulk, first!.bulk);
    assert.notEqual(buffers.data, first!.data);
  }
});

Deno.test("a sleeping receive wakes when the worker answers late, and times out when it does not", async () => {
  await using echo = await echoWorker();
  echo.channel.post(1, [30]);
  assert.equal(echo.channel.poll(), undefined);
  assert.deepEqual(await echo.channel.receive(), { op: 2, values: [30] });

  echo.channel.post(1, [2_000]);
  const started = performance.now();
  assert.equal(await echo.channel.receive(20), undefined);
  assert.ok(performance.now() - started < 1_500, "the timeout ended the wait, not the answer");
  // The late answer is still taken by the next receive.
  assert.deepEqual(await echo.channel.receive(), { op: 2, values: [2_000] });
});

Deno.test("closing a channel ends a sleeping receive with undefined", async () => {
  await using echo = await echoWorker();
  echo.channel.post(1, [5_000]);
  const pending = echo.channel.receive();
  setTimeout(() => echo.channel.close(), 20);
  assert.equal(await pending, undefined);
  assert.equal(await echo.channel.receive(), undefined);
});

Deno.test("one doorbell wakes the host for every channel that answered", async () => {
  const workers = await Promise.all(Array.from({ length: 6 }, () => echoWorker()));
  try {
    for (let round = 0; round < 20; round++) {
      // All sleep at once (the workers take a moment), and all wake.
      const replies = await Promise.all(workers.map(({ channel }, i) => {
        channel.post(1, [1, round, i]);
        return channel.receive(10_000);
      }));
      assert.deepEqual(
        replies,
        workers.map((_, i) => ({ op: 2, values: [1, round, i] })),
      );
    }
  } finally {
    await Promise.all(workers.map((echo) => echo[Symbol.asyncDispose]()));
  }
});

Deno.test("an answer late to the host's spin is judged by the work the call did", () => {
  const waits = new ChannelWaits();
  // Two late answers of calls that did little: the worker waited for a core, so the host
  // skips its next spin and sleeps (one failure alone is forgiven).
  for (let i = 0; i < 2; i++) {
    waits.lateAnswer = true;
    waits.judgeLateAnswer(false);
  }
  assert.equal(waits.lateAnswer, false);
  assert.equal(waits.followers.skip(), true);
  assert.equal(waits.followers.skip(), false);
  // A late answer of a call that worked (a 20 µs guest) is worth the spin: none is skipped.
  waits.lateAnswer = true;
  waits.judgeLateAnswer(true);
  assert.equal(waits.followers.skip(), false);
  for (let i = 0; i < 2; i++) waits.followers.failed();
  waits.judgeLateAnswer(true);
  assert.equal(waits.followers.skip(), true, "without a late answer waiting, nothing is judged");
});

Deno.test("a bytes call's shape packs into one integer and back, for every allocator and free", () => {
  for (const packedOutput of [false, true]) {
    for (const alloc of ["alloc", "malloc"] as const) {
      for (const free of [null, "dealloc", "free"] as const) {
        const shape = { packedOutput, alloc, free };
        const packed = packBytesShape(shape);
        assert.ok(Number.isInteger(packed) && packed >= 0 && packed < 16);
        assert.deepEqual(unpackBytesShape(packed), shape);
      }
    }
  }
});

Deno.test("a request names its export by its index in the module's exports, or by name", () => {
  // (module (memory (export "memory") 1) (func (export "f")) (func (export "g")))
  const module = new WebAssembly.Module(
    new Uint8Array([
      0,
      97,
      115,
      109,
      1,
      0,
      0,
      0,
      1,
      4,
      1,
      96,
      0,
      0,
      3,
      3,
      2,
      0,
      0,
      5,
      3,
      1,
      0,
      1,
      7,
      18,
      3,
      6,
      109,
      101,
      109,
      111,
      114,
      121,
      2,
      0,
      1,
      102,
      0,
      0,
      1,
      103,
      0,
      1,
      10,
      7,
      2,
      2,
      0,
      11,
      2,
      0,
      11,
    ]),
  );

  const index = exportIndex(module);
  assert.deepEqual([...index], [["memory", 0], ["f", 1], ["g", 2]]);
  const names = WebAssembly.Module.exports(module).map(({ name }) => name);
  assert.equal(exportName(names, index.get("g")), "g");
  assert.equal(exportName(names, "not-indexed"), "not-indexed");
  assert.throws(() => exportName(names, 7), RangeError);
});

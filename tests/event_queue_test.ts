import assert from "node:assert/strict";
import { PluginEvent } from "../mod.ts";
import { EventQueue } from "../src/_event_queue.ts";

function event(n: number): PluginEvent {
  return new PluginEvent("loaded", `p-${n}`, { name: String(n) });
}

async function readAll(queue: EventQueue, count: number): Promise<number[]> {
  const read: number[] = [];
  for (let i = 0; i < count; i++) {
    const { value, done } = await queue.next();
    assert.equal(done, false);
    read.push(Number(value!.pluginId.slice("p-".length)));
  }
  return read;
}

Deno.test("EventQueue keeps the newest events, in order, however many pass through", async (t) => {
  await t.step("a full buffer drops the oldest, and counts them", async () => {
    const queue = new EventQueue(3, () => {});
    for (let n = 0; n < 5; n++) queue.push(event(n));
    assert.equal(queue.dropped, 2);
    assert.equal(queue.pending, 3);
    assert.deepEqual(await readAll(queue, 3), [2, 3, 4]);
    assert.equal(queue.pending, 0);
  });

  await t.step(
    "a large buffer read and overflowed many times over matches a plain array",
    async () => {
      const size = 5000;
      const queue = new EventQueue(size, () => {});
      const model: number[] = [];
      let dropped = 0;
      let next = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 3000; i++) {
          queue.push(event(next));
          model.push(next++);
          if (model.length > size) {
            model.shift();
            dropped++;
          }
        }
        assert.deepEqual(await readAll(queue, 2000), model.splice(0, 2000));
        assert.equal(queue.pending, model.length);
      }
      assert.ok(dropped > 0);
      assert.equal(queue.dropped, dropped);
      assert.deepEqual(await readAll(queue, model.length), model);
      assert.equal(queue.pending, 0);
    },
  );

  await t.step("a waiting reader gets the next push; return() discards the rest", async () => {
    let ended = 0;
    const queue = new EventQueue(10, () => ended++);
    const waiting = queue.next();
    queue.push(event(7));
    assert.equal((await waiting).value?.pluginId, "p-7");
    queue.push(event(8));
    await queue.return();
    assert.equal(queue.pending, 0);
    assert.equal(ended, 1);
    assert.deepEqual(await queue.next(), { value: undefined, done: true });
  });

  await t.step("end() lets the buffered events be read first", async () => {
    const queue = new EventQueue(10, () => {});
    queue.push(event(1));
    queue.end();
    queue.push(event(2));
    assert.deepEqual(await readAll(queue, 1), [1]);
    assert.equal((await queue.next()).done, true);
  });
});

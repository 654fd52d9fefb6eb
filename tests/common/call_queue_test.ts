import assert from "node:assert/strict";
import { CallQueue } from "../../src/common/_call_queue.ts";

/** Takes a turn, waiting when it is taken: the one line a caller writes. */
async function turnOf(queue: CallQueue): Promise<Disposable> {
  const taken = queue.take();
  return taken instanceof Promise ? await taken : taken;
}

Deno.test("CallQueue gives one turn at a time, in the order it was asked for", async (t) => {
  await t.step("a free queue gives its turn at once, with no promise", () => {
    const queue = new CallQueue();
    const turn = queue.take();
    assert.ok(!(turn instanceof Promise));
    assert.equal(queue.busy, true);
    turn[Symbol.dispose]();
    assert.equal(queue.busy, false);
  });

  await t.step("the turn is one object, reused: taking it allocates nothing", () => {
    const queue = new CallQueue();
    const first = queue.tryTake()!;
    first[Symbol.dispose]();
    const second = queue.tryTake()!;
    assert.equal(second, first);
    second[Symbol.dispose]();
  });

  await t.step("`using` releases the turn at the end of the block", () => {
    const queue = new CallQueue();
    {
      using _turn = queue.tryTake();
      assert.equal(queue.busy, true);
    }
    assert.equal(queue.busy, false);
  });

  await t.step("tryTake() gives nothing while the turn is taken, and does not wait", () => {
    const queue = new CallQueue();
    using _turn = queue.tryTake();
    assert.equal(queue.tryTake(), undefined);
    assert.equal(queue.waiting, 0);
  });

  await t.step("callers that find the turn taken wait, first come first served", async () => {
    const queue = new CallQueue();
    const log: string[] = [];
    const job = async (name: string, ms: number): Promise<void> => {
      using _turn = await turnOf(queue);
      log.push(`start ${name}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      log.push(`end ${name}`);
    };
    const jobs = [job("a", 10), job("b", 0), job("c", 0)];
    assert.equal(queue.waiting, 2);
    await Promise.all(jobs);
    assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
    assert.equal(queue.busy, false);
  });

  await t.step("a released turn goes to the next in line, not to whoever asks first", async () => {
    const queue = new CallQueue();
    const turn = queue.tryTake()!;
    const waiter = queue.take() as Promise<Disposable>;
    turn[Symbol.dispose]();
    // The waiter has not run yet, but the turn is already its own.
    assert.equal(queue.busy, true);
    assert.equal(queue.tryTake(), undefined);
    (await waiter)[Symbol.dispose]();
    assert.equal(queue.busy, false);
  });

  await t.step("onFree is called when a release leaves nobody waiting", async () => {
    let freed = 0;
    const queue = new CallQueue({ onFree: () => freed++ });
    const turn = queue.tryTake()!;
    const waiter = queue.take() as Promise<Disposable>;
    turn[Symbol.dispose]();
    assert.equal(freed, 0);
    (await waiter)[Symbol.dispose]();
    assert.equal(freed, 1);
  });

  await t.step("releasing a free queue's turn again does nothing", () => {
    let freed = 0;
    const queue = new CallQueue({ onFree: () => freed++ });
    const turn = queue.tryTake()!;
    turn[Symbol.dispose]();
    turn[Symbol.dispose]();
    assert.equal(freed, 1);
    assert.equal(queue.busy, false);
  });
});

Deno.test("CallQueue.wakeAll() ends every wait with a turn that holds nothing", async (t) => {
  await t.step("the waiters all run, and the turn stays with its holder", async () => {
    const queue = new CallQueue();
    const holder = queue.tryTake()!;
    const waiters = [queue.take(), queue.take()] as Promise<Disposable>[];
    queue.wakeAll();
    assert.equal(queue.waiting, 0);
    const empty = await Promise.all(waiters);
    for (const turn of empty) {
      assert.notEqual(turn, holder);
      turn[Symbol.dispose]();
    }
    // Releasing the empty turns gave nothing away.
    assert.equal(queue.busy, true);
    holder[Symbol.dispose]();
    assert.equal(queue.busy, false);
  });

  await t.step("with nobody waiting it does nothing", () => {
    const queue = new CallQueue();
    queue.wakeAll();
    assert.equal(queue.busy, false);
    assert.equal(queue.waiting, 0);
  });
});

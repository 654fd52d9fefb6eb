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

Deno.test("CallQueue keeps a long line in order and hands it down in linear time", async (t) => {
  /** Queues `n` waiters behind a held turn and times handing the turn down the whole line. */
  async function drain(n: number): Promise<{ order: number[]; ms: number }> {
    const queue = new CallQueue();
    const first = queue.tryTake()!;
    const order: number[] = [];
    const done = Array.from({ length: n }, async (_, i) => {
      const taken = queue.take(i);
      using _turn = taken instanceof Promise ? await taken : taken;
      order.push(i);
    });
    const start = performance.now();
    first[Symbol.dispose]();
    await Promise.all(done);
    return { order, ms: performance.now() - start };
  }

  await t.step("every waiter in turn, past the compaction of the line", async () => {
    const { order } = await drain(5000);
    assert.deepEqual(order, Array.from({ length: 5000 }, (_, i) => i));
  });

  await t.step("the tags of the line start at its head", async () => {
    const queue = new CallQueue();
    let turn = queue.tryTake()!;
    const waiters = Array.from({ length: 3000 }, (_, i) => queue.take(`t${i}`));
    for (let i = 0; i < 2500; i++) {
      turn[Symbol.dispose]();
      turn = await waiters[i]!;
    }
    assert.equal(queue.waiting, 500);
    assert.deepEqual(queue.waitingTags(3), ["t2500", "t2501", "t2502"]);
    assert.equal(queue.waitingTags().length, 500);
  });

  await t.step("100 000 waiters take about 8 times as long as 12 500", async () => {
    await drain(1000); // warms the code up
    // The fastest of three runs each: a busy machine or a collection stretches single runs.
    const fastest = async (n: number) => {
      let ms = Infinity;
      for (let run = 0; run < 3; run++) ms = Math.min(ms, (await drain(n)).ms);
      return ms;
    };
    const few = await fastest(12_500);
    const many = await fastest(100_000);
    // Shifting the array, as first written, made it quadratic: 9 ms, then 6 s (660 times).
    assert.ok(
      many / Math.max(few, 1) < 60,
      `12 500: ${few.toFixed(0)} ms, 100 000: ${many.toFixed(0)} ms`,
    );
  });
});

Deno.test("CallQueue lets a caller whose signal aborts leave the line", async (t) => {
  await t.step("it rejects with the reason at once; the others keep their order", async () => {
    const queue = new CallQueue();
    const held = queue.take() as Disposable;
    const controller = new AbortController();
    const order: string[] = [];
    const first = (queue.take() as Promise<Disposable>).then((turn) => {
      order.push("first");
      turn[Symbol.dispose]();
    });
    const leaving = (queue.take(undefined, { signal: controller.signal }) as Promise<Disposable>)
      .then(
        () => order.push("ran"),
        (reason: unknown) => order.push(`left: ${reason}`),
      );
    const last = (queue.take() as Promise<Disposable>).then((turn) => {
      order.push("last");
      turn[Symbol.dispose]();
    });
    assert.equal(queue.waiting, 3);
    controller.abort("no");
    await leaving;
    assert.equal(queue.waiting, 2);
    held[Symbol.dispose]();
    await Promise.all([first, last]);
    assert.deepEqual(order, ["left: no", "first", "last"]);
    assert.equal(queue.busy, false);
  });

  await t.step("one that may not leave (it began elsewhere) stays in line", async () => {
    const queue = new CallQueue();
    const held = queue.take() as Disposable;
    const controller = new AbortController();
    const staying = queue.take(undefined, { signal: controller.signal, mayLeave: () => false });
    controller.abort("no");
    held[Symbol.dispose]();
    (await staying)[Symbol.dispose]();
    assert.equal(queue.busy, false);
  });

  await t.step("callers sharing one signal add one listener to it, not one each", async () => {
    // An EventTarget pays for every listener it holds on each add: 32 000 callers took 8 s.
    const queue = new CallQueue();
    const held = queue.take() as Disposable;
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (...args: Parameters<typeof add>) => (added++, add(...args));
    signal.removeEventListener = (
      ...args: Parameters<typeof remove>
    ) => (removed++, remove(...args));
    const waiters = Array.from({ length: 1000 }, () => queue.take(undefined, { signal }));
    assert.equal(added, 1);
    held[Symbol.dispose]();
    for (const waiter of waiters) (await waiter)[Symbol.dispose]();
    // The last turn given takes the listener off.
    assert.equal(removed, 1);
  });
});

Deno.test("CallQueue.waitingTags() leaves out the callers who left", async () => {
  const queue = new CallQueue();
  const held = queue.take() as Disposable;
  const controller = new AbortController();
  const first = queue.take("first") as Promise<Disposable>;
  const leaving = queue.take("leaving", { signal: controller.signal }) as Promise<Disposable>;
  const last = queue.take("last") as Promise<Disposable>;
  leaving.catch(() => {});
  controller.abort();
  // Those behind a caller who left are next in line: a plugin may post them ahead.
  assert.deepEqual(queue.waitingTags(), ["first", "last"]);
  assert.deepEqual(queue.waitingTags(1), ["first"]);
  held[Symbol.dispose]();
  (await first)[Symbol.dispose]();
  (await last)[Symbol.dispose]();
  assert.equal(queue.busy, false);
});

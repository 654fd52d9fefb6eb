import assert from "node:assert/strict";
import {
  CountedEventTarget,
  type EventTap,
  ListenerCount,
  listenerKey,
  tapEvents,
} from "../src/_listener_count.ts";

Deno.test("ListenerCount counts listeners by type, each once, by the key EventTarget tells them apart by", async (t) => {
  const onEvent = (): void => {};
  const handler = { handleEvent(): void {} };

  await t.step("added once or twice, a listener is one; removed, it is gone", () => {
    const count = new ListenerCount();
    assert.equal(count.any, false);
    assert.equal(count.add("executed", listenerKey("executed", onEvent, undefined)), true);
    assert.equal(count.add("executed", listenerKey("executed", onEvent, false)), false);
    assert.ok(count.has("executed"));
    assert.equal(count.has("state_changed"), false);
    assert.equal(count.remove("executed", listenerKey("executed", onEvent, undefined)), true);
    assert.equal(count.has("executed"), false);
    assert.equal(count.any, false);
  });

  await t.step(
    "the capture flag makes another listener; removing an unknown one does nothing",
    () => {
      const count = new ListenerCount();
      count.add("executed", listenerKey("executed", handler, true));
      count.add("executed", listenerKey("executed", handler, false));
      count.remove("executed", listenerKey("executed", handler, true));
      assert.ok(count.has("executed"));
      assert.equal(count.remove("executed", listenerKey("executed", onEvent, undefined)), false);
      assert.equal(count.remove("error", listenerKey("error", handler, false)), false);
      assert.ok(count.has("executed"));
      count.remove("executed", listenerKey("executed", handler, undefined));
      assert.equal(count.any, false);
    },
  );
});

interface Details {
  ping: { readonly n: number };
  pong: { readonly n: number };
}

/** A target that records what its subclass hooks see. */
class Target extends CountedEventTarget<Details> {
  changes = 0;
  constructor() {
    super((target) => (target as Target).changes++);
  }
  emit<K extends keyof Details>(type: K, detail: Details[K]): void {
    this.toTap(type, detail);
    if (this.listens(type)) this.dispatchEvent(new CustomEvent(type, { detail }));
  }
  wanted(type: keyof Details): boolean {
    return this.wants(type);
  }
  get anyListener(): boolean {
    return this.listened;
  }
}

Deno.test("CountedEventTarget counts its listeners and takes one tap", async (t) => {
  await t.step("adding and removing listeners calls back, and is counted", () => {
    const target = new Target();
    const seen: unknown[] = [];
    const onPing = (event: Event): void => void seen.push((event as CustomEvent).detail);
    target.addEventListener("ping", onPing);
    assert.equal(target.changes, 1);
    assert.ok(target.wanted("ping") && target.anyListener);
    assert.equal(target.wanted("pong"), false);
    target.emit("ping", { n: 1 });
    target.emit("pong", { n: 2 });
    assert.deepEqual(seen, [{ n: 1 }]);
    target.removeEventListener("ping", onPing);
    assert.equal(target.changes, 2);
    assert.equal(target.anyListener, false);
    target.emit("ping", { n: 3 });
    assert.equal(seen.length, 1);
  });

  await t.step("the tap takes its types as type and detail, and is no listener", () => {
    const target = new Target();
    const tapped: string[] = [];
    const tap: EventTap<Details> = (type, detail, from) => {
      assert.equal(from, target);
      tapped.push(`${type} ${detail.n}`);
    };
    let dispatched = 0;
    target.dispatchEvent = () => (dispatched++, true);
    tapEvents(target, tap, new Set(["ping"]));
    assert.equal(target.changes, 1);
    assert.ok(target.wanted("ping"));
    assert.equal(target.anyListener, false);
    target.emit("ping", { n: 1 });
    target.emit("pong", { n: 2 });
    assert.deepEqual(tapped, ["ping 1"]);
    assert.equal(dispatched, 0, "no event is built for the tap");
    tapEvents(target, tap, new Set(["pong"]));
    target.emit("ping", { n: 3 });
    target.emit("pong", { n: 4 });
    assert.deepEqual(tapped, ["ping 1", "pong 4"]);
    tapEvents(target, null);
    assert.equal(target.changes, 3);
    assert.equal(target.wanted("pong"), false);
    target.emit("pong", { n: 5 });
    assert.deepEqual(tapped, ["ping 1", "pong 4"]);
  });
});

Deno.test("CountedEventTarget uncounts once and signal listeners when they leave by themselves", async (t) => {
  await t.step("a once listener is uncounted as it fires, and runs once with the event", () => {
    const target = new Target();
    const seen: unknown[] = [];
    target.addEventListener("ping", function (this: unknown, event) {
      seen.push([this === target, (event as CustomEvent).detail.n]);
    }, { once: true });
    assert.ok(target.wanted("ping"));
    target.emit("ping", { n: 1 });
    assert.equal(target.wanted("ping"), false);
    assert.equal(target.anyListener, false);
    target.emit("ping", { n: 2 });
    assert.deepEqual(seen, [[true, 1]]);
  });

  await t.step("a once handler object is called through handleEvent", () => {
    const target = new Target();
    const seen: number[] = [];
    const handler = { handleEvent: (event: Event) => seen.push((event as CustomEvent).detail.n) };
    target.addEventListener("pong", handler, { once: true });
    target.emit("pong", { n: 7 });
    target.emit("pong", { n: 8 });
    assert.deepEqual(seen, [7]);
    assert.equal(target.wanted("pong"), false);
  });

  await t.step("removing a once listener before it fires removes and uncounts it", () => {
    const target = new Target();
    let calls = 0;
    const onPing = (): void => void calls++;
    target.addEventListener("ping", onPing, { once: true });
    target.removeEventListener("ping", onPing);
    assert.equal(target.wanted("ping"), false);
    target.emit("ping", { n: 1 });
    assert.equal(calls, 0);
    // Added again, it counts afresh, and fires.
    target.addEventListener("ping", onPing, { once: true });
    assert.ok(target.wanted("ping"));
    target.emit("ping", { n: 2 });
    assert.equal(calls, 1);
  });

  await t.step("a signal's abort removes and uncounts its listener", () => {
    const target = new Target();
    const controller = new AbortController();
    let calls = 0;
    target.addEventListener("ping", () => void calls++, { signal: controller.signal });
    target.emit("ping", { n: 1 });
    assert.ok(target.wanted("ping"));
    controller.abort();
    assert.equal(target.wanted("ping"), false);
    target.emit("ping", { n: 2 });
    assert.equal(calls, 1);
  });

  await t.step("an aborted signal adds nothing; a listener added twice stays one", () => {
    const target = new Target();
    const onPing = (): void => {};
    target.addEventListener("ping", onPing, { signal: AbortSignal.abort() });
    assert.equal(target.wanted("ping"), false);
    target.addEventListener("ping", onPing);
    target.addEventListener("ping", onPing, { once: true });
    target.removeEventListener("ping", onPing);
    assert.equal(target.wanted("ping"), false);
  });

  await t.step("a listener removed by hand no longer waits on its signal", () => {
    const target = new Target();
    const controller = new AbortController();
    const onPing = (): void => {};
    target.addEventListener("ping", onPing, { signal: controller.signal });
    target.removeEventListener("ping", onPing);
    const changes = target.changes;
    target.addEventListener("ping", onPing);
    controller.abort();
    assert.ok(target.wanted("ping"), "the old signal does not uncount the new listener");
    assert.equal(target.changes, changes + 1);
  });
});

import assert from "node:assert/strict";
import {
  CountedEventTarget,
  type EventTap,
  ListenerCount,
  tapEvents,
} from "../src/_listener_count.ts";

Deno.test("ListenerCount counts listeners by type as EventTarget tells them apart", async (t) => {
  const onEvent = (): void => {};
  const handler = { handleEvent(): void {} };

  await t.step("added once or twice, a listener is one; removed, it is gone", () => {
    const count = new ListenerCount();
    assert.equal(count.any, false);
    count.add("executed", onEvent, undefined);
    count.add("executed", onEvent, false);
    assert.ok(count.has("executed"));
    assert.equal(count.has("state_changed"), false);
    count.remove("executed", onEvent, undefined);
    assert.equal(count.has("executed"), false);
    assert.equal(count.any, false);
  });

  await t.step(
    "the capture flag makes another listener; removing an unknown one does nothing",
    () => {
      const count = new ListenerCount();
      count.add("executed", handler, { capture: true });
      count.add("executed", handler, false);
      count.remove("executed", handler, { capture: true });
      assert.ok(count.has("executed"));
      count.remove("executed", onEvent, undefined);
      count.remove("error", handler, false);
      assert.ok(count.has("executed"));
      count.remove("executed", handler, undefined);
      assert.equal(count.any, false);
    },
  );

  await t.step("once and signal listeners leave on their own: they stay counted", () => {
    const count = new ListenerCount();
    count.add("loaded", onEvent, { once: true });
    count.add("unloaded", onEvent, { signal: new AbortController().signal });
    count.remove("loaded", onEvent, undefined);
    count.remove("unloaded", onEvent, undefined);
    assert.ok(count.has("loaded") && count.has("unloaded"));
  });

  await t.step("a null listener is no listener", () => {
    const count = new ListenerCount();
    count.add("executed", null, undefined);
    assert.equal(count.any, false);
  });
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

import assert from "node:assert/strict";
import { ListenerCount } from "../src/_listener_count.ts";

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

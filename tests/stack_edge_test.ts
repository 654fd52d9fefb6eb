/**
 * A call made where its caller's stack is about to run out (deep recursion,
 * a listener that calls again from `executed`) may fail with the engine's
 * `RangeError` anywhere in its path, but never keeps the plugin: the next
 * call is served.
 */

import assert from "node:assert/strict";
import { testEachIsolation } from "./_helpers.ts";

const ID_WAT = '(module (func (export "id") (param i32) (result i32) local.get 0))';

/** Settles to what `promise` gave, or to "hung" after `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise((resolve) => timer = setTimeout(() => resolve("hung"), ms));
  try {
    return await Promise.race([promise.catch((err) => err), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Recurses until the stack overflows, unwinds `slack` frames and runs `call`
 * there; returns its promise, or one rejected with what it threw.
 */
function atStackEdge(slack: number, call: () => Promise<unknown>): Promise<unknown> {
  let countdown = -1;
  let made: Promise<unknown> | undefined;
  const descend = (): void => {
    try {
      descend();
    } catch (err) {
      if (made !== undefined) throw err;
      if (countdown < 0) countdown = slack;
    }
    if (made === undefined && countdown-- === 0) {
      try {
        made = call();
      } catch (err) {
        made = Promise.reject(err);
      }
    }
  };
  try {
    descend();
  } catch {
    // The stack ran out again on the way up, after the call.
  }
  return made ?? Promise.resolve();
}

testEachIsolation("A call at the edge of its caller's stack never keeps the plugin", {
  permissions: "none",
}, async (t, { loadPlugin }) => {
  await t.step("wherever in its path the stack runs out, the next call is served", async () => {
    await using loaded = await loadPlugin(ID_WAT);
    const { plugin } = loaded;
    assert.equal(await plugin.callI32("id", [0]), 0);
    // Frame by frame further from the edge, until calls made there have long succeeded: the
    // stack runs out at each step of the call's path in turn.
    let succeeded = 0;
    for (let slack = 0; succeeded < 50 && slack < 20_000; slack++) {
      const made = await within(atStackEdge(slack, () => plugin.callI32("id", [1])), 5000);
      if (made === 1) succeeded++;
      await within(atStackEdge(slack, () => plugin.callBytes("id", new Uint8Array())), 5000);
      // A pause waited for ever for the turn left stranded (and so did stop() and close()).
      assert.notEqual(await within(plugin.pause(), 5000), "hung", `pause after slack ${slack}`);
      plugin.resume();
      // Every later call waited for ever: the turn stayed with the call that overflowed.
      const next = await within(plugin.callI32("id", [slack]), 5000);
      assert.equal(next, slack, `slack ${slack}`);
    }
    assert.equal(succeeded, 50);
  });

  await t.step("a listener calling again from `executed` until the stack runs out", async () => {
    await using loaded = await loadPlugin(ID_WAT);
    const { plugin } = loaded;
    let again = true;
    const made: Promise<unknown>[] = [];
    plugin.addEventListener("executed", () => {
      if (again) made.push(plugin.callI32("id", [2]).catch((err) => err));
    });
    await plugin.callI32("id", [1]);
    again = false;
    await within(Promise.all(made), 5000);
    assert.equal(await within(plugin.callI32("id", [5]), 5000), 5);
  });
});

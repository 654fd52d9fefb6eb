/**
 * How an exception inside a WASI system call becomes the program's errno
 * (`errnoOf`): a file system error is returned, anything else unwinds.
 */
import assert from "node:assert/strict";
import { Errno, errnoOf } from "../../src/wasi/_errno.ts";

Deno.test("errnoOf() returns file system errors as errno, and lets the host's own through", async (t) => {
  await t.step("by code, and by Deno's error classes", () => {
    assert.equal(errnoOf(Object.assign(new Error("x"), { code: "ENOSPC" })), 51);
    assert.equal(errnoOf(new Deno.errors.NotFound("x")), Errno.NOENT);
    assert.equal(errnoOf(new Deno.errors.NotCapable("x")), Errno.NOTCAPABLE);
  });

  await t.step({
    name: "by the OS's number when Deno gives neither (a write past the largest file)",
    ignore: Deno.build.os !== "linux",
    fn() {
      // It ended the whole run() with a HostFunctionError instead of EFBIG.
      assert.equal(errnoOf(new Error("File too large (os error 27)")), 22);
      assert.equal(errnoOf(new Error("Something new (os error 4095)")), Errno.IO);
    },
  });

  await t.step("anything else is not the program's to handle", () => {
    assert.equal(errnoOf(new Error("a hook failed")), undefined);
    assert.equal(errnoOf(new TypeError("bad")), undefined);
    assert.equal(errnoOf("thrown text"), undefined);
  });
});

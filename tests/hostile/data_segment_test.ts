/**
 * Hostile plugins that carry a huge data segment (40 MiB): into a memory
 * too small for it, into a memory declared big enough but above the limit,
 * copied at run time with `memory.init`, and, when the limit allows it,
 * loaded whole. The binaries are built here, not committed.
 */
import assert from "node:assert/strict";
import {
  CompilationError,
  InstantiationError,
  OutOfMemoryError,
  TrapError,
  type WasmRuntime,
} from "../../mod.ts";
import { ByteWriter } from "../../src/instrument/_bytes.ts";
import { assertRejectsWith, testEachIsolation } from "../_helpers.ts";
import { ExportKind, HEADER, name, section, SectionId } from "../fixtures/binary.ts";

const PAGE = 65_536;
/** The segment's size: 40 MiB, 640 pages. */
const SIZE = 40 * 1024 * 1024;
const PAGES = SIZE / PAGE;
/** The segment's first and last bytes; every other byte is {@linkcode FILL}. */
const FIRST = 0x01;
const LAST = 0xa5;
const FILL = 0x5a;
/** The data count section, which `memory.init` needs. */
const DATA_COUNT = 12;

/** Options of {@linkcode hugeSegmentModule}. */
interface SegmentShape {
  /** The memory's declared minimum, in pages. */
  readonly minPages: number;
  /** Passive (copied by `init(dst, src, len)`) instead of active at offset 0. */
  readonly passive?: boolean;
  /** The segment's bytes. */
  readonly size?: number;
  /** The length the segment claims, when it lies about its bytes. */
  readonly claimedSize?: number;
}

/**
 * A module with one memory (exported as `memory`, no maximum), `ok() -> 1`,
 * `load(addr) -> byte`, `init(dst, src, len)` (`memory.init` of the segment,
 * passive shape only), and one data segment of `size` bytes: {@linkcode FIRST},
 * then {@linkcode FILL}, then {@linkcode LAST}. Written in place, so building
 * it costs one buffer of the module's size.
 */
function hugeSegmentModule(
  { minPages, passive = false, size = SIZE, claimedSize = size }: SegmentShape,
): Uint8Array {
  const bodies = [
    [4, 0, 0x41, 1, 0x0b], // ok: i32.const 1
    [7, 0, 0x20, 0, 0x2d, 0, 0, 0x0b], // load: local.get 0, i32.load8_u
    // init: local.get 0..2, memory.init 0 0
    [12, 0, 0x20, 0, 0x20, 1, 0x20, 2, 0xfc, 8, 0, 0, 0x0b],
  ].slice(0, passive ? 3 : 2);
  const exports = [
    [...name("memory"), ExportKind.Memory, 0],
    [...name("ok"), ExportKind.Function, 0],
    [...name("load"), ExportKind.Function, 1],
    [...name("init"), ExportKind.Function, 2],
  ].slice(0, bodies.length + 1);
  const segmentHead = new ByteWriter().u32(1);
  if (passive) segmentHead.u8(1);
  else segmentHead.u8(0).u8(0x41).u8(0).u8(0x0b); // active, memory 0, at i32.const 0
  segmentHead.u32(claimedSize);
  const payloadHead = segmentHead.finish();
  const head = new Uint8Array([
    ...HEADER,
    // Types: () -> i32, (i32) -> i32, (i32 i32 i32) -> ().
    ...section(SectionId.Type, [
      3,
      0x60,
      0,
      1,
      0x7f,
      0x60,
      1,
      0x7f,
      1,
      0x7f,
      0x60,
      3,
      0x7f,
      0x7f,
      0x7f,
      0,
    ]),
    ...section(SectionId.Function, [bodies.length, 0, 1, 2].slice(0, bodies.length + 1)),
    ...section(SectionId.Memory, [1, 0, ...new ByteWriter().u32(minPages).finish()]),
    ...section(SectionId.Export, [exports.length, ...exports.flat()]),
    ...(passive ? section(DATA_COUNT, [1]) : []),
    ...section(SectionId.Code, [bodies.length, ...bodies.flat()]),
    SectionId.Data,
    ...new ByteWriter().u32(payloadHead.length + size).finish(),
    ...payloadHead,
  ]);
  const module = new Uint8Array(head.length + size);
  module.set(head);
  module.fill(FILL, head.length);
  module[head.length] = FIRST;
  module[module.length - 1] = LAST;
  return module;
}

/** Asserts the runtime holds no plugin and a small plugin still loads and answers. */
async function assertUnharmed(runtime: WasmRuntime): Promise<void> {
  assert.equal(runtime.pluginCount, 0);
  await using plugin = await runtime.createPluginFromWat(
    `(module (func (export "ok") (result i32) i32.const 1))`,
  );
  assert.equal(await plugin.callI32("ok"), 1);
}

// Each step has its own runtime, so that each huge module is released before the next one
// (a plugin of a 40 MiB segment costs about four times that while it loads).
testEachIsolation("Hostile: a 40 MiB data segment", {
  permissions: "none",
  slow: true,
}, async (t, { createRuntime }) => {
  const limited = (): WasmRuntime => createRuntime({ resourceLimits: { maxMemoryPages: 16 } });

  await t.step("into a one-page memory the limit keeps small: InstantiationError", async () => {
    await using runtime = limited();
    const compiled = await runtime.compile("huge-active", hugeSegmentModule({ minPages: 1 }));
    const error = await assertRejectsWith(
      () => runtime.createPlugin(compiled),
      InstantiationError,
      { kind: "instantiation" },
    );
    assert.match(error.message, /data segment 0 is out of bounds/);
    await assertUnharmed(runtime);
  });

  await t.step(
    "into a memory declared to fit it: OutOfMemoryError above maxMemoryPages, loaded whole at it",
    async (t) => {
      await using runtime = limited();
      const fitting = await runtime.compile("huge-fitting", hugeSegmentModule({ minPages: PAGES }));

      await t.step("above maxMemoryPages, nothing is instantiated: OutOfMemoryError", async () => {
        for (const maxMemoryPages of [16, PAGES - 1]) {
          const error = await assertRejectsWith(
            () => runtime.createPlugin(fitting, { resourceLimits: { maxMemoryPages } }),
            OutOfMemoryError,
            { kind: "out_of_memory" },
          );
          assert.match(error.message, new RegExp(`needs at least ${PAGES} pages`));
        }
        await assertUnharmed(runtime);
      });

      await t.step("when maxMemoryPages allows it, every byte is loaded", async () => {
        await using plugin = await runtime.createPlugin(fitting, {
          resourceLimits: { maxMemoryPages: PAGES },
        });
        assert.equal(await plugin.callI32("load", [0]), FIRST);
        assert.equal(await plugin.callI32("load", [SIZE / 2]), FILL);
        assert.equal(await plugin.callI32("load", [SIZE - 1]), LAST);
        assert.equal((await plugin.metrics()).currentMemoryBytes, SIZE);
        // The limit is the declared size: the byte past the end is out of bounds.
        await assertRejectsWith(() => plugin.callI32("load", [SIZE]), TrapError, { kind: "trap" });
        assert.equal(await plugin.callI32("ok"), 1);
      });
    },
  );

  await t.step(
    "copied with memory.init into a small memory: TrapError, then it answers",
    async () => {
      await using runtime = limited();
      const compiled = await runtime.compile(
        "huge-passive",
        hugeSegmentModule({ minPages: 1, passive: true }),
      );
      await using plugin = await runtime.createPlugin(compiled);
      await assertRejectsWith(() => plugin.callVoid("init", [0, 0, SIZE]), TrapError, {
        kind: "trap",
      });
      await assertRejectsWith(() => plugin.callVoid("init", [0, SIZE - 1, 2]), TrapError);
      // A slice that fits is copied.
      await plugin.callVoid("init", [100, SIZE - 2, 2]);
      assert.equal(await plugin.callI32("load", [100]), FILL);
      assert.equal(await plugin.callI32("load", [101]), LAST);
      assert.equal(await plugin.callI32("ok"), 1);
    },
  );

  await t.step(
    "a segment claiming more bytes than the module holds: CompilationError",
    async () => {
      await using runtime = limited();
      for (const claimedSize of [SIZE, 0xffff_ffff]) {
        await assertRejectsWith(
          () => runtime.compile("lying", hugeSegmentModule({ minPages: 1, size: 16, claimedSize })),
          CompilationError,
          { kind: "compilation" },
        );
      }
      await assertUnharmed(runtime);
    },
  );
});

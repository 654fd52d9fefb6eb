import assert from "node:assert/strict";
import { BinaryFormatError } from "../../src/instrument/_bytes.ts";
import { decodeBody, encodeBody } from "../../src/instrument/_code.ts";
import { parseModule } from "../../src/instrument/_module.ts";
import { instrument } from "../../src/instrument/instrument.ts";

const SPEC_DIR = new URL("../../../shared/spec-testsuite/", import.meta.url);

function specModules(): Uint8Array<ArrayBuffer>[] {
  const modules: Uint8Array<ArrayBuffer>[] = [];
  for (const dir of Deno.readDirSync(SPEC_DIR)) {
    if (!dir.isDirectory) continue;
    for (const file of Deno.readDirSync(new URL(`${dir.name}/`, SPEC_DIR))) {
      if (!file.name.endsWith(".wasm")) continue;
      const bytes = Deno.readFileSync(new URL(`${dir.name}/${file.name}`, SPEC_DIR));
      if (WebAssembly.validate(bytes)) modules.push(bytes);
    }
  }
  return modules;
}

function specAvailable(): boolean {
  try {
    return Deno.statSync(SPEC_DIR).isDirectory;
  } catch {
    return false;
  }
}

Deno.test({
  name: "decodeBody() and encodeBody() round-trip every valid spec testsuite module",
  ignore: !specAvailable(),
  fn(): void {
    const modules = specModules();
    assert.ok(modules.length > 2000, `only ${modules.length} modules found`);
    let bodies = 0;
    for (const bytes of modules) {
      const info = parseModule(bytes);
      for (const code of info.code) {
        const decoded = decodeBody(bytes, code.bodyStart, code.end);
        assert.deepEqual(encodeBody(bytes, decoded), bytes.subarray(code.bodyStart, code.end));
        bodies++;
      }
    }
    assert.ok(bodies > 8000, `only ${bodies} bodies`);
  },
});

Deno.test({
  name: "instrument() keeps every valid spec testsuite module valid",
  ignore: !specAvailable(),
  fn(): void {
    for (const bytes of specModules()) {
      assert.deepEqual(instrument(bytes).bytes, bytes);
      for (const deadline of ["clock", "shared-flag"] as const) {
        const result = instrument(bytes, { fuel: true, callDepth: true, deadline });
        assert.ok(WebAssembly.validate(result.bytes));
      }
    }
  },
});

/** A module of one `[] -> []` function with the given body bytes (locals vector included). */
function withBody(body: number[], declaredSize = body.length): Uint8Array<ArrayBuffer> {
  const entry = [declaredSize, ...body];
  const code = [0x0a, entry.length + 1, 0x01, ...entry];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    0x01,
    0x04,
    0x01,
    0x60,
    0x00,
    0x00,
    0x03,
    0x02,
    0x01,
    0x00,
    ...code,
  ]); // deno-fmt-ignore
}

Deno.test("instrument() rejects malformed bodies with BinaryFormatError", async (t) => {
  const options = { fuel: true, callDepth: true, deadline: "clock" } as const;
  const rejects = (bytes: Uint8Array, pattern: RegExp): void => {
    assert.throws(() => instrument(bytes, options), (error: unknown) => {
      assert.ok(error instanceof BinaryFormatError);
      assert.match(error.message, pattern);
      assert.ok(error.offset > 0 && error.offset <= bytes.length);
      return true;
    });
  };
  assert.ok(WebAssembly.validate(withBody([0x00, 0x01, 0x0b])));

  await t.step("truncated body", () => rejects(withBody([0x00, 0x02, 0x40]), /end of function/));
  await t.step("body longer than its declared size", () => {
    // The size says 2 bytes: the final `end` falls outside.
    rejects(withBody([0x00, 0x01, 0x0b], 2), /end of function body|declares/);
  });
  await t.step("code after the final end", () => {
    rejects(withBody([0x00, 0x0b, 0x01]), /end after its final end/);
  });
  await t.step("oversized LEB128", () => {
    rejects(withBody([0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1a, 0x0b]), /too long/);
  });
  await t.step(
    "unknown opcode",
    () => rejects(withBody([0x00, 0x17, 0x0b]), /Unknown opcode 0x17/),
  );
  await t.step("unknown prefixed opcode", () => {
    rejects(withBody([0x00, 0xfd, 0x9a, 0x01, 0x0b]), /Unknown opcode 0xfd 154/);
  });
  await t.step("else outside if", () => rejects(withBody([0x00, 0x05, 0x0b]), /else/));
});

Deno.test("instrument() handles extreme modules without deep host recursion", async (t) => {
  const options = { fuel: true, callDepth: true, deadline: "clock" } as const;

  await t.step("10,000 nested blocks", () => {
    const result = instrument(nestedBlocks(10_000), options);
    assert.ok(WebAssembly.validate(result.bytes));
  });

  await t.step("100,000 nested blocks", () => {
    const bytes = nestedBlocks(100_000);
    const result = instrument(bytes, { ...options, validate: false });
    assert.ok(result.bytes.length > bytes.length);
  });

  await t.step("100,000 functions", () => {
    const count = 100_000;
    const funcSection = [...leb(count), ...Array(count).fill(0)];
    const codeEntries = [...leb(count), ...Array(count).fill([0x03, 0x00, 0x01, 0x0b]).flat()];
    const bytes = new Uint8Array([
      0x00,
      0x61,
      0x73,
      0x6d,
      0x01,
      0x00,
      0x00,
      0x00,
      0x01,
      0x04,
      0x01,
      0x60,
      0x00,
      0x00,
      0x03,
      ...leb(funcSection.length),
      ...funcSection,
      0x0a,
      ...leb(codeEntries.length),
      ...codeEntries,
    ]); // deno-fmt-ignore
    const result = instrument(bytes, options);
    assert.ok(WebAssembly.validate(result.bytes));
  });
});

/** A module whose only function nests `depth` empty blocks. */
function nestedBlocks(depth: number): Uint8Array<ArrayBuffer> {
  const body = [0x00, ...Array(depth).fill([0x02, 0x40]).flat(), ...Array(depth + 1).fill(0x0b)];
  const entry = [...leb(body.length), ...body];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    0x01,
    0x04,
    0x01,
    0x60,
    0x00,
    0x00,
    0x03,
    0x02,
    0x01,
    0x00,
    0x0a,
    ...leb(entry.length + 1),
    0x01,
    ...entry,
  ]); // deno-fmt-ignore
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

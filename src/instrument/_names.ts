/**
 * The `name` section of a module whose functions were split into a wrapper
 * and a variant (see `_internal_calls.ts`): each variant gets its function's
 * name, so that stack traces name the frames where the code runs.
 *
 * @module
 */

import { ByteReader } from "./_bytes.ts";
import { CodeWriter } from "./_code.ts";
import type { CustomSection } from "./_module.ts";

const FUNCTION_NAMES = 1;

/**
 * The `name` section `section` of `bytes` (the whole section, id and size
 * included) with the name of every function that has a variant given to the
 * variant too, or `null` to keep the section as it is (no function names,
 * or a section that cannot be read: engines ignore what they cannot read in
 * it).
 *
 * @param variantOf The index of the variant of function `f`, or -1.
 */
export function withVariantNames(
  bytes: Uint8Array,
  section: CustomSection,
  variantOf: (f: number) => number,
): Uint8Array<ArrayBuffer> | null {
  try {
    const payload = new CodeWriter(section.end - section.start + 64);
    payload.copy(bytes, section.payloadStart, section.contentStart); // the name "name"
    const reader = new ByteReader(bytes, { start: section.contentStart, end: section.end });
    let changed = false;
    while (reader.pos < section.end) {
      const subsection = reader.pos;
      const id = reader.u8();
      const size = reader.u32();
      const start = reader.pos;
      const end = start + size;
      if (end > section.end) return null;
      reader.pos = end;
      const names = id === FUNCTION_NAMES && !changed
        ? functionNames(bytes, start, end, variantOf)
        : null;
      if (names === null) {
        payload.copy(bytes, subsection, end);
        continue;
      }
      changed = true;
      payload.u8(FUNCTION_NAMES);
      payload.u32(names.length);
      payload.copy(names.buf, 0, names.length);
    }
    if (!changed) return null;
    const out = new CodeWriter(payload.length + 8);
    out.u8(0); // custom section
    out.u32(payload.length);
    out.copy(payload.buf, 0, payload.length);
    return out.finish();
  } catch {
    return null;
  }
}

/**
 * The function names subsection `bytes[start, end)` with the variants' names
 * appended (variants come after every function of the input, in the order
 * of their functions), or `null` when no named function has a variant.
 */
function functionNames(
  bytes: Uint8Array,
  start: number,
  end: number,
  variantOf: (f: number) => number,
): CodeWriter | null {
  const names = new ByteReader(bytes, { start, end });
  const count = names.u32();
  const entries = names.pos;
  const added: [number, number, number][] = []; // variant, name start, name end
  let last = -1;
  for (let i = 0; i < count; i++) {
    const f = names.u32();
    const nameStart = names.pos;
    const length = names.u32();
    names.pos += length;
    if (names.pos > end || f <= last) return null;
    last = f;
    const variant = variantOf(f);
    if (variant >= 0) added.push([variant, nameStart, names.pos]);
  }
  if (added.length === 0 || names.pos !== end) return null;
  const out = new CodeWriter(end - start + added.length * 16);
  out.u32(count + added.length);
  out.copy(bytes, entries, end);
  for (const [variant, from, to] of added) {
    out.u32(variant);
    out.copy(bytes, from, to);
  }
  return out;
}

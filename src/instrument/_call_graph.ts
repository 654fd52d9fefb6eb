/**
 * Which functions can take part in recursion, from the call events of the
 * scan: the depth pass counts only their frames, and the deadline pass checks
 * only before calls that can lead into them.
 *
 * The graph has a node per defined function and one *unknown* node standing
 * for everything the module cannot see: an edge goes to it from every call to
 * an imported function (the host may call back in), `call_indirect`,
 * `call_ref` and their tail-call forms; edges go from it to every function the
 * outside can reach (exported, the start function, in an element segment, or
 * taken by `ref.func`). A function is *recursive* when it lies on a cycle of
 * that graph (strongly connected components, found iteratively so that deep
 * call chains cannot overflow the host stack).
 *
 * @module
 */

import { ByteReader } from "./_bytes.ts";
import { CodeReader } from "./_code.ts";
import { skipConstExpr } from "./_const_expr.ts";
import type { ModuleInfo } from "./_module.ts";
import { Event, type ScanResult } from "./_scan.ts";
import { Ctl } from "./_opcodes.ts";

/** How the depth pass treats a function. */
export const DepthRole = {
  /** Touches no depth state: it cannot recurse and calls nothing that does. */
  None: 0,
  /** Not counted, but calls counted functions: keeps the depth its caller gave it. */
  Keep: 1,
  /** Counted: recursive, so each of its frames takes one unit of depth. */
  Count: 2,
} as const;

/**
 * Functions whose static work bound is at most this many instructions, and
 * that cannot recurse, need no deadline check before calls to them.
 */
export const BOUNDED_WORK = 1024;

/** What the passes need to know about each defined function. */
export interface CallAnalysis {
  /** {@linkcode DepthRole} of each defined function. */
  readonly depthRole: Uint8Array;
  /** Whether a call to each defined function needs no deadline check before it. */
  readonly bounded: Uint8Array;
}

const SECTION_ELEMENT = 9;
const OP_REF_FUNC = 0xd2;

/**
 * Analyzes the call graph of a scanned module.
 *
 * @param bytes The module.
 * @param info Its parsed sections.
 * @param scan The scan of all of its bodies.
 */
export function analyzeCalls(bytes: Uint8Array, info: ModuleInfo, scan: ScanResult): CallAnalysis {
  const imported = info.imports.reduce((n, entry) => n + (entry.kind === "function" ? 1 : 0), 0);
  const n = info.code.length;
  const unknown = n;
  const outside = escapingFunctions(bytes, info, scan, imported);

  // Adjacency in compressed rows; node `unknown` last.
  const offsets = new Int32Array(n + 2);
  const { kind, arg, eventStart } = { kind: scan.kind, arg: scan.arg, eventStart: scan.eventStart };
  for (let f = 0; f < n; f++) {
    let edges = 0;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if (kind[e] === Event.Call || kind[e] === Event.TailCall) edges++;
    }
    offsets[f + 1] = offsets[f]! + edges;
  }
  offsets[n + 1] = offsets[n]! + outside.length;
  const targets = new Int32Array(offsets[n + 1]!);
  for (let f = 0; f < n; f++) {
    let at = offsets[f]!;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if (kind[e] !== Event.Call && kind[e] !== Event.TailCall) continue;
      const callee = arg[e]! - imported;
      targets[at++] = arg[e]! < 0 || callee < 0 || callee >= n ? unknown : callee;
    }
  }
  targets.set(outside, offsets[n]!);

  const { component, order, cyclic } = components(n + 1, offsets, targets);

  const depthRole = new Uint8Array(n);
  const bounded = new Uint8Array(n);
  const work = new Float64Array(n);
  // Components come out callees first, so every callee is decided before its callers.
  for (const f of order) {
    if (f === unknown) continue;
    if (cyclic[component[f]!]) {
      depthRole[f] = DepthRole.Count;
      continue;
    }
    let role: number = DepthRole.None;
    let sum = scan.size[f]!;
    let isBounded = true;
    for (let at = offsets[f]!; at < offsets[f + 1]!; at++) {
      const callee = targets[at]!;
      if (callee === unknown) {
        role = DepthRole.Keep;
        isBounded = false;
        continue;
      }
      if (depthRole[callee] !== DepthRole.None) role = DepthRole.Keep;
      if (bounded[callee] === 0) isBounded = false;
      sum += work[callee]!;
    }
    depthRole[f] = role;
    work[f] = sum;
    bounded[f] = isBounded && sum <= BOUNDED_WORK ? 1 : 0;
  }
  return { depthRole, bounded };
}

/**
 * Strongly connected components (Tarjan's algorithm with an explicit stack).
 *
 * @returns Each node's component, the nodes in the order their components
 *   completed (callees before callers), and whether each component has a cycle.
 */
function components(
  count: number,
  offsets: Int32Array,
  targets: Int32Array,
): { component: Int32Array; order: number[]; cyclic: Uint8Array } {
  const index = new Int32Array(count).fill(-1);
  const low = new Int32Array(count);
  const component = new Int32Array(count).fill(-1);
  const onStack = new Uint8Array(count);
  const stack: number[] = [];
  const order: number[] = [];
  const cyclicList: number[] = [];
  const frames: number[] = []; // pairs: node, next edge position
  let counter = 0;
  for (let root = 0; root < count; root++) {
    if (index[root] !== -1) continue;
    frames.push(root, offsets[root]!);
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (frames.length > 0) {
      const top = frames.length - 2;
      const v = frames[top]!;
      const at = frames[top + 1]!;
      if (at < offsets[v + 1]!) {
        frames[top + 1] = at + 1;
        const w = targets[at]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          frames.push(w, offsets[w]!);
        } else if (onStack[w] === 1 && index[w]! < low[v]!) {
          low[v] = index[w]!;
        }
        continue;
      }
      frames.length = top;
      if (top > 0) {
        const parent = frames[top - 2]!;
        if (low[v]! < low[parent]!) low[parent] = low[v]!;
      }
      if (low[v] !== index[v]) continue;
      const id = cyclicList.length;
      let size = 0;
      let w: number;
      do {
        w = stack.pop()!;
        onStack[w] = 0;
        component[w] = id;
        order.push(w);
        size++;
      } while (w !== v);
      let selfLoop = false;
      if (size === 1) {
        for (let at2 = offsets[v]!; at2 < offsets[v + 1]!; at2++) {
          if (targets[at2] === v) selfLoop = true;
        }
      }
      cyclicList.push(size > 1 || selfLoop ? 1 : 0);
    }
  }
  return { component, order, cyclic: Uint8Array.from(cyclicList) };
}

/**
 * Defined functions the outside can call (as indices among defined functions):
 * exported ones, the start function, and those named by element segments or
 * `ref.func` anywhere. When the element section cannot be read, every function.
 */
function escapingFunctions(
  bytes: Uint8Array,
  info: ModuleInfo,
  scan: ScanResult,
  imported: number,
): Int32Array {
  const n = info.code.length;
  const marks = new Uint8Array(n);
  const mark = (index: number): void => {
    const f = index - imported;
    if (f >= 0 && f < n) marks[f] = 1;
  };
  for (const entry of info.exports) if (entry.kind === "function") mark(entry.index);
  if (info.start !== null) mark(info.start);
  for (const index of scan.refFuncs) mark(index);
  for (const global of info.globals) constExprRefs(bytes, global.init.start, global.init.end, mark);
  for (const table of info.tables) {
    if (table.init !== null) constExprRefs(bytes, table.init.start, table.init.end, mark);
  }
  const section = info.sections.find((s) => s.id === SECTION_ELEMENT);
  if (section !== undefined) {
    try {
      elementRefs(bytes, section.payloadStart, section.end, mark);
    } catch {
      marks.fill(1);
    }
  }
  const list: number[] = [];
  for (let f = 0; f < n; f++) if (marks[f] === 1) list.push(f);
  return Int32Array.from(list);
}

/** Calls `mark` with the function index of every `ref.func` in a constant expression. */
function constExprRefs(
  bytes: Uint8Array,
  start: number,
  end: number,
  mark: (index: number) => void,
): void {
  const reader = new CodeReader(bytes, start, end);
  while (reader.pos < end) {
    const ctl = reader.next();
    if (reader.op === OP_REF_FUNC) {
      mark(new ByteReader(bytes, { start: reader.start + 1, end }).u32());
    }
    if (ctl === Ctl.End) return;
  }
}

/** Calls `mark` with every function an element segment names. */
function elementRefs(
  bytes: Uint8Array,
  start: number,
  end: number,
  mark: (index: number) => void,
): void {
  const reader = new ByteReader(bytes, { start, end });
  const count = reader.u32();
  for (let i = 0; i < count; i++) {
    const flags = reader.u32();
    if (flags > 7) throw new RangeError(`Unknown element segment flags ${flags}`);
    if ((flags & 3) === 2) reader.u32(); // table index
    if ((flags & 1) === 0) skipConstExpr(reader); // offset of an active segment
    const expressions = (flags & 4) !== 0;
    if ((flags & 3) !== 0) {
      // Element kind (0x00) or reference type.
      const type = reader.u8();
      if (expressions && (type === 0x63 || type === 0x64)) reader.s33();
    }
    const items = reader.u32();
    for (let j = 0; j < items; j++) {
      if (!expressions) {
        mark(reader.u32());
        continue;
      }
      const exprStart = reader.pos;
      skipConstExpr(reader);
      constExprRefs(bytes, exprStart, reader.pos, mark);
    }
  }
}

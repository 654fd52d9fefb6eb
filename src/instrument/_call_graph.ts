/**
 * Which functions can take part in recursion, from the call events of the
 * scan: the depth pass counts only their frames, and the deadline pass checks
 * only before calls that can lead into them.
 *
 * The graph has a node per defined function and two nodes for calls whose
 * callee the module cannot name. The *host* node stands for every imported
 * function: an edge goes to it from every call to an import (the host may
 * call back in), and from it to every function the outside can reach
 * (exported, the start function, in an element segment, or taken by
 * `ref.func`). The *indirect* node stands for the callee of `call_indirect`,
 * `call_ref` and their tail-call forms: edges go from it to every function a
 * reference can name. When nothing from outside can hand the module a
 * reference (it imports nothing but memories, exports no table, tag or
 * reference global, and no exported function takes a reference), those are
 * only the functions the module itself takes references to (element segments
 * and `ref.func`); otherwise, every function the outside can reach. A
 * function is *recursive* when it lies on a cycle of that graph (strongly
 * connected components, found iteratively so that deep call chains cannot
 * overflow the host stack). Tail calls in unreachable code add no edge.
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
  /**
   * The static work bound of each bounded function (its instructions and its
   * callees'), which a call to it counts down the clock for without fuel.
   */
  readonly work: Float64Array;
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
  const marks = referencedFunctions(bytes, info, scan, imported);
  const outside: number[] = [];
  const referenced: number[] = [];
  for (let f = 0; f < n; f++) {
    if (marks[f] !== 0) outside.push(f);
    if ((marks[f]! & REFERENCED) !== 0) referenced.push(f);
  }
  const indirectTargets = isSealed(info, imported) ? referenced : outside;
  const { offsets, targets } = callEdges(n, scan, imported, outside, indirectTargets);
  return decideRoles(scan, offsets, targets);
}

/**
 * The call graph in compressed rows over the `n` defined functions and, last,
 * the nodes `host` (which calls the functions in `outside`) and `indirect`
 * (which calls `indirectTargets`), standing for imports and for calls
 * through tables and references.
 */
function callEdges(
  n: number,
  scan: ScanResult,
  imported: number,
  outside: readonly number[],
  indirectTargets: readonly number[],
): { offsets: Int32Array; targets: Int32Array } {
  const host = n;
  const indirect = n + 1;
  const offsets = new Int32Array(n + 3);
  const { kind, arg, rec, eventStart } = scan;
  const isEdge = (e: number): boolean =>
    kind[e] === Event.Call || (kind[e] === Event.TailCall && rec[e] !== -1);
  for (let f = 0; f < n; f++) {
    let edges = 0;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if (isEdge(e)) edges++;
    }
    offsets[f + 1] = offsets[f]! + edges;
  }
  offsets[host + 1] = offsets[host]! + outside.length;
  offsets[indirect + 1] = offsets[indirect]! + indirectTargets.length;
  const targets = new Int32Array(offsets[n + 2]!);
  for (let f = 0; f < n; f++) {
    let at = offsets[f]!;
    for (let e = eventStart[f]!; e < eventStart[f + 1]!; e++) {
      if (!isEdge(e)) continue;
      const callee = arg[e]! - imported;
      targets[at++] = arg[e]! < 0 ? indirect : callee < 0 || callee >= n ? host : callee;
    }
  }
  targets.set(outside, offsets[host]!);
  targets.set(indirectTargets, offsets[indirect]!);
  return { offsets, targets };
}

/** Decides each defined function's depth role and whether it is bounded, callees first. */
function decideRoles(scan: ScanResult, offsets: Int32Array, targets: Int32Array): CallAnalysis {
  const n = offsets.length - 3;
  const host = n;
  const indirect = n + 1;
  const { component, order, cyclic } = components(n + 2, offsets, targets);

  const depthRole = new Uint8Array(n);
  const bounded = new Uint8Array(n);
  const work = new Float64Array(n);
  // Whether a call through the indirect node can reach counted code.
  let indirectReaches = false;
  // Components come out callees first, so every callee is decided before its callers.
  for (const f of order) {
    if (f === host) continue;
    if (f === indirect) {
      indirectReaches = cyclic[component[f]!] === 1;
      for (let at = offsets[f]!; at < offsets[f + 1]!; at++) {
        if (depthRole[targets[at]!] !== DepthRole.None) indirectReaches = true;
      }
      continue;
    }
    if (cyclic[component[f]!]) {
      depthRole[f] = DepthRole.Count;
      continue;
    }
    let role: number = DepthRole.None;
    let sum = scan.size[f]!;
    let isBounded = true;
    for (let at = offsets[f]!; at < offsets[f + 1]!; at++) {
      const callee = targets[at]!;
      if (callee === host || callee === indirect) {
        if (callee === host || indirectReaches) role = DepthRole.Keep;
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
  return { depthRole, bounded, work };
}

/** Value types that cannot hold a reference. */
const NUMBER_TYPES: ReadonlySet<string> = new Set(["i32", "i64", "f32", "f64", "v128"]);

/**
 * Whether nothing from outside can hand the module a function reference: it
 * imports nothing but memories, and exports no table, no tag, no global of a
 * reference type and no function taking a reference.
 */
function isSealed(info: ModuleInfo, imported: number): boolean {
  if (info.imports.some((entry) => entry.kind !== "memory")) return false;
  for (const entry of info.exports) {
    switch (entry.kind) {
      case "table":
      case "tag":
        return false;
      case "global": {
        const type = info.globals[entry.index]?.type.valueType;
        if (type === undefined || !NUMBER_TYPES.has(type)) return false;
        break;
      }
      case "function": {
        const type = info.types[info.functions[entry.index - imported] ?? -1];
        if (type?.kind !== "func" || !type.params.every((p) => NUMBER_TYPES.has(p))) return false;
        break;
      }
    }
  }
  return true;
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

/** Marks of {@linkcode referencedFunctions}. */
const EXPORTED = 1;
const REFERENCED = 2;

/**
 * Per defined function, whether the outside can call it by its export or as
 * the start function ({@linkcode EXPORTED}), and whether the module takes a
 * reference to it, in an element segment or with `ref.func`
 * ({@linkcode REFERENCED}). When the element section cannot be read, every
 * function is referenced.
 */
function referencedFunctions(
  bytes: Uint8Array,
  info: ModuleInfo,
  scan: ScanResult,
  imported: number,
): Uint8Array {
  const n = info.code.length;
  const marks = new Uint8Array(n);
  const mark = (index: number, how = REFERENCED): void => {
    const f = index - imported;
    if (f >= 0 && f < n) marks[f]! |= how;
  };
  for (const entry of info.exports) if (entry.kind === "function") mark(entry.index, EXPORTED);
  if (info.start !== null) mark(info.start, EXPORTED);
  for (const index of scan.refFuncs) mark(index);
  for (const global of info.globals) {
    constExprRefs(bytes, global.init.start, global.init.end, (i) => mark(i));
  }
  for (const table of info.tables) {
    if (table.init !== null) constExprRefs(bytes, table.init.start, table.init.end, (i) => mark(i));
  }
  const section = info.sections.find((s) => s.id === SECTION_ELEMENT);
  if (section !== undefined) {
    try {
      elementRefs(bytes, section.payloadStart, section.end, (i) => mark(i));
    } catch {
      marks.fill(EXPORTED | REFERENCED);
    }
  }
  return marks;
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

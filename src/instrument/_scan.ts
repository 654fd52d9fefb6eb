/**
 * The first of the instrumenter's two passes over code: it decodes each
 * function body once and records, as a list of events at byte offsets of the
 * input, every place where the second pass (`_rewrite.ts`) splices code in:
 * fuel charges with their final costs, calls with their callees, and loop
 * headers. The rewrite then copies the input between events without decoding
 * it again, and the call graph (`_call_graph.ts`) is built from the call events
 * before any body is written.
 *
 * The scan is also where the fuel cost model of `_fuel.ts` is applied. Code is
 * cut into *records*, each a set of instructions that surely all run once the
 * record's charge has run (unless a trap or an exception cuts the run short):
 *
 * - A record starts at the function entry, at each loop header, at each arm
 *   of an `if` and each legacy `catch`, after each conditional branch, and
 *   after the `end` of a construct that something inside branches out of.
 * - The code after the `end` of a construct that nothing inside branches out
 *   of (no `br` to an enclosing label, `return`, tail call or `throw`) joins
 *   the record that was open when the construct began: whoever enters the
 *   construct leaves it at its `end`.
 * - When an `if` has an `else`, the smaller of its two arms' first records is
 *   moved into the record before the `if`, and each arm's charge keeps only its
 *   excess over it, so the cheaper arm usually charges nothing.
 * - A loop's header record is paid for by the records that enter it, when
 *   each is sure to run into it: the record before the loop, and the records
 *   that end with a `br` back to it (no conditional branch, table or catch
 *   clause targets the loop, and no `br` back is in the header's own record).
 *   The header then charges nothing, so a loop that tests at the top charges
 *   once an iteration instead of twice.
 *
 * A charge therefore never pays for an instruction that a call returning
 * normally would not run, and the fuel consumed is exact for such a call.
 * Nesting is tracked with explicit stacks, never recursion.
 *
 * @module
 */

import type { CodeReader } from "./_code.ts";
import { Frame, Nesting } from "./_code.ts";
import { Ctl } from "./_opcodes.ts";
import { BulkKind } from "./_bulk.ts";
import type { WaitInstruction } from "./_atomic_wait.ts";
import { type SplitInstruction, SplitOp } from "./_bulk_split.ts";

/** Kinds of scan events. */
export const Event = {
  /** A fuel charge; `arg` is the record whose cost it charges. */
  Charge: 0,
  /** A call; `arg` is the callee's function index, or -1 when indirect. */
  Call: 1,
  /** A tail call; `arg` as for {@linkcode Event.Call}. */
  TailCall: 2,
  /** A loop header (just after the `loop` instruction). */
  Loop: 3,
  /** Control leaves the function, or may (a branch to its label, a throw, a trap). */
  Exit: 4,
  /** A call just returned. */
  Resume: 5,
  /** A bulk memory or table instruction; `arg` is its {@linkcode BulkKind}. */
  Bulk: 6,
  /** An atomic wait; `arg` indexes {@linkcode ScanResult.waitSites}. */
  Wait: 7,
  /**
   * A `return`, reachable or not (recorded with {@linkcode ScanOptions.returns}),
   * where a body returning one more value pushes it.
   */
  Return: 8,
  /**
   * A `local.get`, `local.set` or `local.tee` of one of the first declared
   * locals, reachable or not (see {@linkcode ScanOptions.movedLocals}); `arg`
   * is the local's position among the declared locals.
   */
  Local: 9,
  /**
   * A `throw`, `rethrow` or `throw_ref` (recorded with
   * {@linkcode ScanOptions.waits}): its cost in time is the engine's search
   * for a handler, through every frame it unwinds, which fuel does not
   * measure, so it is paced by the clock.
   */
  Throw: 10,
  /**
   * A `memory.fill` or `memory.copy` that a function of its own replaces, to
   * do it in steps with the deadline checked between (recorded with
   * {@linkcode ScanOptions.waits}, just after its {@linkcode Event.Bulk});
   * `arg` indexes {@linkcode ScanResult.splitSites}.
   */
  Split: 11,
  /**
   * Without fuel, where a record begins (recorded with
   * {@linkcode ScanOptions.loops}); `arg` is the record: a long one counts
   * down the clock for its length, as a charge would charge it.
   */
  Pace: 12,
} as const;

/** Per-function facts of a scan. */
export const BodyFlags = {
  /** The body has a loop. */
  Loop: 1,
  /** The body handles exceptions (`try` or `try_table`). */
  Try: 2,
  /**
   * The body has an instruction that may trap or throw by itself: any but the
   * ones without effects (see `EFFECT_FREE`), `global.set`, control and a
   * direct `call` (whose callee answers for its own traps).
   */
  MayTrap: 4,
} as const;

/** Marks unreachable code where a record index would be. */
const DEAD = -1;
/** Larger than any frame index. */
const NO_TARGET = 0x7fffffff;

/** Frame flags. */
const TARGETED = 1;
const HAS_ELSE = 2;
const THEN_LIVE = 4;
const ARM_LIVE = 8;
/**
 * A loop's header cannot be paid for by its way in and its back edges (see
 * {@linkcode BodyScanner}): something branches to it conditionally or from
 * a table, a catch clause does, or a back edge is in the header's own record.
 */
const HEADER_KEPT = 16;

const OP_TRY_TABLE = 0x1f;

/**
 * What a throw costs to pass a handler, in units of one catch clause (about
 * 9 ns in V8 13): each frame costs about 36 ns, each `try_table` (or legacy
 * `try`) in scope 65 ns more, and each of its catch clauses 9 ns.
 */
export const HANDLER_WEIGHT = { try: 7, clause: 1 } as const;
const OP_BR_TABLE = 0x0e;
const OP_BR = 0x0c;
const OP_RETURN = 0x0f;
const OP_UNREACHABLE = 0x00;
const OP_THROW = 0x08;
const OP_THROW_REF = 0x0a;
const OP_GLOBAL_GET = 0x23;
const OP_GLOBAL_SET = 0x24;
const OP_I32_ADD = 0x6a;
const OP_I32_SUB = 0x6b;
/** Instructions a prologue's `i32.sub` and `global.set` may each come after the step before. */
const PROLOGUE_REACH = 8;
/** Instructions an epilogue's `global.set` may come after its `i32.add`. */
const EPILOGUE_REACH = 4;
const OP_CALL = 0x10;
const OP_RETURN_CALL = 0x12;
const OP_REF_FUNC = 0xd2;
const OP_LOCAL_GET = 0x20;
const OP_LOCAL_TEE = 0x22;
const OP_GC_PREFIX = 0xfb;
const OP_TABLE_SET = 0x26;
const MISC_PREFIX = 0xfc;
const ATOMIC_PREFIX = 0xfe;
/** `0xfc`-prefixed instructions that change tables or drop segments, by sub-opcode. */
const STATE_CHANGING_MISC: Readonly<Record<number, string>> = {
  9: "data.drop",
  12: "table.init",
  13: "elem.drop",
  14: "table.copy",
  15: "table.grow",
  17: "table.fill",
};

/**
 * Per one-byte opcode, 1 when the instruction has no effect beyond its
 * operands and results: it cannot trap, write memory, a table or a global,
 * call or branch (locals, `global.get`, constants, `drop`, `select`, and the
 * numeric instructions but for integer division and float truncation).
 */
const EFFECT_FREE = (() => {
  const table = new Uint8Array(256);
  const set = (from: number, to: number): void => {
    table.fill(1, from, to + 1);
  };
  set(0x01, 0x01); // nop
  set(0x1a, 0x1c); // drop, select, select t
  set(0x20, 0x23); // local.get/set/tee, global.get
  set(0x41, 0xc4); // constants, comparisons, arithmetic, conversions
  for (const op of [0x6d, 0x6e, 0x6f, 0x70, 0x7f, 0x80, 0x81, 0x82]) table[op] = 0; // div, rem
  table.fill(0, 0xa8, 0xab + 1); // i32.trunc_f32/f64
  table.fill(0, 0xae, 0xb1 + 1); // i64.trunc_f32/f64
  set(0xd0, 0xd3); // ref.null, ref.is_null, ref.func, ref.eq
  return table;
})();

/** Which events a scan records. */
export interface ScanOptions {
  /** Record fuel charges. */
  readonly fuel: boolean;
  /** Record loop headers. */
  readonly loops: boolean;
  /** Record exits and returns from calls (where a cached global is stored and loaded). */
  readonly exits: boolean;
  /** Record bulk instructions, knowing which memories and tables are 64-bit; `null` not to. */
  readonly bulk: AddressTypes | null;
  /** Record atomic waits and throws: what the deadline paces by the clock of its own. */
  readonly waits: boolean;
  /**
   * Record every `return` and every tail call, unreachable ones included
   * (whose record is -1), which a body given another signature rewrites too.
   */
  readonly returns?: boolean;
  /**
   * Record every access to the first this many declared locals, which a body
   * given more parameters moves (see `_internal_body.ts`).
   */
  readonly movedLocals?: number;
}

/** Which memories and tables have 64-bit addresses, by index, and the tables' element types. */
export interface AddressTypes {
  /** Per memory, whether it is a 64-bit memory. */
  readonly memory64: readonly boolean[];
  /** Per table, whether it is a 64-bit table. */
  readonly table64: readonly boolean[];
  /** Per table, its reference type as encoded (what `table.fill` takes). */
  readonly tableTypes: readonly Uint8Array[];
}

/** The encoding of `i32`, a memory fill's value type. */
const I32_TYPE = new Uint8Array([0x7f]);

/**
 * Fuel units one record may take before the code after it is charged by a
 * record of its own: a basic block of two million loads that missed every
 * cache was charged once, before it ran, and ran 0.3-0.5 s past a 50 ms
 * deadline (its check came with its charge). Charged in parts, the fuel's
 * slow path (which reads the clock once a slice of fuel is used, see
 * `MAX_SLICE` in `_instance_limits.ts`) comes within the block. A run that
 * completes is charged the same; one that traps in such a block is charged
 * only the parts it began.
 */
export const MAX_RECORD_UNITS = 1 << 16;

/**
 * The events of every scanned body, in growable typed arrays shared by all
 * bodies of a module, plus what the call graph needs per function.
 */
export class ScanResult {
  /** Absolute input offset of each event. */
  pos: Int32Array = new Int32Array(1024);
  /** {@linkcode Event} kind of each event. */
  kind: Uint8Array = new Uint8Array(1024);
  /** Record index (charges) or callee (calls) of each event. */
  arg: Int32Array = new Int32Array(1024);
  /** Straight-line run each call event is in: calls in one run have no control flow between them. */
  run: Int32Array = new Int32Array(1024);
  /** Record each call and tail call is in (-1 when unreachable); unset for other events. */
  rec: Int32Array = new Int32Array(1024);
  /**
   * 1 for a call or tail call that only instructions without effects (no
   * trap, store, call or control) separate from the start of its record.
   */
  pure: Uint8Array = new Uint8Array(1024);
  /** Number of events. */
  events = 0;
  /** Final fuel cost of each record. */
  cost: Int32Array = new Int32Array(1024);
  /** Number of records. */
  records = 0;
  /** First event of each scanned body; `eventStart[i + 1]` ends body `i`. */
  readonly eventStart: number[] = [0];
  /** Number of instructions of each scanned body. */
  readonly size: number[] = [];
  /**
   * The instructions of each loop's body (nested loops' too), by the index of
   * its {@linkcode Event.Loop}: without fuel, what an iteration counts down
   * the clock for.
   */
  readonly loopSize: Map<number, number> = new Map();
  /** Units each scanned body's entry pays for its declared locals (see `frameUnits`). */
  readonly frame: number[] = [];
  /** {@linkcode BodyFlags} of each scanned body. */
  readonly flags: number[] = [];
  /** Function indices that `ref.func` instructions in code take. */
  readonly refFuncs: number[] = [];
  /**
   * The globals some body uses as a stack frame: it starts with `global.get g`,
   * lowers it (`i32.sub`, then `global.set g`) and raises it again itself
   * (`i32.add`, then `global.set g`), as LLVM's and AssemblyScript's
   * prologues and epilogues do, optimized or not.
   */
  readonly frameGlobals: Set<number> = new Set();
  /**
   * The first instruction found that changes state a worker cannot hand
   * over when it parks (a table's contents, a segment's dropped flag), or
   * `null`.
   */
  stateChange: string | null = null;
  /** Distinct atomic wait instructions (opcode and memory argument) of the code. */
  readonly waits: WaitInstruction[] = [];
  /** Per wait event: the index of its instruction in {@linkcode ScanResult.waits}, and where it ends. */
  readonly waitSites: { readonly wait: number; readonly end: number }[] = [];
  /** Bit `1 << kind` for each {@linkcode BulkKind} recorded. */
  bulkKinds = 0;
  /** Distinct `memory.fill` and `memory.copy` instructions of the code that are split. */
  readonly splits: SplitInstruction[] = [];
  /** Per split event: the index of its instruction in {@linkcode ScanResult.splits}, and where it ends. */
  readonly splitSites: { readonly split: number; readonly end: number }[] = [];
  readonly #splitKeys = new Map<string, number>();
  /** Whether a throw was recorded (see {@linkcode Event.Throw}). */
  throws = false;
  /**
   * The most a throw costs to pass one frame of the code, in
   * {@linkcode HANDLER_WEIGHT} units: the largest weight of handlers in
   * scope anywhere in a body.
   */
  handlerWeight = 0;
  readonly #waitKeys = new Map<string, number>();

  /** Notes a split instruction that ends at `end`; returns its site. */
  addSplit(instruction: SplitInstruction, end: number): number {
    const key = `${instruction.op}:${instruction.dst}:${instruction.src}`;
    let split = this.#splitKeys.get(key);
    if (split === undefined) {
      split = this.splits.length;
      this.splits.push(instruction);
      this.#splitKeys.set(key, split);
    }
    this.splitSites.push({ split, end });
    return this.splitSites.length - 1;
  }

  /** Notes a wait instruction whose memory argument is `bytes[memarg, end)`; returns its site. */
  addWait(bytes: Uint8Array, memarg: number, end: number, op: number): number {
    const key = `${op}:${bytes.subarray(memarg, end).join(",")}`;
    let wait = this.#waitKeys.get(key);
    if (wait === undefined) {
      const flags = lebAt(bytes, memarg);
      const memory = (flags & 0x40) === 0 ? 0 : lebAt(bytes, lebEnd);
      wait = this.waits.length;
      this.waits.push({ op, memory, memarg: bytes.slice(memarg, end) });
      this.#waitKeys.set(key, wait);
    }
    this.waitSites.push({ wait, end });
    return this.waitSites.length - 1;
  }

  /** Appends an event; `rec` and `pure` describe a call. */
  push(kind: number, pos: number, arg: number, run: number, rec = -1, pure = false): void {
    const i = this.events;
    if (i === this.pos.length) this.#growEvents();
    this.pos[i] = pos;
    this.kind[i] = kind;
    this.arg[i] = arg;
    this.run[i] = run;
    this.rec[i] = rec;
    this.pure[i] = pure ? 1 : 0;
    this.events = i + 1;
  }

  /** Adds a record of cost zero; returns its index. */
  record(): number {
    const i = this.records;
    if (i === this.cost.length) {
      const next = new Int32Array(i * 2);
      next.set(this.cost);
      this.cost = next;
    }
    this.cost[i] = 0;
    this.records = i + 1;
    return i;
  }

  #growEvents(): void {
    const size = this.pos.length * 2;
    const pos = new Int32Array(size);
    pos.set(this.pos);
    this.pos = pos;
    const kind = new Uint8Array(size);
    kind.set(this.kind);
    this.kind = kind;
    const arg = new Int32Array(size);
    arg.set(this.arg);
    this.arg = arg;
    const run = new Int32Array(size);
    run.set(this.run);
    this.run = run;
    const rec = new Int32Array(size);
    rec.set(this.rec);
    this.rec = rec;
    const pure = new Uint8Array(size);
    pure.set(this.pure);
    this.pure = pure;
  }
}

/** Reads an unsigned LEB128 at `at` (already bounds-checked by the reader); sets {@linkcode lebEnd}. */
function lebAt(bytes: Uint8Array, at: number): number {
  let result = 0;
  let shift = 0;
  while (true) {
    const byte = bytes[at++]!;
    if (shift < 28) result |= (byte & 0x7f) << shift;
    else result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0 || shift > 35) break;
  }
  lebEnd = at;
  return result >>> 0;
}

let lebEnd = 0;

/** Scans function bodies into a {@linkcode ScanResult}; reusable across bodies. */
export class BodyScanner {
  readonly #options: ScanOptions;
  readonly #out: ScanResult;
  readonly #nesting = new Nesting();
  /** Per open frame, by nesting depth: the record open when the frame began. */
  #parent = new Int32Array(64);
  /** Lowest frame index something inside the frame branches to. */
  #minTarget = new Int32Array(64);
  #flags = new Uint8Array(64);
  /** First record of each `if`'s then arm and else arm. */
  #thenRecord = new Int32Array(64);
  #elseRecord = new Int32Array(64);
  /** Each loop's header record. */
  #headerRecord = new Int32Array(64);
  /**
   * The records that end with a `br` back to a loop, in one list per open
   * loop (so a loop's `end` visits only its own): each frame's latest in
   * {@linkcode #lastBackEdge}, each one's previous at the same position of
   * {@linkcode #previousBackEdge}, -1 ending a list.
   */
  readonly #backEdges: number[] = [];
  readonly #previousBackEdge: number[] = [];
  #lastBackEdge = new Int32Array(64);
  /** Per open frame: the weight of the handlers in scope in it, and the most inside it. */
  #handlers = new Int32Array(64);
  #handlersPeak = new Int32Array(64);
  /** Per legacy `try`, once its first `catch` is read: the most in scope in its body. */
  #tryBodyPeak = new Int32Array(64);
  #cur = DEAD;
  #run = 0;
  /** Instructions read so far in the body being scanned. */
  #read = 0;
  /** Per open loop frame: its {@linkcode Event.Loop}'s index (-1: none), and {@linkcode #read} then. */
  readonly #loopEvent: number[] = [];
  readonly #loopRead: number[] = [];
  #bodyFlags = 0;
  /** Whether only instructions without effects ran since the current record started. */
  #pure = false;

  /**
   * @param options Which events to record.
   * @param out Where to record them.
   */
  constructor(options: ScanOptions, out: ScanResult) {
    this.#options = options;
    this.#out = out;
  }

  /**
   * Scans one body, whose locals the reader has already passed.
   *
   * @param reader At the body's first instruction.
   * @param params The function's number of parameters (for {@linkcode ScanOptions.movedLocals}).
   * @param frame Units its entry pays for its declared locals, with its entry record.
   * @throws {BinaryFormatError} When the body is malformed.
   */
  scan(reader: CodeReader, params = 0, frame = 0): void {
    const out = this.#out;
    const bytes = reader.bytes;
    const nesting = this.#nesting;
    nesting.reset();
    this.#backEdges.length = this.#previousBackEdge.length = 0;
    this.#open(0, DEAD);
    this.#cur = this.#newRecord(reader.pos);
    out.cost[this.#cur]! += frame;
    out.frame.push(frame);
    this.#bodyFlags = 0;
    const exits = this.#options.exits;
    const moved = this.#options.movedLocals ?? 0;
    let size = 0;
    // A stack frame (see ScanResult.frameGlobals): which global, how far along, and when the
    // last step was (in instructions).
    let frameGlobal = -1;
    let frameStep = 0;
    let frameAt = 0;
    while (true) {
      const ctl = reader.next();
      size++;
      this.#read = size;
      if (ctl === Ctl.None) {
        if (this.#cur !== DEAD) out.cost[this.#cur]!++;
        const op = reader.op;
        if (size === 1 && op === OP_GLOBAL_GET) {
          frameGlobal = lebAt(bytes, reader.start + 1);
          frameStep = 1;
          frameAt = size;
        } else if (frameStep !== 0) {
          const step = frameStep;
          if (step === 1 && op === OP_I32_SUB) {
            frameStep = 2;
          } else if (
            (step === 2 || step === 4) && op === OP_GLOBAL_SET &&
            lebAt(bytes, reader.start + 1) === frameGlobal
          ) {
            frameStep = step + 1;
            if (frameStep === 5) {
              out.frameGlobals.add(frameGlobal);
              frameStep = 0;
            }
          } else if (op === OP_I32_ADD && step >= 3) {
            frameStep = 4;
          }
          if (frameStep !== step || (op === OP_I32_ADD && step >= 3)) frameAt = size;
          else if (step < 3 && size - frameAt > PROLOGUE_REACH) frameStep = 0;
          else if (step === 4 && size - frameAt > EPILOGUE_REACH) frameStep = 3;
        }
        if (op >= 0x100 || EFFECT_FREE[op] === 0) {
          this.#pure = false;
          if (op !== OP_GLOBAL_SET) this.#bodyFlags |= BodyFlags.MayTrap;
        } else if (op >= OP_LOCAL_GET && op <= OP_LOCAL_TEE && moved > 0) {
          const local = lebAt(bytes, reader.start + 1) - params;
          if (local >= 0 && local < moved) out.push(Event.Local, reader.start, local, this.#run);
        }
        if (op === OP_REF_FUNC) out.refFuncs.push(lebAt(bytes, reader.start + 1));
        else if (op === OP_TABLE_SET) this.#noteStateChange(op);
        else if (op >>> 24 === MISC_PREFIX) {
          this.#noteStateChange(op);
          if (this.#options.bulk !== null && this.#cur !== DEAD) this.#noteBulk(reader);
        } else if (op >>> 24 === ATOMIC_PREFIX && this.#options.waits && this.#cur !== DEAD) {
          this.#noteWait(reader);
        }
        // A long run of straight-line code is charged in parts (see MAX_RECORD_UNITS).
        if (
          this.#cur !== DEAD && out.cost[this.#cur]! >= MAX_RECORD_UNITS &&
          (this.#options.fuel || this.#options.loops)
        ) {
          this.#cur = this.#newRecord(reader.pos);
        }
        continue;
      }
      if (ctl === Ctl.Call) {
        if (reader.op !== OP_CALL) this.#bodyFlags |= BodyFlags.MayTrap; // call_indirect, call_ref
        if (this.#cur !== DEAD) {
          out.cost[this.#cur]!++;
          const callee = reader.op === OP_CALL ? lebAt(bytes, reader.start + 1) : -1;
          out.push(Event.Call, reader.start, callee, this.#run, this.#cur, this.#pure);
          if (exits) out.push(Event.Resume, reader.pos, 0, this.#run);
        }
        this.#pure = false;
        continue;
      }
      this.#run++;
      this.#pure = false;
      if (this.#step(reader, ctl)) break;
    }
    nesting.finish(reader);
    out.size.push(size);
    out.flags.push(this.#bodyFlags);
    out.eventStart.push(out.events);
  }

  /**
   * Handles a control instruction; returns whether it ended the function.
   * Kept whole: one flat switch over the control kinds, run for every control instruction.
   */
  #step(reader: CodeReader, ctl: number): boolean {
    const out = this.#out;
    const nesting = this.#nesting;
    const live = this.#cur !== DEAD;
    switch (ctl) {
      case Ctl.Block:
      case Ctl.Try: {
        const cur = this.#cur;
        if (ctl === Ctl.Try || reader.op === OP_TRY_TABLE) this.#bodyFlags |= BodyFlags.Try;
        nesting.step(reader, ctl);
        const d = nesting.depth - 1;
        this.#open(d, cur);
        if (reader.op === OP_TRY_TABLE) {
          this.#addHandlers(d, HANDLER_WEIGHT.try + this.#catchClauses(reader, d, live));
        } else if (ctl === Ctl.Try) {
          this.#addHandlers(d, HANDLER_WEIGHT.try);
        }
        return false;
      }
      case Ctl.Loop: {
        this.#bodyFlags |= BodyFlags.Loop;
        nesting.step(reader, ctl);
        const d = nesting.depth - 1;
        this.#open(d, this.#cur);
        this.#loopEvent[d] = -1;
        if (live) {
          // Its argument is the header's record, made next: what the first block costs.
          if (this.#options.loops) {
            this.#loopEvent[d] = out.events;
            this.#loopRead[d] = this.#read;
            out.push(Event.Loop, reader.pos, out.records, this.#run);
          }
          this.#cur = this.#headerRecord[d] = this.#newRecord(reader.pos);
        }
        return false;
      }
      case Ctl.If: {
        if (live) out.cost[this.#cur]!++;
        nesting.step(reader, ctl);
        const d = nesting.depth - 1;
        this.#open(d, this.#cur);
        if (live) this.#cur = this.#thenRecord[d] = this.#newRecord(reader.pos);
        return false;
      }
      case Ctl.Else: {
        nesting.step(reader, ctl);
        const d = nesting.depth - 1;
        this.#flags[d]! |= HAS_ELSE | (live ? THEN_LIVE : 0);
        this.#cur = this.#parent[d] === DEAD
          ? DEAD
          : (this.#elseRecord[d] = this.#newRecord(reader.pos));
        return false;
      }
      case Ctl.Catch: {
        nesting.step(reader, ctl);
        const d = nesting.depth - 1;
        this.#legacyCatch(d);
        if (live) this.#flags[d]! |= ARM_LIVE;
        this.#cur = this.#parent[d] === DEAD ? DEAD : this.#newRecord(reader.pos);
        return false;
      }
      case Ctl.End:
      case Ctl.Delegate: {
        if (nesting.step(reader, ctl)) {
          if (live && this.#options.exits) out.push(Event.Exit, reader.start, 0, this.#run);
          if (this.#handlersPeak[0]! > out.handlerWeight) {
            out.handlerWeight = this.#handlersPeak[0]!;
          }
          return true;
        }
        this.#close(nesting.depth, reader.pos);
        return false;
      }
      case Ctl.Branch: {
        if (!live) return false;
        out.cost[this.#cur]!++;
        const t = this.#branchLabel(reader);
        if (t <= 0) this.#exit(reader);
        this.#target(t);
        this.#cur = this.#newRecord(reader.pos);
        return false;
      }
      case Ctl.Jump: {
        if (reader.op === OP_UNREACHABLE || (reader.op >= OP_THROW && reader.op <= OP_THROW_REF)) {
          this.#bodyFlags |= BodyFlags.MayTrap;
        }
        if (reader.op === OP_RETURN && this.#options.returns === true) {
          out.push(Event.Return, reader.start, 0, this.#run);
        }
        if (!live) return false;
        out.cost[this.#cur]!++;
        if (reader.op >= OP_THROW && reader.op <= OP_THROW_REF && this.#options.waits) {
          out.throws = true;
          out.push(Event.Throw, reader.start, 0, this.#run);
        }
        if (this.#jumpTargets(reader)) this.#exit(reader);
        this.#cur = DEAD;
        return false;
      }
      case Ctl.TailCall: {
        if (reader.op !== OP_RETURN_CALL) this.#bodyFlags |= BodyFlags.MayTrap;
        const callee = reader.op === OP_RETURN_CALL ? lebAt(reader.bytes, reader.start + 1) : -1;
        if (!live) {
          if (this.#options.returns === true) {
            out.push(Event.TailCall, reader.start, callee, this.#run, DEAD);
          }
          return false;
        }
        out.cost[this.#cur]!++;
        out.push(Event.TailCall, reader.start, callee, this.#run, this.#cur, this.#pure);
        this.#target(0);
        this.#cur = DEAD;
        return false;
      }
    }
    return false;
  }

  /** Records a bulk instruction (the one just read, if it is one) with the kind of its length. */
  #noteBulk(reader: CodeReader): void {
    const bytes = reader.bytes;
    const sub = lebAt(bytes, reader.start + 1);
    const { memory64, table64 } = this.#options.bulk!;
    let kind: number;
    let split: SplitInstruction | null = null;
    switch (sub) {
      case 8: // memory.init data memory: an i32 length
        kind = BulkKind.Memory32;
        break;
      case SplitOp.Copy: { // memory.copy dst src: 64-bit when both are
        const dst = lebAt(bytes, lebEnd);
        const src = lebAt(bytes, lebEnd);
        const [dst64, src64] = [memory64[dst] === true, memory64[src] === true];
        kind = dst64 && src64 ? BulkKind.Memory64 : BulkKind.Memory32;
        split = { op: sub, dst, src, dst64, src64, value: null };
        break;
      }
      case SplitOp.Fill: { // memory.fill memory
        const memory = lebAt(bytes, lebEnd);
        const is64 = memory64[memory] === true;
        kind = is64 ? BulkKind.Memory64 : BulkKind.Memory32;
        split = { op: sub, dst: memory, src: memory, dst64: is64, src64: is64, value: I32_TYPE };
        break;
      }
      case 12: // table.init elem table: an i32 length
        kind = BulkKind.Table32;
        break;
      case SplitOp.TableCopy: { // table.copy dst src
        const dst = lebAt(bytes, lebEnd);
        const src = lebAt(bytes, lebEnd);
        const [dst64, src64] = [table64[dst] === true, table64[src] === true];
        kind = dst64 && src64 ? BulkKind.Table64 : BulkKind.Table32;
        split = { op: sub, dst, src, dst64, src64, value: null };
        break;
      }
      case SplitOp.TableFill: { // table.fill table
        const table = lebAt(bytes, lebEnd);
        const is64 = table64[table] === true;
        kind = is64 ? BulkKind.Table64 : BulkKind.Table32;
        const value = this.#options.bulk!.tableTypes[table]!;
        split = { op: sub, dst: table, src: table, dst64: is64, src64: is64, value };
        break;
      }
      default:
        return;
    }
    this.#out.bulkKinds |= 1 << kind;
    this.#out.push(Event.Bulk, reader.start, kind, this.#run);
    if (split !== null && this.#options.waits) {
      this.#out.push(Event.Split, reader.start, this.#out.addSplit(split, reader.pos), this.#run);
    }
  }

  /** Records an atomic wait, if the instruction just read is one. */
  #noteWait(reader: CodeReader): void {
    const bytes = reader.bytes;
    const sub = lebAt(bytes, reader.start + 1);
    if (sub !== 1 && sub !== 2) return;
    const site = this.#out.addWait(bytes, lebEnd, reader.pos, sub);
    this.#out.push(Event.Wait, reader.start, site, this.#run);
  }

  #noteStateChange(op: number): void {
    if (this.#out.stateChange !== null) return;
    const name = op === OP_TABLE_SET ? "table.set" : STATE_CHANGING_MISC[op & 0xffffff];
    if (name !== undefined) this.#out.stateChange = name;
  }

  /** Notes that the instruction just read may leave the function. */
  #exit(reader: CodeReader): void {
    if (this.#options.exits) this.#out.push(Event.Exit, reader.start, 0, this.#run);
  }

  #newRecord(pos: number): number {
    this.#pure = true;
    const record = this.#out.record();
    if (this.#options.fuel) this.#out.push(Event.Charge, pos, record, this.#run);
    else if (this.#options.loops) this.#out.push(Event.Pace, pos, record, this.#run);
    return record;
  }

  #open(d: number, parent: number): void {
    if (d >= this.#parent.length) this.#grow();
    this.#handlers[d] = this.#handlersPeak[d] = d === 0 ? 0 : this.#handlers[d - 1]!;
    this.#parent[d] = parent;
    this.#minTarget[d] = NO_TARGET;
    this.#flags[d] = 0;
    this.#thenRecord[d] = DEAD;
    this.#elseRecord[d] = DEAD;
    this.#headerRecord[d] = DEAD;
    this.#lastBackEdge[d] = -1;
  }

  /**
   * Notes a legacy `catch` or `catch_all` of the `try` of frame `d`: a
   * clause in scope in the try's body (read before it), but not in the
   * handlers' bodies, where only what is outside the `try` is.
   */
  #legacyCatch(d: number): void {
    const outside = this.#handlers[d - 1]!;
    if (this.#handlers[d] !== outside) {
      this.#tryBodyPeak[d] = this.#handlersPeak[d]!;
      this.#handlers[d] = outside;
    }
    const body = this.#tryBodyPeak[d]! += HANDLER_WEIGHT.clause;
    if (body > this.#handlersPeak[d]!) this.#handlersPeak[d] = body;
  }

  /** Adds `weight` to the handlers in scope in frame `d` (and in what it holds). */
  #addHandlers(d: number, weight: number): void {
    this.#handlers[d]! += weight;
    this.#handlersPeak[d]! += weight;
  }

  /** Closes frame `d` at its `end`, which ends at `pos`. */
  #close(d: number, pos: number): void {
    if (this.#handlersPeak[d]! > this.#handlersPeak[d - 1]!) {
      this.#handlersPeak[d - 1] = this.#handlersPeak[d]!;
    }
    const cost = this.#out.cost;
    const parent = this.#parent[d]!;
    const flags = this.#flags[d]!;
    const kind = this.#nesting.kindAt(d);
    let reachable = this.#cur !== DEAD || (kind !== Frame.Loop && (flags & TARGETED) !== 0);
    if (kind === Frame.If) {
      if ((flags & HAS_ELSE) === 0) {
        reachable ||= parent !== DEAD;
      } else {
        reachable ||= (flags & THEN_LIVE) !== 0;
        const thenRecord = this.#thenRecord[d]!;
        const elseRecord = this.#elseRecord[d]!;
        if (parent !== DEAD && thenRecord !== DEAD && elseRecord !== DEAD) {
          // Not past MAX_RECORD_UNITS: the parent's charge would cover both arms' long runs.
          const room = Math.max(0, MAX_RECORD_UNITS - cost[parent]!);
          const shared = Math.min(cost[thenRecord]!, cost[elseRecord]!, room);
          cost[parent]! += shared;
          cost[thenRecord]! -= shared;
          cost[elseRecord]! -= shared;
        }
      }
    } else if (kind === Frame.Try) {
      reachable ||= (flags & ARM_LIVE) !== 0;
    } else if (kind === Frame.Loop) {
      this.#payHeader(d, parent, (flags & HEADER_KEPT) === 0);
      const event = this.#loopEvent[d] ?? -1;
      if (event >= 0) this.#out.loopSize.set(event, this.#read - this.#loopRead[d]!);
    }
    const minTarget = this.#minTarget[d]!;
    if (minTarget < this.#minTarget[d - 1]!) this.#minTarget[d - 1] = minTarget;
    if (!reachable) this.#cur = DEAD;
    else if (minTarget >= d && parent !== DEAD) this.#cur = parent;
    else this.#cur = this.#newRecord(pos);
  }

  /**
   * Notes a branch from the innermost frame to frame `t` (by index);
   * `backEdge`: an unconditional `br`, whose record the loop it targets may
   * charge for its header (see {@linkcode #payHeader}).
   */
  #target(t: number, backEdge = false): void {
    const top = this.#nesting.depth - 1;
    if (t < 0) t = 0;
    if (t < this.#minTarget[top]!) this.#minTarget[top] = t;
    let flags = this.#flags[t]! | TARGETED;
    if (this.#nesting.kindAt(t) === Frame.Loop) {
      if (backEdge && this.#cur !== this.#headerRecord[t]) {
        this.#previousBackEdge.push(this.#lastBackEdge[t]!);
        this.#lastBackEdge[t] = this.#backEdges.push(this.#cur) - 1;
      } else {
        flags |= HEADER_KEPT;
      }
    }
    this.#flags[t] = flags;
  }

  /**
   * At the `end` of loop `d`, entered from record `parent`: moves the cost
   * of its header record into the records that enter the header, when each
   * of them is sure to run into it (`hoist`): the record before the loop,
   * which falls into it, and the records that end with a `br` back to it.
   * The header then charges nothing, so an iteration that runs through a
   * back edge charges once instead of twice, and the fuel consumed is the
   * same.
   */
  #payHeader(d: number, parent: number, hoist: boolean): void {
    const header = this.#headerRecord[d]!;
    if (!hoist || parent === DEAD || header === DEAD) return;
    const cost = this.#out.cost;
    const units = cost[header]!;
    const edges = this.#backEdges;
    const previous = this.#previousBackEdge;
    // Kept in the header where it would make a record longer than MAX_RECORD_UNITS: one charge
    // would pay for many long runs (thirty loops of 2^16 loads in a row, 0.5 s past a deadline).
    if (cost[parent]! + units > MAX_RECORD_UNITS) return;
    for (let e = this.#lastBackEdge[d]!; e !== -1; e = previous[e]!) {
      if (cost[edges[e]!]! + units > MAX_RECORD_UNITS) return;
    }
    cost[parent]! += units;
    cost[header] = 0;
    for (let e = this.#lastBackEdge[d]!; e !== -1; e = previous[e]!) cost[edges[e]!]! += units;
  }

  /** Frame index of relative label `label` from the innermost frame. */
  #frameOf(label: number): number {
    return this.#nesting.depth - 1 - label;
  }

  #branchLabel(reader: CodeReader): number {
    const bytes = reader.bytes;
    if (bytes[reader.start] === OP_GC_PREFIX) {
      // br_on_cast(_fail): prefix, sub-opcode, flags byte, label, two heap types.
      lebAt(bytes, reader.start + 1);
      return this.#frameOf(lebAt(bytes, lebEnd + 1));
    }
    return this.#frameOf(lebAt(bytes, reader.start + 1));
  }

  /** Notes the targets of an unconditional transfer; returns whether it may leave the function. */
  #jumpTargets(reader: CodeReader): boolean {
    const bytes = reader.bytes;
    switch (reader.op) {
      case OP_BR: {
        const t = this.#frameOf(lebAt(bytes, reader.start + 1));
        this.#target(t, true);
        return t <= 0;
      }
      case OP_BR_TABLE: {
        const count = lebAt(bytes, reader.start + 1);
        let at = lebEnd;
        let leaves = false;
        for (let i = 0; i <= count; i++) {
          const t = this.#frameOf(lebAt(bytes, at));
          at = lebEnd;
          if (t <= 0) leaves = true;
          this.#target(t);
        }
        return leaves;
      }
      case OP_UNREACHABLE:
        return true;
      case OP_RETURN:
      default:
        // return, and throw/rethrow/throw_ref, which may be caught anywhere up.
        this.#target(0);
        return true;
    }
  }

  /**
   * Returns the number of a `try_table`'s catch clauses; notes their labels,
   * relative to outside it, when it is `live`.
   */
  #catchClauses(reader: CodeReader, d: number, live: boolean): number {
    const bytes = reader.bytes;
    let at = reader.start + 1;
    // Block type: 0x40, a one-byte value type, a reference type with a heap type, or an s33.
    const first = bytes[at]!;
    if (first === 0x63 || first === 0x64) at = (lebAt(bytes, at + 1), lebEnd);
    else if ((first & 0x80) !== 0) at = (lebAt(bytes, at), lebEnd);
    else at++;
    const count = lebAt(bytes, at);
    at = lebEnd;
    if (!live) return count;
    for (let i = 0; i < count; i++) {
      const kind = bytes[at++]!;
      if (kind < 2) at = (lebAt(bytes, at), lebEnd); // tag index
      const label = lebAt(bytes, at);
      at = lebEnd;
      let t = d - 1 - label;
      if (t < 0) t = 0;
      if (t < this.#minTarget[d]!) this.#minTarget[d] = t;
      this.#flags[t]! |= TARGETED | HEADER_KEPT;
    }
    return count;
  }

  #grow(): void {
    const size = this.#parent.length * 2;
    const grow = <T extends Int32Array | Uint8Array>(from: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(from);
      return next;
    };
    this.#parent = grow(this.#parent, (n) => new Int32Array(n));
    this.#minTarget = grow(this.#minTarget, (n) => new Int32Array(n));
    this.#flags = grow(this.#flags, (n) => new Uint8Array(n));
    this.#thenRecord = grow(this.#thenRecord, (n) => new Int32Array(n));
    this.#elseRecord = grow(this.#elseRecord, (n) => new Int32Array(n));
    this.#headerRecord = grow(this.#headerRecord, (n) => new Int32Array(n));
    this.#lastBackEdge = grow(this.#lastBackEdge, (n) => new Int32Array(n));
    this.#handlers = grow(this.#handlers, (n) => new Int32Array(n));
    this.#handlersPeak = grow(this.#handlersPeak, (n) => new Int32Array(n));
    this.#tryBodyPeak = grow(this.#tryBodyPeak, (n) => new Int32Array(n));
  }
}

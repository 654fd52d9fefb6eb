/**
 * Random, always terminating WebAssembly programs for property tests, each in
 * two versions: as generated, and with a counter incremented before every
 * instruction the fuel model charges (every instruction but `block`, `loop`,
 * `else` and `end`), so that running the second one tells how much fuel the
 * first must consume.
 *
 * Programs are structured code over `i32` locals: arithmetic, nested blocks
 * (some with results), loops bounded by counters (tested at the bottom, or
 * at the top with branches back from anywhere inside), `if` with and without
 * `else`, `br`/`br_if`/`br_table` to enclosing blocks, `return`, dead code
 * after jumps, and direct, indirect and tail calls to functions of higher index
 * (so recursion is bounded), plus self-recursion bounded by a depth parameter.
 *
 * @module
 */

/** A small deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generated program. */
export interface RandomProgram {
  /** The module as generated; it exports `f0` … `fN` of type `(i32, i32) -> i32`. */
  readonly plain: string;
  /** The same with the counter; it also exports the `i64` global `count`. */
  readonly counting: string;
  /** Number of functions. */
  readonly functions: number;
}

const TICK = "(global.set $count (i64.add (global.get $count) (i64.const 1)))";

interface Label {
  /** What a branch to it needs on the stack: nothing, or one i32. */
  readonly result: boolean;
  /** Branches may target it (not loops: that could loop forever). */
  readonly target: boolean;
}

class Generator {
  readonly #next: () => number;
  readonly #functions: number;
  #self = 0;
  #loops = 0;
  #budget = 0;
  /** Lines of both versions. */
  readonly #plain: string[] = [];
  readonly #counting: string[] = [];
  readonly #labels: Label[] = [];

  constructor(next: () => number, functions: number) {
    this.#next = next;
    this.#functions = functions;
  }

  #int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** Emits a costed instruction. */
  #op(text: string): void {
    this.#plain.push(text);
    this.#counting.push(TICK, text);
  }

  /** A loop counter of the next nesting level, set to 1–4 iterations (the caller counts the level down). */
  #newCounter(): string {
    const counter = `$c${this.#loops++}`;
    this.#op(`i32.const ${1 + this.#int(4)}`);
    this.#op(`local.set ${counter}`);
    return counter;
  }

  /** Emits a free structural instruction. */
  #marker(text: string): void {
    this.#plain.push(text);
    this.#counting.push(text);
  }

  /** Relative index of a random branch target, or -1 when there is none. */
  #pickTarget(result: boolean): number {
    const candidates: number[] = [];
    for (let i = 0; i < this.#labels.length; i++) {
      const label = this.#labels[this.#labels.length - 1 - i]!;
      if (label.target && label.result === result) candidates.push(i);
    }
    return candidates.length === 0 ? -1 : candidates[this.#int(candidates.length)]!;
  }

  #local(): string {
    return `$x${this.#int(3)}`;
  }

  /** Emits a stack-neutral statement. */
  statement(depth: number): void {
    if (--this.#budget < 0 || depth > 5) {
      this.#op(`local.get ${this.#local()}`);
      this.#op(`drop`);
      return;
    }
    const roll = this.#int(17);
    switch (roll) {
      case 0:
      case 1: {
        const x = this.#local();
        this.#op(`local.get ${x}`);
        this.#op(`i32.const ${this.#int(7) - 3}`);
        this.#op(["i32.add", "i32.xor", "i32.mul", "i32.sub"][this.#int(4)]!);
        this.#op(`local.set ${x}`);
        return;
      }
      case 2: {
        this.#marker("block");
        this.#labels.push({ result: false, target: true });
        this.statements(depth + 1);
        this.#labels.pop();
        this.#marker("end");
        return;
      }
      case 3: {
        // A block with a result, sometimes left by br_if with its value.
        this.#marker("block (result i32)");
        this.#labels.push({ result: true, target: true });
        this.statements(depth + 1);
        this.#op(`local.get ${this.#local()}`);
        if (this.#int(2) === 0) {
          this.#op(`local.get ${this.#local()}`);
          this.#op(`br_if 0`);
          this.statements(depth + 1);
          this.#op(`drop`);
          this.#op(`i32.const ${this.#int(9)}`);
        }
        this.#labels.pop();
        this.#marker("end");
        this.#op(`local.set ${this.#local()}`);
        return;
      }
      case 4: {
        if (this.#loops >= 3) return this.statement(depth);
        const counter = this.#newCounter();
        this.#marker("loop");
        this.#labels.push({ result: false, target: false });
        this.statements(depth + 1);
        this.#op(`local.get ${counter}`);
        this.#op(`i32.const 1`);
        this.#op(`i32.sub`);
        this.#op(`local.tee ${counter}`);
        this.#op(`br_if 0`);
        this.#labels.pop();
        this.#marker("end");
        this.#loops--;
        return;
      }
      case 5: {
        // A loop that tests its counter at the top, which any branch may target: an iteration
        // ends with an unconditional branch back (or, sometimes, leaves at the end).
        if (this.#loops >= 3) return this.statement(depth);
        const counter = this.#newCounter();
        this.#marker("block");
        this.#labels.push({ result: false, target: true });
        this.#marker("loop");
        this.#labels.push({ result: false, target: true });
        this.#op(`local.get ${counter}`);
        this.#op(`i32.eqz`);
        this.#op(`br_if 1`);
        this.#op(`local.get ${counter}`);
        this.#op(`i32.const 1`);
        this.#op(`i32.sub`);
        this.#op(`local.set ${counter}`);
        this.statements(depth + 1);
        if (this.#int(3) !== 0) this.#op(`br 0`);
        this.#labels.pop();
        this.#marker("end");
        this.#labels.pop();
        this.#marker("end");
        this.#loops--;
        return;
      }
      case 6:
      case 7: {
        this.#op(`local.get ${this.#local()}`);
        this.#op(`i32.const ${1 + this.#int(3)}`);
        this.#op(`i32.and`);
        this.#op("if");
        this.#labels.push({ result: false, target: true });
        this.statements(depth + 1);
        if (this.#int(3) !== 0) {
          this.#marker("else");
          this.statements(depth + 1);
        }
        this.#labels.pop();
        this.#marker("end");
        return;
      }
      case 8: {
        const target = this.#pickTarget(false);
        if (target < 0) return this.statement(depth);
        this.#op(`local.get ${this.#local()}`);
        this.#op(`br_if ${target}`);
        return;
      }
      case 9: {
        // An unconditional branch; what follows in the block is dead.
        const target = this.#pickTarget(false);
        if (target < 0 || this.#int(3) !== 0) return this.statement(depth);
        if (this.#int(2) === 0) {
          this.#op(`br ${target}`);
        } else {
          const other = this.#pickTarget(false);
          this.#op(`local.get ${this.#local()}`);
          this.#op(`br_table ${target} ${other} ${target}`);
        }
        return;
      }
      case 10: {
        if (this.#int(4) !== 0) return this.statement(depth);
        this.#op(`local.get ${this.#local()}`);
        this.#op("return");
        return;
      }
      case 11:
      case 12: {
        // A call to a later function (bounded recursion).
        const callee = this.#self + 1 + this.#int(this.#functions - this.#self);
        if (callee >= this.#functions) return this.statement(depth);
        this.#op(`local.get ${this.#local()}`);
        this.#op(`local.get $depth`);
        if (this.#int(3) === 0) {
          this.#op(`i32.const ${callee}`);
          this.#op(`call_indirect (type $t)`);
        } else {
          this.#op(`call $f${callee}`);
        }
        this.#op(`local.set ${this.#local()}`);
        return;
      }
      case 13: {
        // Self-recursion, bounded by the depth parameter.
        this.#op(`local.get $depth`);
        this.#op("if");
        this.#labels.push({ result: false, target: true });
        this.#op(`local.get ${this.#local()}`);
        this.#op(`local.get $depth`);
        this.#op(`i32.const 1`);
        this.#op(`i32.sub`);
        this.#op(`call $f${this.#self}`);
        this.#op(`local.set ${this.#local()}`);
        this.#labels.pop();
        this.#marker("end");
        return;
      }
      case 14: {
        // A tail call to a later function ends the function.
        const callee = this.#self + 1 + this.#int(this.#functions - this.#self);
        if (callee >= this.#functions || this.#int(3) !== 0) return this.statement(depth);
        this.#op(`local.get ${this.#local()}`);
        this.#op(`i32.const 3`);
        this.#op(`i32.and`);
        this.#op("if");
        this.#labels.push({ result: false, target: true });
        this.#op(`local.get ${this.#local()}`);
        this.#op(`local.get $depth`);
        this.#op(`return_call $f${callee}`);
        this.#labels.pop();
        this.#marker("end");
        return;
      }
      default: {
        this.#op(`local.get ${this.#local()}`);
        this.#op(`local.get ${this.#local()}`);
        this.#op(`local.get ${this.#local()}`);
        this.#op("select");
        this.#op(`local.set ${this.#local()}`);
        return;
      }
    }
  }

  statements(depth: number): void {
    const count = this.#int(4);
    for (let i = 0; i < count; i++) this.statement(depth);
  }

  /** Generates function `index`; returns both versions of its body. */
  body(index: number): [string, string] {
    this.#self = index;
    this.#budget = 10 + this.#int(30);
    this.#plain.length = 0;
    this.#counting.length = 0;
    this.#labels.length = 0;
    this.#labels.push({ result: false, target: false }); // the function label
    const count = 1 + this.#int(5);
    for (let i = 0; i < count; i++) this.statement(0);
    this.#op(`local.get ${this.#local()}`);
    return [this.#plain.join("\n"), this.#counting.join("\n")];
  }
}

/**
 * Generates a program from `next`.
 *
 * @param next The random source.
 * @param functions How many functions, at least 1.
 */
export function randomProgram(next: () => number, functions = 4): RandomProgram {
  const generator = new Generator(next, functions);
  const plain: string[] = [];
  const counting: string[] = [];
  const names = Array.from({ length: functions }, (_, i) => `$f${i}`).join(" ");
  for (let i = 0; i < functions; i++) {
    const [p, c] = generator.body(i);
    const head =
      `(func $f${i} (export "f${i}") (type $t) (param $x0 i32) (param $depth i32) (result i32)
      (local $x1 i32) (local $x2 i32) (local $c0 i32) (local $c1 i32) (local $c2 i32)`;
    plain.push(`${head}\n${p})`);
    counting.push(`${head}\n${c})`);
  }
  const prelude = `(type $t (func (param i32 i32) (result i32)))
    (table ${functions} funcref) (elem (i32.const 0) func ${names})`;
  return {
    plain: `(module ${prelude}\n${plain.join("\n")})`,
    counting: `(module ${prelude}
      (global $count (export "count") (mut i64) (i64.const 0))\n${counting.join("\n")})`,
    functions,
  };
}

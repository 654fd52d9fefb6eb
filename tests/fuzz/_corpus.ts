/**
 * What the API fuzzer mutates: plugin-shaped WebAssembly text (the shared
 * fixtures, the examples' WAT, and seeds written to reach every part of the
 * API), and binaries (the committed example plugins, the garbage fixture,
 * the instrumenter's feature-rich corpus, and the text seeds compiled).
 *
 * @module
 */

import {
  BYTES_WAT,
  CALLS_WAT,
  growableWat,
  HOST_FUNCTIONS,
  type HostFunctionName,
  hostFunctionsWat,
  LIFECYCLE_WAT,
  LOOPS_WAT,
  NO_ALLOCATOR_WAT,
  TRAPS_WAT,
} from "../fixtures/wat.ts";
import { instrumenterCorpus } from "../instrument/_fuzz.ts";
import { wat } from "../instrument/_wat.ts";
import type { Next } from "./_mutate.ts";

/** Every built-in host function, imported and re-exported. */
export const ALL_HOST_FUNCTIONS_WAT: string = hostFunctionsWat(
  ...Object.keys(HOST_FUNCTIONS) as HostFunctionName[],
);

/** Recursion, loops, memory growth, stores and division: every limit to hit. */
const LIMITS_WAT = `(module
  (memory (export "memory") 1 4)
  (func $fac (export "fac") (param i64) (result i64)
    local.get 0 i64.eqz if (result i64) i64.const 1
    else local.get 0 local.get 0 i64.const 1 i64.sub call $fac i64.mul end)
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    local.get $acc)
  (func (export "spin") (loop br 0))
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))`;

/** Tables, indirect calls, a mutable global and unbounded recursion. */
const INDIRECT_WAT = `(module
  (type $t (func (param i32) (result i32)))
  (table 4 funcref) (elem (i32.const 0) $a $b)
  (global $g (mut i32) (i32.const 0))
  (func $a (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $b (param i32) (result i32) local.get 0 i32.const 0 call_indirect (type $t))
  (func (export "indirect") (param i32) (result i32)
    local.get 0 local.get 0 i32.const 1 i32.and call_indirect (type $t))
  (func (export "count") (result i32)
    global.get $g i32.const 1 i32.add global.set $g global.get $g)
  (func $r (export "recurse") (param i32) (result i32) local.get 0 call $r))`;

/** Imports of every value type and arity, for linkers that return the wrong things. */
export const LINKED_WAT = `(module
  (import "env" "ask_i32" (func $i32 (param i32) (result i32)))
  (import "env" "ask_i64" (func $i64 (param i64) (result i64)))
  (import "env" "ask_f32" (func $f32 (result f32)))
  (import "env" "ask_f64" (func $f64 (param f64) (result f64)))
  (import "env" "ask_pair" (func $pair (result i32 i64)))
  (import "env" "ask_ref" (func $ref (param externref) (result externref)))
  (import "env" "tell" (func $tell (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "i32") (param i32) (result i32) (call $i32 (local.get 0)))
  (func (export "i64") (param i64) (result i64) (call $i64 (local.get 0)))
  (func (export "f32") (result f32) (call $f32))
  (func (export "f64") (param f64) (result f64) (call $f64 (local.get 0)))
  (func (export "pair") (result i32 i64) (call $pair))
  (func (export "ref") (param externref) (result externref) (call $ref (local.get 0)))
  (func (export "tell") (call $tell (i32.const 1) (i32.const 2)))
  (func (export "all") (result i32)
    (drop (call $i64 (i64.const 1))) (drop (call $f32)) (drop (call $f64 (f64.const 1)))
    (drop (call $pair)) (drop) (call $tell (i32.const 0) (i32.const 0))
    (call $i32 (i32.const 7))))`;

/** Reference, vector and multi-value signatures that JavaScript passes awkwardly or not at all. */
export const REFS_WAT = `(module
  (memory (export "memory") 1)
  (table (export "table") 2 funcref)
  (global (export "counter") (mut i32) (i32.const 0))
  (func (export "id_i32") (param i32) (result i32) (local.get 0))
  (func (export "ext") (param externref) (result externref) (local.get 0))
  (func (export "is_null") (param externref) (result i32) (ref.is_null (local.get 0)))
  (func (export "func") (param funcref) (result funcref) (local.get 0))
  (func (export "vec") (param v128) (result i32) (i32x4.extract_lane 0 (local.get 0)))
  (func (export "make_vec") (result v128) (v128.const i32x4 1 2 3 4))
  (func (export "many") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
    (local.get 3) (local.get 2) (local.get 1) (local.get 0)))`;

/**
 * Export names that collide with JavaScript's (`then`, `__proto__`,
 * `constructor`), an export `memory` that is a function, an allocator of
 * the wrong type, and initializers that trap and loop.
 */
const ODD_NAMES_WAT = `(module
  (memory (export "mem") 1)
  (func (export "then") (param i32) (result i32) (local.get 0))
  (func (export "__proto__") (result i32) (i32.const 1))
  (func (export "constructor") (result i32) (i32.const 2))
  (func (export "toString") (result i64) (i64.const 3))
  (func (export "memory") (result i32) (i32.const 4))
  (func (export "alloc") (param i64) (result i64) (local.get 0))
  (func (export "malloc") (param i32) (result i32) (i32.const -8))
  (func (export "free") (param i32) unreachable)
  (func (export "bytes") (param i32 i32) (result i64) (i64.const -1))
  (func (export "_initialize") (unreachable))
  (func (export "init") (loop br 0)))`;

/** A start function that calls a host function, then traps on a condition the mutations may flip. */
const START_WAT = `(module
  (import "env" "host_log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "starting")
  (global $ready (mut i32) (i32.const 0))
  (func $start
    (call $log (i32.const 1) (i32.const 0) (i32.const 8))
    (global.set $ready (i32.const 1))
    (if (i32.eqz (global.get $ready)) (then unreachable)))
  (start $start)
  (func (export "ready") (result i32) (global.get $ready)))`;

/**
 * The bytes ABI for a long-lived plugin: an allocator that always answers
 * 1024 (so thousands of calls never exhaust memory), and outputs honest,
 * garbage or out of bounds.
 */
export const POOL_BYTES_WAT = `(module
  (memory (export "memory") 2)
  (data (i32.const 0) "\\ff\\fe{x")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "dealloc") (param i32 i32))
  (func $pack (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1))))
  (func (export "echo") (param i32 i32) (result i64) (call $pack (local.get 0) (local.get 1)))
  (func (export "garbage") (param i32 i32) (result i64) (call $pack (i32.const 0) (i32.const 4)))
  (func (export "outside") (param i32 i32) (result i64) (call $pack (i32.const 131000) (local.get 1)))
  (func (export "wrapped") (param i32 i32) (result i64) (call $pack (i32.const -8) (i32.const 16)))
  (func (export "len") (param i32 i32) (result i32) (local.get 1))
  (func (export "spin") (param i32 i32) (result i32) (loop br 0) (i32.const 0)))`;

/** WebAssembly text of the runtime's fixtures and this file's seeds. */
export const WAT_SEEDS: readonly string[] = [
  LIMITS_WAT,
  INDIRECT_WAT,
  CALLS_WAT,
  TRAPS_WAT,
  LOOPS_WAT,
  growableWat({ min: 1, max: 4, tableMin: 2 }),
  BYTES_WAT,
  NO_ALLOCATOR_WAT,
  ALL_HOST_FUNCTIONS_WAT,
  LIFECYCLE_WAT,
  LINKED_WAT,
  REFS_WAT,
  ODD_NAMES_WAT,
  START_WAT,
  POOL_BYTES_WAT,
];

const ROOT = new URL("../../", import.meta.url);

/** The directories the corpus reads, for tests' read permissions. */
export const CORPUS_DIRECTORIES: readonly string[] = [
  new URL("examples/", ROOT).pathname,
  new URL("tests/fixtures/", ROOT).pathname,
];

/** The example plugins' binaries (committed) and the garbage fixture. */
const BINARY_FILES = [
  "examples/rust_plugin/my_plugin.wasm",
  "examples/c_plugin/plugin.wasm",
  "examples/c_wasi/c_wasi.wasm",
  "tests/fixtures/garbage.wasm",
];

/** Reads a file of the repository. */
export function readRepositoryFile(path: string): Uint8Array {
  return Deno.readFileSync(new URL(path, ROOT));
}

/** The example WAT modules and the spin fixture. */
function textFiles(): string[] {
  const texts: string[] = [];
  for (const entry of Deno.readDirSync(new URL("examples/wat/", ROOT))) {
    if (entry.name.endsWith(".wat")) {
      texts.push(new TextDecoder().decode(readRepositoryFile(`examples/wat/${entry.name}`)));
    }
  }
  texts.sort();
  texts.push(new TextDecoder().decode(readRepositoryFile("tests/fixtures/spin.wat")));
  return texts;
}

/** `bytes` with a custom section `wasmplug.manifest` holding `json` appended. */
export function withManifest(bytes: Uint8Array, json: string): Uint8Array {
  const name = new TextEncoder().encode("wasmplug.manifest");
  const content = new TextEncoder().encode(json);
  const payload = [name.length, ...name, ...content];
  const size: number[] = [];
  let n = payload.length;
  do {
    size.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  const section = [0, ...size, ...payload];
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** Text and binaries to mutate. */
export interface Corpus {
  readonly texts: readonly string[];
  readonly binaries: readonly Uint8Array[];
}

/**
 * Builds the corpus: the text seeds and example WAT, and as binaries the
 * example plugins, the garbage fixture, every text seed compiled, one with an
 * embedded manifest, and the instrumenter's corpus.
 */
export function corpus(next: Next): Corpus {
  const texts = [...WAT_SEEDS, ...textFiles()];
  const binaries = BINARY_FILES.map(readRepositoryFile);
  for (const text of texts) binaries.push(wat(text));
  binaries.push(
    withManifest(
      wat(CALLS_WAT),
      '{"name":"manifested","exports":["add"],"capabilities":[],"limits":{"maxFuel":100000}}',
    ),
    ...instrumenterCorpus(next),
  );
  return { texts, binaries };
}

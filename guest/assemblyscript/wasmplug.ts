// wasmplug's AssemblyScript guest SDK.
//
// A plugin function takes the call's input bytes and answers a `Result`; its
// export has the bytes-ABI signature `(ptr, len) -> i64` that
// `plugin.callBytes(name, bytes)` and `plugin.callJson(name, value)` call:
//
//     import { Result, run } from "./wasmplug";
//     export { alloc, dealloc } from "./wasmplug";
//
//     function upper(input: Uint8Array): Result {
//       return Result.okString(String.UTF8.decode(input.buffer).toUpperCase());
//     }
//     export function shout(ptr: usize, len: usize): u64 {
//       return run(ptr, len, upper);
//     }
//
// `Result.err(message)` fails the call with a `GuestError` carrying the
// message. Build (from this folder) with
//
//     asc plugin.ts -o plugin.wasm --runtime incremental -O3 --use abort=wasmplug/abortHandler
//
// `--use abort=…` routes AssemblyScript's aborts (a failed `assert`, a
// `throw`) to `abortHandler`, which logs the message and traps (the caller's
// `TrapError` carries the message): the host provides no `env.abort`. The
// guest ABI is docs/ABI.md.

import {
  host_call_tool,
  host_get_config,
  host_http_fetch,
  host_log,
  host_now_ms,
  host_random_bytes,
  host_send_message,
  host_set_config,
  host_set_error,
  host_sleep_ms,
  host_storage_get,
  host_storage_set,
} from "./env";

// ---- Memory: the bytes ABI's allocator --------------------------------------

/** Allocates `size` bytes for the host (`alloc` of the bytes ABI); re-export it. */
export function alloc(size: usize): usize {
  // The host allocates a call's input before the call: the garbage of the last ones first.
  collectIfDue();
  return heap.alloc(size);
}

/**
 * Frees what `alloc` returned (`dealloc` of the bytes ABI); re-export it.
 * The output of {@link run} is the function's own buffer, which the host
 * frees here too: that lets it go (the garbage collector takes it).
 */
export function dealloc(ptr: usize, _size: usize): void {
  if (ptr === 0) return;
  if (ptr === handedPtr) {
    releaseHanded();
    return;
  }
  heap.free(ptr);
}

// ---- Input and output --------------------------------------------------------

let inputPtr: usize = 0;
let inputLen: usize = 0;
let outputPtr: usize = 0;
let outputLen: usize = 0;
/**
 * The buffer a function's `Result` handed over as the output, kept alive
 * until the host has copied it out and frees it: no copy, so an output
 * that fits in memory once is never lost for want of room for a second.
 */
// deno-lint-ignore no-unused-vars -- only written: holding the buffer keeps it from the collector
let handed: ArrayBuffer | null = null;
let handedPtr: usize = 0;

function releaseHanded(): void {
  handed = null;
  handedPtr = 0;
}

/**
 * Bytes of input copies and outputs made garbage since the last full
 * collection. AssemblyScript's incremental collector lags behind large
 * buffers: before it had freed the last calls' ones, the allocator asked for
 * more memory than the plugin may have, and trapped (an echo of 600 KB failed
 * from its fourth call with 2 MiB of memory). Past this many bytes, the next
 * allocation for the host (`alloc`, a call's input) or `run` collects in full
 * first, which costs little next to copying them.
 */
let garbageBytes: usize = 0;
const COLLECT_AFTER_BYTES: usize = 256 * 1024;

function collectIfDue(): void {
  if (garbageBytes < COLLECT_AFTER_BYTES) return;
  garbageBytes = 0;
  __collect();
}

/** The running call's input. */
export function input(): Uint8Array {
  const data = new Uint8Array(<i32> inputLen);
  if (inputLen > 0) memory.copy(data.dataStart, inputPtr, inputLen);
  return data;
}

/**
 * The running call's input, decoded as UTF-8 (JSON text for `callJson`);
 * each ill-formed sequence becomes U+FFFD, as in the C and Rust SDKs.
 */
export function inputString(): string {
  return decodeUtf8(inputPtr, inputLen);
}

/**
 * `len` bytes at `ptr` decoded as UTF-8 the way `TextDecoder` and Rust's
 * `String::from_utf8_lossy` do: each ill-formed sequence (its longest valid
 * prefix) becomes one U+FFFD. (`String.UTF8.decode` stops at the first one.)
 */
export function decodeUtf8(ptr: usize, len: usize): string {
  // At most one UTF-16 unit per byte: a 4-byte sequence makes 2.
  const units = new Uint16Array(<i32> len);
  let n = 0;
  let i: usize = 0;
  while (i < len) {
    const first = <u32> load<u8>(ptr + i++);
    if (first < 0x80) {
      units[n++] = <u16> first;
      continue;
    }
    let need = 0;
    let point: u32 = 0;
    let lower: u32 = 0x80;
    let upper: u32 = 0xbf;
    if (first >= 0xc2 && first <= 0xdf) {
      need = 1;
      point = first & 0x1f;
    } else if (first >= 0xe0 && first <= 0xef) {
      need = 2;
      point = first & 0x0f;
      if (first === 0xe0) lower = 0xa0;
      if (first === 0xed) upper = 0x9f;
    } else if (first >= 0xf0 && first <= 0xf4) {
      need = 3;
      point = first & 0x07;
      if (first === 0xf0) lower = 0x90;
      if (first === 0xf4) upper = 0x8f;
    }
    let complete = need > 0;
    for (let k = 0; k < need; k++) {
      const next = i < len ? <u32> load<u8>(ptr + i) : 0;
      if (i >= len || next < lower || next > upper) {
        complete = false;
        break; // the byte that broke the sequence starts the next one
      }
      point = (point << 6) | (next & 0x3f);
      lower = 0x80;
      upper = 0xbf;
      i++;
    }
    if (!complete) {
      units[n++] = 0xfffd;
    } else if (point >= 0x10000) {
      point -= 0x10000;
      units[n++] = <u16> (0xd800 + (point >> 10));
      units[n++] = <u16> (0xdc00 + (point & 0x3ff));
    } else {
      units[n++] = <u16> point;
    }
  }
  return String.UTF16.decodeUnsafe(units.dataStart, <usize> n << 1);
}

/** Sets the running call's output to a copy of `data` (replacing an earlier one). */
export function output(data: Uint8Array): void {
  setOutput(data.dataStart, <usize> data.byteLength);
}

/** Sets the running call's output to `text` as UTF-8. */
export function outputString(text: string): void {
  const bytes = String.UTF8.encode(text);
  setOutput(changetype<usize>(bytes), <usize> bytes.byteLength);
}

function setOutput(ptr: usize, len: usize): void {
  discardOutput();
  if (len === 0) return;
  outputPtr = heap.alloc(len);
  outputLen = len;
  memory.copy(outputPtr, ptr, len);
}

/** Makes `data` itself the output (see {@link handed}); an empty one is no output. */
function handOver(data: Uint8Array): void {
  discardOutput();
  if (data.byteLength === 0) return;
  handed = data.buffer;
  handedPtr = data.dataStart;
  outputPtr = handedPtr;
  outputLen = <usize> data.byteLength;
}

function discardOutput(): void {
  if (outputPtr !== 0) heap.free(outputPtr);
  outputPtr = 0;
  outputLen = 0;
}

/** Fails the running call with `message` (a `GuestError` for the caller), once it returns. */
export function setError(message: string): void {
  const bytes = String.UTF8.encode(message);
  host_set_error(changetype<usize>(bytes), <usize> bytes.byteLength);
}

/** What a plugin function answers: output bytes, or an error message. */
export class Result {
  constructor(
    /** The output, when the function succeeded. */
    public data: Uint8Array | null,
    /** The error message, when it failed. */
    public error: string | null,
  ) {}

  /** Succeeds with `data` as the output. */
  static ok(data: Uint8Array): Result {
    return new Result(data, null);
  }

  /** Succeeds with `text` as UTF-8 output. */
  static okString(text: string): Result {
    return new Result(Uint8Array.wrap(String.UTF8.encode(text)), null);
  }

  /** Fails the call: the caller gets a `GuestError` with `message`. */
  static err(message: string): Result {
    return new Result(null, message);
  }
}

/**
 * Runs a plugin function for the bytes ABI: call it from an export
 * `(ptr: usize, len: usize): u64`. Answers the output packed as
 * `(out_ptr << 32) | out_len`; the host copies it out and frees it.
 */
export function run(ptr: usize, len: usize, fn: (input: Uint8Array) => Result): u64 {
  aborting = false;
  discardOutput();
  releaseHanded();
  collectIfDue();
  garbageBytes += len;
  inputPtr = ptr;
  inputLen = len;
  const result = fn(input());
  inputPtr = 0;
  inputLen = 0;
  const error = result.error;
  if (error !== null) {
    discardOutput();
    setError(error);
  } else {
    const data = result.data;
    if (data !== null) handOver(data);
  }
  garbageBytes += outputLen;
  const packed = (<u64> outputPtr << 32) | <u64> outputLen;
  outputPtr = 0;
  outputLen = 0;
  return packed;
}

let aborting = false;

/**
 * AssemblyScript's abort (a failed `assert`, a `throw`), routed here with
 * `--use abort=wasmplug/abortHandler`: logs the message at level error,
 * reports it, and traps, so the call fails with a `TrapError` whose message
 * includes it.
 */
export function abortHandler(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  // An abort while logging one (out of memory, say) only traps.
  if (!aborting) {
    aborting = true;
    const where = fileName === null ? "" : ` at ${fileName}:${line}:${column}`;
    const text = `abort: ${message === null ? "" : message}${where}`;
    log(3, text);
    setError(text);
    aborting = false;
  }
  unreachable();
}

// ---- Host functions ------------------------------------------------------------

/** Logs `message` (16 KiB a record) at `level`: 0 debug, 1 info, 2 warning, 3 error. */
export function log(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message);
  host_log(level, changetype<usize>(bytes), <usize> bytes.byteLength);
}

/** Logs at level debug. */
export function debug(message: string): void {
  log(0, message);
}

/** Logs at level info. */
export function info(message: string): void {
  log(1, message);
}

/** Logs at level warning. */
export function warn(message: string): void {
  log(2, message);
}

/** Logs at level error. */
export function error(message: string): void {
  log(3, message);
}

// The host functions behind `answer`, with their first one or two arguments.
function askConfig(a: ArrayBuffer, _b: ArrayBuffer, out: usize, cap: usize): i32 {
  return host_get_config(changetype<usize>(a), <usize> a.byteLength, out, cap);
}

function askStorage(a: ArrayBuffer, _b: ArrayBuffer, out: usize, cap: usize): i32 {
  return host_storage_get(changetype<usize>(a), <usize> a.byteLength, out, cap);
}

function askTool(a: ArrayBuffer, b: ArrayBuffer, out: usize, cap: usize): i32 {
  const aLen = <usize> a.byteLength;
  return host_call_tool(
    changetype<usize>(a),
    aLen,
    changetype<usize>(b),
    <usize> b.byteLength,
    out,
    cap,
  );
}

function askFetch(a: ArrayBuffer, _b: ArrayBuffer, out: usize, cap: usize): i32 {
  return host_http_fetch(changetype<usize>(a), <usize> a.byteLength, out, cap);
}

/**
 * Asks the host, growing the buffer to the length it answers while that is
 * larger; null for "no such key" or "no such tool".
 */
function answer(
  ask: (a: ArrayBuffer, b: ArrayBuffer, out: usize, cap: usize) => i32,
  a: string,
  b: string,
): Uint8Array | null {
  const first = String.UTF8.encode(a);
  const second = String.UTF8.encode(b);
  let buf = new Uint8Array(256);
  for (let attempt = 0; attempt < 8; attempt++) {
    const n = ask(first, second, buf.dataStart, <usize> buf.byteLength);
    if (n < 0) return null;
    if (n <= buf.byteLength) return buf.slice(0, n);
    // Needs more room: the host answered the full length.
    buf = new Uint8Array(n);
  }
  return null;
}

function text(bytes: Uint8Array | null): string | null {
  if (bytes === null) return null;
  return decodeUtf8(bytes.dataStart, <usize> bytes.byteLength);
}

/** A value of the plugin config's `config` map (Capability: ReadConfig). */
export function configGet(key: string): string | null {
  return text(answer(askConfig, key, ""));
}

/** Sets a value of the config map (Capability: WriteConfig); 0 on success. */
export function configSet(key: string, value: string): i32 {
  const k = String.UTF8.encode(key);
  const v = String.UTF8.encode(value);
  return host_set_config(
    changetype<usize>(k),
    <usize> k.byteLength,
    changetype<usize>(v),
    <usize> v.byteLength,
  );
}

/** A value of the plugin's storage (Capability: ReadState). */
export function storageGet(key: string): Uint8Array | null {
  return answer(askStorage, key, "");
}

/** Stores a value (Capability: WriteState); 0 on success. */
export function storageSet(key: string, value: Uint8Array): i32 {
  const k = String.UTF8.encode(key);
  return host_storage_set(
    changetype<usize>(k),
    <usize> k.byteLength,
    value.dataStart,
    <usize> value.byteLength,
  );
}

/** Sends a message to another plugin or the application (Capability: SendMessage). */
export function sendMessage(to: string, message: Uint8Array): i32 {
  const t = String.UTF8.encode(to);
  return host_send_message(
    changetype<usize>(t),
    <usize> t.byteLength,
    message.dataStart,
    <usize> message.byteLength,
  );
}

/** Calls a tool the host registered, JSON in, JSON out (Capability: CallTool); null without it. */
export function callTool(name: string, argsJson: string): string | null {
  return text(answer(askTool, name, argsJson));
}

/**
 * Fetches over HTTP: JSON `{method,url,headers,body}` in, JSON
 * `{status,headers,body}` out (Capability: NetworkAccess).
 */
export function httpFetch(requestJson: string): string | null {
  return text(answer(askFetch, requestJson, ""));
}

/** Milliseconds since the epoch (Capability: Timer). */
export function nowMs(): i64 {
  return host_now_ms();
}

/** Suspends the plugin, not the host (Capability: Timer). */
export function sleepMs(ms: i32): void {
  host_sleep_ms(ms);
}

/** `length` cryptographically random bytes (Capability: Random). */
export function randomBytes(length: i32): Uint8Array {
  const bytes = new Uint8Array(length);
  host_random_bytes(bytes.dataStart, <usize> length);
  return bytes;
}

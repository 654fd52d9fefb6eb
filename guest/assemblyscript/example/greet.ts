// The AssemblyScript SDK's example plugin: `greet`, for
// `plugin.callJson("greet", { name })`.
//
// It reads the greeting from the config (key "greeting", default "Hello"),
// counts its calls in storage (key "count"), logs, asks the host tool
// "decorate" to dress up the text, and answers
// `{"message": <what the tool answered>, "count": <calls so far>}`. Without a
// "name" it fails: the caller gets a `GuestError` `missing "name"`.
//
// Capabilities: ReadConfig, ReadState, WriteState, CallTool.
// Build: `deno task build:guests`.

import {
  callTool,
  configGet,
  info,
  inputString,
  Result,
  run,
  storageGet,
  storageSet,
} from "../wasmplug";
export { alloc, dealloc } from "../wasmplug";

/**
 * The contents of the string field "name" of a JSON object, escapes kept (so
 * they can go into JSON again), or "". A naive scan, enough for an example.
 */
function findName(json: string): string {
  const key = '"name"';
  const found = json.indexOf(key);
  if (found < 0) return "";
  let at = found + key.length;
  while (at < json.length && (json.charCodeAt(at) === 0x20 || json.charCodeAt(at) === 0x3a)) at++;
  if (at >= json.length || json.charCodeAt(at) !== 0x22) return "";
  const start = ++at;
  while (at < json.length && json.charCodeAt(at) !== 0x22) {
    at += json.charCodeAt(at) === 0x5c ? 2 : 1;
  }
  if (at >= json.length) return "";
  return json.substring(start, at);
}

/** `text` as the contents of a JSON string (quotes and backslashes escaped). */
function jsonEscape(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
}

function parseCount(bytes: Uint8Array | null): i32 {
  if (bytes === null) return 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const digit = <i32> bytes[i] - 0x30;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  return n;
}

function greetImpl(_input: Uint8Array): Result {
  // Ill-formed UTF-8 becomes U+FFFD, as in the C and Rust examples (String.UTF8.decode stops
  // at the first bad byte: "A\xFFB" lost its name).
  const name = findName(inputString());
  if (name.length === 0) return Result.err('missing "name"');
  const configured = configGet("greeting");
  const greeting = configured === null ? "Hello" : configured;

  const count = parseCount(storageGet("count")) + 1;
  storageSet("count", Uint8Array.wrap(String.UTF8.encode(count.toString())));

  info(`greeting ${name} (call ${count})`);

  const decorated = callTool("decorate", `{"text":"${jsonEscape(greeting)}, ${name}!"}`);
  if (decorated === null) return Result.err('no tool "decorate"');
  return Result.okString(`{"message":${decorated},"count":${count}}`);
}

/** The export: `(ptr, len) -> i64` for callJson. */
export function greet(ptr: usize, len: usize): u64 {
  return run(ptr, len, greetImpl);
}

// The host functions of wasmplug's guest ABI, as AssemblyScript imports: a
// declared function is imported from the module named like its file, so this
// file's functions come from `"env"`. A gated function links without its
// capability; calling it without the capability fails the whole call with
// `CapabilityDeniedError`. Functions with `out, outCap` return the full length
// of the answer and write nothing when it is longer than `outCap`; -1 means "no
// such key" or "no such tool". Plugins use them through `wasmplug.ts`.

/** Capability: none. Level 0 debug, 1 info, 2 warning, 3 error. */
export declare function host_log(level: i32, ptr: usize, len: usize): void;
/** Capability: none. Fails the running call with `GuestError(message)` once it returns. */
export declare function host_set_error(ptr: usize, len: usize): void;
/** Capability: ReadConfig. */
export declare function host_get_config(key: usize, keyLen: usize, out: usize, outCap: usize): i32;
/** Capability: WriteConfig. 0 on success. */
export declare function host_set_config(key: usize, keyLen: usize, val: usize, valLen: usize): i32;
/** Capability: ReadState. */
export declare function host_storage_get(
  key: usize,
  keyLen: usize,
  out: usize,
  outCap: usize,
): i32;
/** Capability: WriteState. 0 on success. */
export declare function host_storage_set(
  key: usize,
  keyLen: usize,
  val: usize,
  valLen: usize,
): i32;
/** Capability: SendMessage. 0 on success. */
export declare function host_send_message(
  to: usize,
  toLen: usize,
  msg: usize,
  msgLen: usize,
): i32;
/** Capability: CallTool. JSON arguments in, the tool's JSON result out. */
export declare function host_call_tool(
  name: usize,
  nameLen: usize,
  args: usize,
  argsLen: usize,
  out: usize,
  outCap: usize,
): i32;
/** Capability: NetworkAccess. JSON `{method,url,headers,body}` in, JSON `{status,headers,body}` out. */
export declare function host_http_fetch(req: usize, reqLen: usize, out: usize, outCap: usize): i32;
/** Capability: Timer. Milliseconds since the epoch. */
export declare function host_now_ms(): i64;
/** Capability: Timer. Suspends the plugin, not the host. */
export declare function host_sleep_ms(ms: i32): void;
/** Capability: Random. Cryptographically random bytes; 0 on success. */
export declare function host_random_bytes(ptr: usize, len: usize): i32;

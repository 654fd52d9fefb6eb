//! wasmplug's Rust guest SDK, in one module with no crates.
//!
//! Mount it at the root of a `cdylib` crate as `mod wasmplug;` (with
//! `#[path = "…/wasmplug.rs"]` when it lives elsewhere) and turn functions into
//! exports for `plugin.callBytes(name, bytes)` / `plugin.callJson(name, value)`:
//!
//! ```ignore
//! #[path = "../wasmplug.rs"]
//! mod wasmplug;
//!
//! plugin_fn! {
//!     fn upper(input: &[u8]) -> Result<Vec<u8>, String> {
//!         wasmplug::info("upper-casing");
//!         Ok(input.to_ascii_uppercase())
//!     }
//! }
//! ```
//!
//! An `Err(message)` fails the call with a `GuestError` carrying the message;
//! a panic is logged and fails it with a `TrapError` whose message includes
//! the panic's.
//! Build with `rustc --target wasm32-unknown-unknown --crate-type cdylib
//! -C panic=abort` (rustc 1.63 or later); the crate's `alloc`/`dealloc`
//! exports come from this module. The guest ABI is docs/ABI.md.

#![allow(dead_code)]

use std::alloc::{alloc as allocate, dealloc as deallocate, Layout};

/// The host functions of the guest ABI (import module `"env"`), raw. A gated
/// function links without its capability; calling it without the capability
/// fails the whole call with `CapabilityDeniedError`.
pub mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        /// Capability: none. Level 0 debug, 1 info, 2 warning, 3 error.
        pub fn host_log(level: i32, ptr: *const u8, len: usize);
        /// Capability: none. Fails the running call with `GuestError(message)` once it returns.
        pub fn host_set_error(ptr: *const u8, len: usize);
        /// Capability: ReadConfig.
        pub fn host_get_config(key: *const u8, key_len: usize, out: *mut u8, cap: usize) -> i32;
        /// Capability: WriteConfig.
        pub fn host_set_config(key: *const u8, key_len: usize, val: *const u8, len: usize) -> i32;
        /// Capability: ReadState.
        pub fn host_storage_get(key: *const u8, key_len: usize, out: *mut u8, cap: usize) -> i32;
        /// Capability: WriteState.
        pub fn host_storage_set(key: *const u8, key_len: usize, val: *const u8, len: usize)
            -> i32;
        /// Capability: SendMessage.
        pub fn host_send_message(to: *const u8, to_len: usize, msg: *const u8, len: usize) -> i32;
        /// Capability: CallTool.
        pub fn host_call_tool(
            name: *const u8,
            name_len: usize,
            args: *const u8,
            args_len: usize,
            out: *mut u8,
            cap: usize,
        ) -> i32;
        /// Capability: NetworkAccess.
        pub fn host_http_fetch(req: *const u8, req_len: usize, out: *mut u8, cap: usize) -> i32;
        /// Capability: Timer.
        pub fn host_now_ms() -> i64;
        /// Capability: Timer.
        pub fn host_sleep_ms(ms: i32);
        /// Capability: Random.
        pub fn host_random_bytes(ptr: *mut u8, len: usize) -> i32;
    }
}

// ---- Memory: the bytes ABI's allocator ----------------------------------------

/// Allocates `size` bytes for the host (`alloc` of the bytes ABI).
#[no_mangle]
pub extern "C" fn alloc(size: usize) -> *mut u8 {
    match Layout::from_size_align(size.max(1), 1) {
        Ok(layout) => unsafe { allocate(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Frees what `alloc` returned (`dealloc` of the bytes ABI).
#[no_mangle]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, size: usize) {
    if ptr.is_null() {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(size.max(1), 1) {
        deallocate(ptr, layout);
    }
}

// ---- Input and output -----------------------------------------------------------

static mut INPUT: (*const u8, usize) = (std::ptr::null(), 0);
static mut OUTPUT: (*mut u8, usize) = (std::ptr::null_mut(), 0);

/// The running call's input.
pub fn input() -> Vec<u8> {
    let (ptr, len) = unsafe { INPUT };
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

/// Sets the running call's output to a copy of `data` (replacing an earlier
/// one). Without memory for the copy, the call fails with a `GuestError`
/// ("out of memory …"): an empty output would pass for the real one.
pub fn output(data: &[u8]) {
    discard_output();
    if data.is_empty() {
        return;
    }
    let ptr = alloc(data.len());
    if ptr.is_null() {
        set_error(&format!("out of memory for the {}-byte output", data.len()));
        return;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len());
        OUTPUT = (ptr, data.len());
    }
}

/// Makes `data` the running call's output without copying it: the host frees
/// it with `dealloc(ptr, len)`, whose layout (`len` bytes, alignment 1) is
/// that of a boxed byte slice.
fn take_output(data: Vec<u8>) {
    discard_output();
    if data.is_empty() {
        return;
    }
    let len = data.len();
    let ptr = Box::into_raw(data.into_boxed_slice()) as *mut u8;
    unsafe { OUTPUT = (ptr, len) };
}

/// Reports a panic's message as the call's error (and logs it), so the
/// caller learns more than "unreachable" when the plugin then aborts.
fn report_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = format!("panic: {}", info);
            error(&message);
            set_error(&message);
        }));
    });
}

fn discard_output() {
    unsafe {
        let (ptr, len) = OUTPUT;
        dealloc(ptr, len);
        OUTPUT = (std::ptr::null_mut(), 0);
    }
}

/// Fails the running call with `message` (a `GuestError` for the caller), once it returns.
pub fn set_error(message: &str) {
    unsafe { raw::host_set_error(message.as_ptr(), message.len()) }
}

/// Runs a plugin function for the bytes ABI; [`plugin_fn!`] calls it.
#[doc(hidden)]
pub fn run(ptr: *const u8, len: usize, f: fn(&[u8]) -> Result<Vec<u8>, String>) -> u64 {
    report_panics();
    discard_output();
    unsafe { INPUT = (ptr, len) };
    let data: &[u8] = if ptr.is_null() || len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let result = f(data);
    unsafe { INPUT = (std::ptr::null(), 0) };
    match result {
        Ok(out) => take_output(out),
        Err(message) => {
            discard_output();
            set_error(&message);
        }
    }
    let (out, out_len) = unsafe { OUTPUT };
    unsafe { OUTPUT = (std::ptr::null_mut(), 0) };
    // The host copies the output out, then frees it with `dealloc`.
    ((out as usize as u64) << 32) | out_len as u64
}

/// Exports `fn name(input: &[u8]) -> Result<Vec<u8>, String>` for
/// `callBytes`/`callJson`: the export has the bytes-ABI signature
/// `(ptr, len) -> i64`; `Ok(bytes)` is the output, `Err(message)` fails the
/// call with a `GuestError` whose message is `message`. The module must be
/// mounted as `mod wasmplug;` at the crate root.
#[macro_export]
macro_rules! plugin_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($input:ident: &[u8]) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        pub extern "C" fn $name(ptr: *const u8, len: usize) -> u64 {
            fn inner($input: &[u8]) -> $ret $body
            $crate::wasmplug::run(ptr, len, inner)
        }
    };
}

// ---- Host functions ---------------------------------------------------------------

/// Log levels of [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Logs `message` (16 KiB a record) to the plugin's logger.
pub fn log(level: Level, message: &str) {
    unsafe { raw::host_log(level as i32, message.as_ptr(), message.len()) }
}

/// Logs at level debug.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Logs at level info.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at level warning.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at level error.
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Asks the host, growing the buffer to the length it answers while that is
/// larger; `None` for "no such key" or "no such tool".
fn answer<F: FnMut(*mut u8, usize) -> i32>(mut ask: F) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = vec![0; 256];
    for _ in 0..8 {
        let n = ask(buf.as_mut_ptr(), buf.len());
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return Some(buf);
        }
        // Needs more room: the host answered the full length.
        buf = vec![0; n];
    }
    None
}

/// A value of the plugin config's `config` map (Capability: ReadConfig).
pub fn config_get(key: &str) -> Option<String> {
    let bytes = answer(|out, cap| unsafe {
        raw::host_get_config(key.as_ptr(), key.len(), out, cap)
    })?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Sets a value of the config map (Capability: WriteConfig); 0 on success.
pub fn config_set(key: &str, value: &str) -> i32 {
    unsafe { raw::host_set_config(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

/// A value of the plugin's storage (Capability: ReadState).
pub fn storage_get(key: &str) -> Option<Vec<u8>> {
    answer(|out, cap| unsafe { raw::host_storage_get(key.as_ptr(), key.len(), out, cap) })
}

/// Stores a value (Capability: WriteState); 0 on success.
pub fn storage_set(key: &str, value: &[u8]) -> i32 {
    unsafe { raw::host_storage_set(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

/// Sends a message to another plugin or the application (Capability: SendMessage).
pub fn send_message(to: &str, message: &[u8]) -> i32 {
    unsafe { raw::host_send_message(to.as_ptr(), to.len(), message.as_ptr(), message.len()) }
}

/// Calls a tool the host registered, JSON in, JSON out (Capability: CallTool);
/// `None` when there is no such tool.
pub fn call_tool(name: &str, args_json: &str) -> Option<String> {
    let bytes = answer(|out, cap| unsafe {
        raw::host_call_tool(name.as_ptr(), name.len(), args_json.as_ptr(), args_json.len(), out, cap)
    })?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Fetches over HTTP: JSON `{method,url,headers,body}` in, JSON
/// `{status,headers,body}` out (Capability: NetworkAccess).
pub fn http_fetch(request_json: &str) -> Option<String> {
    let bytes = answer(|out, cap| unsafe {
        raw::host_http_fetch(request_json.as_ptr(), request_json.len(), out, cap)
    })?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Milliseconds since the epoch (Capability: Timer).
pub fn now_ms() -> i64 {
    unsafe { raw::host_now_ms() }
}

/// Suspends the plugin, not the host (Capability: Timer).
pub fn sleep_ms(ms: u32) {
    unsafe { raw::host_sleep_ms(ms.min(i32::MAX as u32) as i32) }
}

/// Fills `buf` with cryptographically random bytes (Capability: Random).
pub fn random_bytes(buf: &mut [u8]) {
    unsafe {
        raw::host_random_bytes(buf.as_mut_ptr(), buf.len());
    }
}

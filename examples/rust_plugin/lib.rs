//! The guide's Rust plugin: `add` and `process_data(ptr, len)`, the
//! allocator that wasmplug's bytes ABI uses to pass them their input, and a
//! `handle(ptr, len)` handler for `callJson`.
//!
//! Build: `deno task build:examples` (needs Debian's `rustc` and
//! `libstd-rust-dev-wasm32`).

use std::alloc::{alloc as allocate, dealloc as deallocate, Layout};

#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[no_mangle]
pub extern "C" fn process_data(ptr: *const u8, len: usize) -> i32 {
    let data = unsafe { std::slice::from_raw_parts(ptr, len) };

    // Process data
    data.len() as i32
}

/// The `callJson` handler: takes any JSON value and answers
/// `{"ok":true,"bytes":<input length>,"echo":<input>}`. The host always sends
/// valid JSON, so the input is embedded as it is.
///
/// Returns the output location packed as `(out_ptr << 32) | out_len` (0 when
/// out of memory); the host copies the output and frees it with
/// `dealloc(out_ptr, out_len)`.
#[no_mangle]
pub extern "C" fn handle(ptr: *const u8, len: usize) -> u64 {
    let input: &[u8] = if len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    // Formatted by hand: `to_string` would pull in `core::fmt` (13 KB).
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = len;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let parts: [&[u8]; 5] = [
        b"{\"ok\":true,\"bytes\":",
        digits.get(start..).unwrap_or(&[]),
        b",\"echo\":",
        input,
        b"}",
    ];
    let total: usize = parts.iter().map(|part| part.len()).sum();
    let out = alloc(total);
    if out.is_null() {
        return 0;
    }
    let mut at = 0;
    for part in parts {
        unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), out.add(at), part.len()) };
        at += part.len();
    }
    ((out as u64) << 32) | total as u64
}

/// Allocates `size` bytes for the host to write into (`alloc` of the bytes ABI).
#[no_mangle]
pub extern "C" fn alloc(size: usize) -> *mut u8 {
    if size == 0 {
        return std::ptr::null_mut();
    }
    unsafe { allocate(Layout::from_size_align_unchecked(size, 1)) }
}

/// Frees what `alloc` returned (`dealloc` of the bytes ABI).
#[no_mangle]
pub extern "C" fn dealloc(ptr: *mut u8, size: usize) {
    if ptr.is_null() || size == 0 {
        return;
    }
    unsafe { deallocate(ptr, Layout::from_size_align_unchecked(size, 1)) }
}

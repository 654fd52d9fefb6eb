//! The guide's Rust plugin: `add` and `process_data(ptr, len)`, plus the
//! allocator that wasmplug's bytes ABI uses to pass `process_data` its input.
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

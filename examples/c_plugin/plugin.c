// A wasmplug plugin in C without WASI or libc, for `clang --target=wasm32`.
//
// Exports the bytes ABI of wasmplug (ABI.md): `alloc`/`dealloc`,
// `process_data(ptr, len) -> i32` for `callWithBytes` (the Adler-32
// checksum of the input) and `transform(ptr, len) -> i64` for `callBytes`
// (the input upper-cased, after the `prefix` config value when there is
// one). It logs through `env.host_log` and reads its configuration through
// `env.host_get_config` (which needs `Capability.ReadConfig`).
//
// Build: `bash examples/c_plugin/build.sh`.

typedef unsigned char u8;
typedef int i32;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef __SIZE_TYPE__ usize;

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

IMPORT(host_log) void host_log(i32 level, const u8 *ptr, i32 len);
IMPORT(host_get_config) i32 host_get_config(const u8 *key, i32 key_len, u8 *out, i32 out_cap);

// clang lowers struct copies and loops like these to memcpy/memset calls,
// which -nostdlib does not provide.
void *memcpy(void *dst, const void *src, usize n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, usize n) {
  u8 *d = dst;
  while (n--) *d++ = (u8)c;
  return dst;
}

static usize length(const char *s) {
  usize n = 0;
  while (s[n]) n++;
  return n;
}

static void log_text(i32 level, const char *text) {
  host_log(level, (const u8 *)text, (i32)length(text));
}

// ---- Allocator ------------------------------------------------------------
//
// A bump allocator that starts over when everything is freed. The host
// frees what it allocates after each call, and frees `transform`'s output
// once it has copied it, so each call starts from an empty heap.

extern u8 __heap_base;
static usize heap_top = 0;
static usize live = 0;

EXPORT(alloc) u8 *alloc(usize size) {
  if (heap_top == 0) heap_top = (usize)&__heap_base;
  usize start = (heap_top + 7) & ~(usize)7;
  usize end = start + size;
  if (end < start) return 0;
  usize have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    usize pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (usize)-1) return 0;
  }
  heap_top = end;
  live++;
  return (u8 *)start;
}

EXPORT(dealloc) void dealloc(u8 *ptr, usize size) {
  if (ptr == 0 || live == 0) return;
  if ((usize)ptr + size == heap_top) heap_top = (usize)ptr;
  if (--live == 0) heap_top = (usize)&__heap_base;
}

// ---- Exports ----------------------------------------------------------------

// The Adler-32 checksum of the input (RFC 1950).
EXPORT(process_data) i32 process_data(const u8 *ptr, i32 len) {
  u32 a = 1, b = 0;
  for (i32 i = 0; i < len; i++) {
    a = (a + ptr[i]) % 65521;
    b = (b + a) % 65521;
  }
  log_text(LOG_DEBUG, "process_data: computed the Adler-32 checksum");
  return (i32)((b << 16) | a);
}

// The config value of `key`, in a buffer from `alloc` (NULL if missing).
// Asks with a small buffer first, then with one of the length the host
// reported, as ABI.md describes.
static u8 *config_value(const char *key, i32 *out_len) {
  u8 small[32];
  i32 key_len = (i32)length(key);
  i32 len = host_get_config((const u8 *)key, key_len, small, sizeof small);
  if (len < 0) return 0;
  u8 *value = alloc(len);
  if (value == 0) return 0;
  if (len <= (i32)sizeof small) {
    memcpy(value, small, len);
  } else {
    host_get_config((const u8 *)key, key_len, value, len);
  }
  *out_len = len;
  return value;
}

// The input upper-cased, after the `prefix` config value if set. Returns
// `(out_ptr << 32) | out_len`; the host frees the output with `dealloc`.
EXPORT(transform) u64 transform(const u8 *ptr, i32 len) {
  i32 prefix_len = 0;
  u8 *prefix = config_value("prefix", &prefix_len);
  if (prefix == 0) log_text(LOG_WARN, "transform: no \"prefix\" in the config");
  u8 *out = alloc(prefix_len + len);
  if (out == 0) {
    dealloc(prefix, prefix_len);
    log_text(LOG_ERROR, "transform: out of memory");
    return 0;
  }
  memcpy(out, prefix, prefix_len);
  dealloc(prefix, prefix_len);
  for (i32 i = 0; i < len; i++) {
    u8 c = ptr[i];
    out[prefix_len + i] = (c >= 'a' && c <= 'z') ? (u8)(c - 'a' + 'A') : c;
  }
  log_text(LOG_INFO, "transform: upper-cased the input");
  return ((u64)(usize)out << 32) | (u32)(prefix_len + len);
}

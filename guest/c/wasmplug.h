/*
 * wasmplug.h: the C guest SDK of wasmplug, in one header.
 *
 * Write a plugin function, export it with WASMPLUG_EXPORT, and call it from
 * the host with `plugin.callBytes(name, bytes)` or `plugin.callJson(name, value)`:
 *
 *     #include "wasmplug.h"
 *
 *     WASMPLUG_EXPORT(upper)
 *     int upper(void) {
 *       size_t len;
 *       const uint8_t *in = wasmplug_input(&len);
 *       char *out = wasmplug_alloc(len);
 *       if (out == NULL) return wasmplug_fail("out of memory");
 *       for (size_t i = 0; i < len; i++) {
 *         out[i] = in[i] >= 'a' && in[i] <= 'z' ? (char)(in[i] - 32) : (char)in[i];
 *       }
 *       wasmplug_output(out, len);
 *       wasmplug_free(out);
 *       return 0;  // non-zero: the call fails with the output as its message
 *     }
 *
 * Build without libc:
 *     clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -I guest/c -o plugin.wasm plugin.c
 * or with wasi-libc (then the SDK uses malloc/free and vsnprintf):
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -I guest/c \
 *       -o plugin.wasm plugin.c
 *
 * The header holds its implementation. A plugin made of several C files
 * defines WASMPLUG_NO_IMPLEMENTATION before including it in all files but one.
 * WASMPLUG_LIBC (0 or 1) overrides whether libc is used; by default it is
 * when compiling for WASI with a hosted libc.
 *
 * The guest ABI, with every bound the host keeps, is docs/ABI.md.
 */
#ifndef WASMPLUG_H
#define WASMPLUG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef WASMPLUG_LIBC
#if defined(__wasi__) && __STDC_HOSTED__ && defined(__has_include)
#if __has_include(<stdlib.h>)
#define WASMPLUG_LIBC 1
#endif
#endif
#endif
#ifndef WASMPLUG_LIBC
#define WASMPLUG_LIBC 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The host functions (import module "env") -------------------------- */
/*
 * A gated function links without its capability; calling it without the
 * capability fails the whole call with CapabilityDeniedError. Functions with
 * (out, out_cap) return the full length of the answer and write nothing when
 * it is longer than out_cap; -1 means "no such key" or "no such tool".
 */

#define WASMPLUG_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

/* Capability: none. level 0 debug, 1 info, 2 warning, 3 error; 16 KiB a record. */
WASMPLUG_IMPORT(host_log) void host_log(int32_t level, const uint8_t *ptr, size_t len);
/* Capability: none. Fails the running call with GuestError(message) once it returns. */
WASMPLUG_IMPORT(host_set_error) void host_set_error(const uint8_t *ptr, size_t len);
/* Capability: ReadConfig. */
WASMPLUG_IMPORT(host_get_config)
int32_t host_get_config(const uint8_t *key, size_t key_len, uint8_t *out, size_t out_cap);
/* Capability: WriteConfig. 0 on success. */
WASMPLUG_IMPORT(host_set_config)
int32_t host_set_config(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len);
/* Capability: ReadState. */
WASMPLUG_IMPORT(host_storage_get)
int32_t host_storage_get(const uint8_t *key, size_t key_len, uint8_t *out, size_t out_cap);
/* Capability: WriteState. 0 on success. */
WASMPLUG_IMPORT(host_storage_set)
int32_t host_storage_set(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len);
/* Capability: SendMessage. 0 on success. */
WASMPLUG_IMPORT(host_send_message)
int32_t host_send_message(const uint8_t *to, size_t to_len, const uint8_t *msg, size_t msg_len);
/* Capability: CallTool. JSON arguments in, the tool's JSON result out. */
WASMPLUG_IMPORT(host_call_tool)
int32_t host_call_tool(const uint8_t *name, size_t name_len, const uint8_t *args, size_t args_len,
                       uint8_t *out, size_t out_cap);
/* Capability: NetworkAccess. JSON {method,url,headers,body} -> JSON {status,headers,body}. */
WASMPLUG_IMPORT(host_http_fetch)
int32_t host_http_fetch(const uint8_t *req, size_t req_len, uint8_t *out, size_t out_cap);
/* Capability: Timer. Milliseconds since the epoch. */
WASMPLUG_IMPORT(host_now_ms) int64_t host_now_ms(void);
/* Capability: Timer. Suspends the plugin, not the host. */
WASMPLUG_IMPORT(host_sleep_ms) void host_sleep_ms(int32_t ms);
/* Capability: Random. Cryptographically random bytes; 0 on success. */
WASMPLUG_IMPORT(host_random_bytes) int32_t host_random_bytes(uint8_t *ptr, size_t len);

/* ---- The SDK -------------------------------------------------------------- */

enum { WASMPLUG_DEBUG = 0, WASMPLUG_INFO = 1, WASMPLUG_WARN = 2, WASMPLUG_ERROR = 3 };

/* The heap the host's `alloc`/`dealloc` use too. NULL when out of memory. */
void *wasmplug_alloc(size_t size);
/* Frees what wasmplug_alloc (or a getter below) returned; NULL is ignored. */
void wasmplug_free(void *ptr);

/* The running call's input (not NUL-terminated); never NULL. */
const uint8_t *wasmplug_input(size_t *len);
/*
 * Sets the running call's output to a copy of `len` bytes (replacing an
 * earlier one). Without memory for the copy, the call fails with a
 * GuestError ("out of memory …") unless a later output replaces this one.
 */
void wasmplug_output(const void *data, size_t len);
/* Sets the output to a NUL-terminated string. */
void wasmplug_output_str(const char *s);
/* Sets the output to a formatted message and returns 1: `return wasmplug_fail("bad %s", what);`. */
int wasmplug_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * snprintf: writes at most `cap` bytes (NUL included) and returns the length
 * of the whole text. Without libc it knows printf's conversions (d i u o x X
 * c s p f F e E g G %, %a printed as %e, %n writing nothing) with their
 * flags, width, precision and length modifiers, and writes what musl's
 * printf writes, with these limits: a precision above 17 counts as 17, a
 * width or precision above 1 MiB as 1 MiB; %f, %e and %g are exact from
 * 2^-7 to 2^64, and right to about 15 significant digits outside; a long
 * double prints as "(long double)"; %ls reads a char string. Checked like
 * printf's formats by the compiler.
 */
int wasmplug_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int wasmplug_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
/* Logs a formatted record (wasmplug_format's conversions). */
void wasmplug_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The getters answer a NUL-terminated buffer of wasmplug_alloc (free it with
 * wasmplug_free) and its length in *len (len may be NULL), or NULL when there
 * is no such key or tool (or no memory). They retry with a buffer of the
 * length the host answers when their first one is too small.
 */
char *wasmplug_config_get(const char *key, size_t *len);
int wasmplug_config_set(const char *key, const char *value);
uint8_t *wasmplug_storage_get(const char *key, size_t *len);
int wasmplug_storage_set(const char *key, const void *value, size_t len);
int wasmplug_send_message(const char *to, const void *msg, size_t len);
char *wasmplug_call_tool(const char *name, const char *args_json, size_t *len);
char *wasmplug_http_fetch(const char *request_json, size_t *len);

/* Runs a plugin function for the bytes ABI; used by WASMPLUG_EXPORT. */
uint64_t wasmplug__run(int (*fn)(void), const uint8_t *ptr, size_t len);

/*
 * Exports `int name(void)` for callBytes/callJson: the export has the
 * bytes-ABI signature (ptr, len) -> i64, stores the input for
 * wasmplug_input, and packs the output as (out_ptr << 32) | out_len. When
 * the function returns non-zero, the call fails with a GuestError whose
 * message is the output.
 */
#define WASMPLUG_EXPORT(name)                                                                  \
  int name(void);                                                                              \
  uint64_t wasmplug__export_##name(const uint8_t *wasmplug__ptr, size_t wasmplug__len);        \
  __attribute__((export_name(#name))) uint64_t wasmplug__export_##name(                        \
      const uint8_t *wasmplug__ptr, size_t wasmplug__len) {                                    \
    return wasmplug__run(name, wasmplug__ptr, wasmplug__len);                                  \
  }

#ifndef WASMPLUG_NO_IMPLEMENTATION

#if WASMPLUG_LIBC
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

/* ---- Memory ---------------------------------------------------------------- */

#if WASMPLUG_LIBC

void *wasmplug_alloc(size_t size) { return malloc(size == 0 ? 1 : size); }

void wasmplug_free(void *ptr) { free(ptr); }

#else

/*
 * Without libc, the compiler still emits calls to memcpy and memset for
 * copies and fills; these weak definitions give way to the plugin's own.
 */
/*
 * Eight bytes a step (wasm loads and stores need no alignment): byte by byte,
 * a copy cost some 15 fuel units a byte, and echoing 16 MiB took more than the
 * default fuel budget.
 */
typedef uint64_t __attribute__((aligned(1), may_alias)) wasmplug__word;

__attribute__((weak, no_builtin)) void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  for (; n >= 8; n -= 8, d += 8, s += 8) *(wasmplug__word *)d = *(const wasmplug__word *)s;
  while (n--) *d++ = *s++;
  return dst;
}

__attribute__((weak, no_builtin)) void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (d < s) {
    /* Each word is read whole before it is written: forward is safe when d < s. */
    for (; n >= 8; n -= 8, d += 8, s += 8) *(wasmplug__word *)d = *(const wasmplug__word *)s;
    while (n--) *d++ = *s++;
  } else {
    for (; n >= 8; n -= 8) *(wasmplug__word *)(d + n - 8) = *(const wasmplug__word *)(s + n - 8);
    while (n--) d[n] = s[n];
  }
  return dst;
}

__attribute__((weak, no_builtin)) void *memset(void *dst, int c, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint64_t word = (uint64_t)(uint8_t)c * 0x0101010101010101ULL;
  for (; n >= 8; n -= 8, d += 8) *(wasmplug__word *)d = word;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

/*
 * A first-fit free-list allocator over memory.grow. Each block has an 8-byte
 * header (payload size, then the next free block or a "used" tag). Freed
 * blocks are kept sorted by address and merged with their neighbours, and a
 * free block at the top of the heap is given back to it, so a plugin that
 * frees what it allocates (the host frees each call's input and output) keeps
 * the same memory call after call.
 */
typedef struct wasmplug__block {
  size_t size;
  struct wasmplug__block *next;
} wasmplug__block;

#define WASMPLUG__HEADER ((size_t)sizeof(wasmplug__block))
/* Odd, so no block address (8-aligned) is ever mistaken for it. */
#define WASMPLUG__USED ((wasmplug__block *)(uintptr_t)0x5AFEB10Du)

extern unsigned char __heap_base;
static uintptr_t wasmplug__heap_start;
static uintptr_t wasmplug__top;
static wasmplug__block *wasmplug__free_list;

void *wasmplug_alloc(size_t size) {
  if (size > 0x7FF00000u) return NULL;
  size = size == 0 ? 8 : (size + 7) & ~(size_t)7;
  wasmplug__block **link = &wasmplug__free_list;
  for (wasmplug__block *block = *link; block != NULL; link = &block->next, block = *link) {
    if (block->size < size) continue;
    if (block->size - size >= WASMPLUG__HEADER + 8) {
      wasmplug__block *rest = (wasmplug__block *)((uint8_t *)block + WASMPLUG__HEADER + size);
      rest->size = block->size - size - WASMPLUG__HEADER;
      rest->next = block->next;
      *link = rest;
      block->size = size;
    } else {
      *link = block->next;
    }
    block->next = WASMPLUG__USED;
    return (uint8_t *)block + WASMPLUG__HEADER;
  }
  if (wasmplug__top == 0) {
    wasmplug__heap_start = ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7;
    wasmplug__top = wasmplug__heap_start;
  }
  uintptr_t start = wasmplug__top;
  uintptr_t end = start + WASMPLUG__HEADER + size;
  if (end < start) return NULL;
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
  if ((uint64_t)end > have) {
    size_t pages = (size_t)(((uint64_t)end - have + 65535u) / 65536u);
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return NULL;
  }
  wasmplug__top = end;
  wasmplug__block *block = (wasmplug__block *)start;
  block->size = size;
  block->next = WASMPLUG__USED;
  return (uint8_t *)block + WASMPLUG__HEADER;
}

void wasmplug_free(void *ptr) {
  uintptr_t at = (uintptr_t)ptr;
  if (ptr == NULL || (at & 7) != 0 || at < wasmplug__heap_start + WASMPLUG__HEADER ||
      at > wasmplug__top) {
    return;
  }
  wasmplug__block *block = (wasmplug__block *)(at - WASMPLUG__HEADER);
  if (block->next != WASMPLUG__USED) return; /* not a live block: freed twice, or not ours */
  wasmplug__block *prev = NULL;
  wasmplug__block *next = wasmplug__free_list;
  while (next != NULL && next < block) {
    prev = next;
    next = next->next;
  }
  block->next = next;
  if (prev != NULL) {
    prev->next = block;
  } else {
    wasmplug__free_list = block;
  }
  if (next != NULL && (uint8_t *)block + WASMPLUG__HEADER + block->size == (uint8_t *)next) {
    block->size += WASMPLUG__HEADER + next->size;
    block->next = next->next;
  }
  if (prev != NULL && (uint8_t *)prev + WASMPLUG__HEADER + prev->size == (uint8_t *)block) {
    prev->size += WASMPLUG__HEADER + block->size;
    prev->next = block->next;
    block = prev;
  }
  if ((uintptr_t)block + WASMPLUG__HEADER + block->size == wasmplug__top) {
    /* The last free block touches the top: give it back to the heap. */
    wasmplug__block **link = &wasmplug__free_list;
    while (*link != block) link = &(*link)->next;
    *link = NULL;
    wasmplug__top = (uintptr_t)block;
  }
}

#endif /* WASMPLUG_LIBC */

__attribute__((export_name("alloc"))) void *wasmplug__export_alloc(size_t size);
__attribute__((export_name("alloc"))) void *wasmplug__export_alloc(size_t size) {
  return wasmplug_alloc(size);
}

__attribute__((export_name("dealloc"))) void wasmplug__export_dealloc(void *ptr, size_t size);
__attribute__((export_name("dealloc"))) void wasmplug__export_dealloc(void *ptr, size_t size) {
  (void)size;
  wasmplug_free(ptr);
}

/* ---- Text -------------------------------------------------------------------- */

static size_t wasmplug__strlen(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

#if WASMPLUG_LIBC

int wasmplug_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
  return vsnprintf(buf, cap, fmt, ap);
}

#else

typedef struct {
  char *buf;
  size_t cap;
  size_t len;
} wasmplug__sink;

static void wasmplug__put(wasmplug__sink *sink, char c) {
  if (sink->len + 1 < sink->cap) sink->buf[sink->len] = c;
  sink->len++;
}

/* The widest field and the longest precision the formatter writes (1 MiB). */
#define WASMPLUG__MAX_FIELD (1 << 20)

/* `field` with one more decimal digit `c`, no more than just past WASMPLUG__MAX_FIELD. */
static int wasmplug__field_digit(int field, char c) {
  return field > WASMPLUG__MAX_FIELD ? field : field * 10 + (c - '0');
}

/* A conversion's flags, width and precision (-1: none), as printf reads them. */
typedef struct {
  int left, plus, space, alt, zero;
  int width, precision;
} wasmplug__spec;

/* Writes `n` copies of `c`. */
static void wasmplug__pad(wasmplug__sink *sink, char c, int n) {
  for (; n > 0; n--) wasmplug__put(sink, c);
}

/*
 * Writes a converted field: `prefix` (a sign, "0x"), zeros up to `zeros`
 * digits, then `body`, padded to the width as the flags say.
 */
static void wasmplug__field(wasmplug__sink *sink, const wasmplug__spec *spec, const char *prefix,
                            const char *body, int body_len, int zeros) {
  int prefix_len = 0;
  while (prefix[prefix_len] != '\0') prefix_len++;
  int fill = zeros > body_len ? zeros - body_len : 0;
  int pad = spec->width - prefix_len - fill - body_len;
  if (!spec->left && !spec->zero) wasmplug__pad(sink, ' ', pad);
  for (int i = 0; i < prefix_len; i++) wasmplug__put(sink, prefix[i]);
  if (!spec->left && spec->zero) wasmplug__pad(sink, '0', pad);
  wasmplug__pad(sink, '0', fill);
  for (int i = 0; i < body_len; i++) wasmplug__put(sink, body[i]);
  if (spec->left) wasmplug__pad(sink, ' ', pad);
}

/* The digits of `value` in `base`, most significant first, in `digits`; returns how many. */
static int wasmplug__digits(char *digits, unsigned long long value, unsigned base, int upper) {
  char reversed[24];
  int n = 0;
  do {
    unsigned digit = (unsigned)(value % base);
    reversed[n++] = (char)(digit < 10 ? '0' + digit : (upper ? 'A' : 'a') + digit - 10);
    value /= base;
  } while (value != 0);
  for (int i = 0; i < n; i++) digits[i] = reversed[n - 1 - i];
  return n;
}

/* An integer conversion (d i u o x X p): `negative` with `value` its magnitude. */
static void wasmplug__integer(wasmplug__sink *sink, wasmplug__spec spec, char conv,
                              int negative, unsigned long long value) {
  unsigned base = conv == 'o' ? 8 : conv == 'x' || conv == 'X' || conv == 'p' ? 16 : 10;
  char digits[24];
  int n = wasmplug__digits(digits, value, base, conv == 'X');
  if (spec.precision >= 0) {
    spec.zero = 0;
    if (spec.precision == 0 && value == 0) n = 0; /* "%.0d" of 0 prints nothing */
  }
  /* A sign for d and i only; "0x" for p, and for x/X with # unless the value is 0. */
  const char *prefix = "";
  if (conv == 'd' || conv == 'i') {
    prefix = negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  } else if (conv == 'p' || (spec.alt && value != 0 && (conv == 'x' || conv == 'X'))) {
    prefix = conv == 'X' ? "0X" : "0x";
  }
  int zeros = spec.precision;
  /* # makes octal start with a 0: one more digit unless it starts with one already. */
  if (spec.alt && conv == 'o' && (n == 0 || digits[0] != '0') && zeros <= n) zeros = n + 1;
  wasmplug__field(sink, &spec, prefix, digits, n, zeros);
}

/* Powers of ten as doubles, exactly, up to 1e22. */
static double wasmplug__pow10(int n) {
  double p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

/* A value below 2^64: its integer part, its fraction in 60-bit fixed point, and whether bits were
   below those 60 (only for values under 2^-7, whose fraction has more). */
typedef struct {
  unsigned long long whole, fraction;
  int rest;
} wasmplug__parts;

static wasmplug__parts wasmplug__split(double value) {
  wasmplug__parts parts;
  parts.whole = (unsigned long long)value;
  double scaled = (value - (double)parts.whole) * 1152921504606846976.0; /* exact: times 2^60 */
  parts.fraction = (unsigned long long)scaled;
  parts.rest = scaled != (double)parts.fraction;
  return parts;
}

/* The fraction's next decimal digit, taken off it. */
static char wasmplug__next_digit(wasmplug__parts *parts) {
  parts->fraction *= 10;
  char digit = (char)('0' + (parts->fraction >> 60));
  parts->fraction &= (1ull << 60) - 1;
  return digit;
}

/*
 * The first `count` (1 to 18) significant digits of `value` (from 2^-7 to
 * below 2^64), rounded half to even, in `digits`, and the decimal exponent of
 * the first in `*exponent`. Exact: the integer part and a 60-bit copy of the
 * fraction hold every bit of such a value.
 */
static void wasmplug__significant(double value, int count, char *digits, int *exponent) {
  wasmplug__parts parts = wasmplug__split(value);
  char all[24];
  int n = 0;
  if (parts.whole > 0) {
    n = wasmplug__digits(all, parts.whole, 10, 0);
    *exponent = n - 1;
  } else {
    /* Below 1: the fraction's leading zeros make the exponent. */
    *exponent = 0;
    do {
      all[0] = wasmplug__next_digit(&parts);
      --*exponent;
    } while (all[0] == '0');
    n = 1;
  }
  while (n < count + 1) all[n++] = wasmplug__next_digit(&parts);
  /* Half to even: up past half, or at half after an odd digit. */
  int rest = parts.rest || parts.fraction != 0;
  for (int i = count + 1; i < n; i++) rest = rest || all[i] != '0';
  int next = all[count] - '0';
  int up = next > 5 || (next == 5 && (rest || ((all[count - 1] - '0') & 1)));
  for (int i = 0; i < count; i++) digits[i] = all[i];
  if (!up) return;
  int i = count - 1;
  while (i >= 0 && digits[i] == '9') digits[i--] = '0';
  if (i >= 0) {
    digits[i]++;
  } else {
    /* 9.99… rounded up: 1.00…, one more to the exponent. */
    digits[0] = '1';
    ++*exponent;
  }
}

/*
 * Writes `value` (>= 0, finite) with `precision` digits after the point
 * (at most 17) into `out` (at least 360 bytes), rounded as printf does (half
 * to even); returns its length. Exact below 2^64: the fraction's digits come
 * from a 60-bit fixed-point copy of it, whatever bits it has below counted.
 */
static int wasmplug__fixed(char *out, double value, int precision, int point) {
  if (precision > 17) precision = 17;
  int n = 0;
  if (value < 18446744073709551616.0) {
    wasmplug__parts parts = wasmplug__split(value);
    unsigned long long whole = parts.whole;
    char digits[18];
    for (int i = 0; i < precision; i++) digits[i] = wasmplug__next_digit(&parts);
    const unsigned long long fraction = parts.fraction, one = 1ull << 60;
    const int sticky = parts.rest;
    /* Round on what is left: above half, or half with a last digit that is odd. */
    int last_odd = precision > 0 ? (digits[precision - 1] - '0') & 1 : (int)(whole & 1);
    if (fraction > one / 2 || (fraction == one / 2 && (sticky || last_odd))) {
      int i = precision - 1;
      while (i >= 0 && digits[i] == '9') digits[i--] = '0';
      if (i >= 0) digits[i]++;
      else whole++; /* 2^64 - 1 rounded up wraps only for values that print as e */
    }
    n = wasmplug__digits(out, whole, 10, 0);
    if (precision > 0 || point) out[n++] = '.';
    for (int i = 0; i < precision; i++) out[n++] = digits[i];
    return n;
  }
  /* 2^64 and above: 17 significant digits of a scaled copy (right to about 15), then zeros. */
  int shift = 0;
  while (value >= 10) value /= 10, shift++;
  char digits[24];
  int exponent;
  wasmplug__significant(value, 17, digits, &exponent);
  exponent += shift;
  for (int i = 0; i <= exponent; i++) out[n++] = i < 17 ? digits[i] : '0';
  if (precision > 0 || point) out[n++] = '.';
  for (int i = 0; i < precision; i++) out[n++] = '0';
  return n;
}

/* A floating-point conversion (f F e E g G a A; a prints as e). */
static void wasmplug__float(wasmplug__sink *sink, wasmplug__spec spec, char conv, double value) {
  int upper = conv == 'F' || conv == 'E' || conv == 'G' || conv == 'A';
  /* The sign bit: -0 and a negative NaN print their minus sign too. */
  int negative = __builtin_signbit(value) != 0;
  if (negative) value = -value;
  const char *prefix = negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  if (value != value || value > 1.7976931348623157e308) {
    spec.zero = 0;
    const char *text = value != value ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    wasmplug__field(sink, &spec, prefix, text, 3, 0);
    return;
  }
  char lower = (char)(conv | 0x20);
  int precision = spec.precision < 0 ? 6 : spec.precision;
  if (lower == 'g' && precision == 0) precision = 1;
  if (precision > 17) precision = 17;
  /* %e's and %g's significant digits, and the decimal exponent of the first. */
  int count = lower == 'g' ? precision : precision + 1;
  char significant[24];
  int exponent = 0;
  int exact = lower != 'f' && value >= 0.0078125 && value < 18446744073709551616.0;
  double mantissa = value;
  if (exact) {
    wasmplug__significant(value, count, significant, &exponent);
  } else if (lower != 'f' && value != 0) {
    /* Beyond the exact range: a scaled copy, right to about 15 significant digits. */
    while (mantissa >= 10) mantissa /= 10, exponent++;
    while (mantissa < 1) mantissa *= 10, exponent--;
    double rounding = 0.5 / wasmplug__pow10(count - 1);
    if (mantissa + rounding >= 10) mantissa /= 10, exponent++;
  }
  int use_e = lower == 'e' || lower == 'a' ||
              (lower == 'g' && (exponent < -4 || exponent >= precision));
  char body[400];
  int n;
  if (use_e) {
    int p = lower == 'g' ? precision - 1 : precision;
    if (exact) {
      n = 0;
      body[n++] = significant[0];
      if (p > 0 || spec.alt) body[n++] = '.';
      for (int i = 1; i <= p; i++) body[n++] = significant[i];
    } else {
      n = wasmplug__fixed(body, mantissa, p, spec.alt);
      if (n > 1 && body[0] == '1' && body[1] == '0') {
        /* Rounding made it 10.0…: one digit more to the exponent. */
        n = wasmplug__fixed(body, mantissa / 10, p, spec.alt);
        exponent++;
      }
    }
  } else {
    int p = lower == 'g' ? precision - 1 - exponent : precision;
    n = wasmplug__fixed(body, value, p < 0 ? 0 : p, spec.alt);
  }
  if (lower == 'g' && !spec.alt) {
    /* %g drops trailing zeros, and the point if nothing follows it. */
    int point = -1;
    for (int i = 0; i < n; i++) {
      if (body[i] == '.') point = i;
    }
    if (point >= 0) {
      while (n > point + 1 && body[n - 1] == '0') n--;
      if (n == point + 1) n--;
    }
  }
  if (use_e) {
    body[n++] = upper ? 'E' : 'e';
    body[n++] = exponent < 0 ? '-' : '+';
    char digits[8];
    int k = wasmplug__digits(digits, (unsigned long long)(exponent < 0 ? -exponent : exponent),
                             10, 0);
    if (k < 2) body[n++] = '0';
    for (int i = 0; i < k; i++) body[n++] = digits[i];
  }
  wasmplug__field(sink, &spec, prefix, body, n, 0);
}

int wasmplug_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
  wasmplug__sink sink = {buf, cap, 0};
  for (; *fmt != '\0'; fmt++) {
    if (*fmt != '%') {
      wasmplug__put(&sink, *fmt);
      continue;
    }
    const char *start = fmt++;
    wasmplug__spec spec = {0, 0, 0, 0, 0, 0, -1};
    for (;; fmt++) {
      if (*fmt == '-') spec.left = 1;
      else if (*fmt == '+') spec.plus = 1;
      else if (*fmt == ' ') spec.space = 1;
      else if (*fmt == '#') spec.alt = 1;
      else if (*fmt == '0') spec.zero = 1;
      else break;
    }
    /* Widths and precisions are kept below WASMPLUG__MAX_FIELD (past it printf fails). */
    if (*fmt == '*') {
      int width = va_arg(ap, int);
      if (width < 0) spec.left = 1;
      spec.width = width == (-2147483647 - 1) ? WASMPLUG__MAX_FIELD : width < 0 ? -width : width;
      fmt++;
    } else {
      while (*fmt >= '0' && *fmt <= '9') spec.width = wasmplug__field_digit(spec.width, *fmt++);
    }
    if (spec.width > WASMPLUG__MAX_FIELD) spec.width = WASMPLUG__MAX_FIELD;
    if (*fmt == '.') {
      fmt++;
      spec.precision = 0;
      if (*fmt == '*') {
        spec.precision = va_arg(ap, int);
        if (spec.precision < 0) spec.precision = -1;
        fmt++;
      } else {
        while (*fmt >= '0' && *fmt <= '9') {
          spec.precision = wasmplug__field_digit(spec.precision, *fmt++);
        }
      }
      if (spec.precision > WASMPLUG__MAX_FIELD) spec.precision = WASMPLUG__MAX_FIELD;
    }
    if (spec.left) spec.zero = 0;
    /* Length modifiers: hh h (an int, cut to char or short), l z t (32 bits on wasm32), ll j
       (64), L. */
    int longness = 0;
    if (*fmt == 'h') {
      longness = fmt[1] == 'h' ? -2 : -1;
      fmt += fmt[1] == 'h' ? 2 : 1;
    } else if (*fmt == 'l' && fmt[1] == 'l') {
      longness = 2, fmt += 2;
    } else if (*fmt == 'j') {
      longness = 2, fmt++;
    } else if (*fmt == 'l' || *fmt == 'z' || *fmt == 't') {
      longness = 1, fmt++;
    } else if (*fmt == 'L') {
      longness = 3, fmt++;
    }
    char conv = *fmt;
    switch (conv) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (s == NULL) s = "(null)";
        int n = 0;
        while (s[n] != '\0' && (spec.precision < 0 || n < spec.precision)) n++;
        spec.zero = 0;
        wasmplug__field(&sink, &spec, "", s, n, 0);
        break;
      }
      case 'c': {
        char c = (char)va_arg(ap, int);
        spec.zero = 0;
        wasmplug__field(&sink, &spec, "", &c, 1, 0);
        break;
      }
      case 'd':
      case 'i': {
        long long value = longness == 2   ? va_arg(ap, long long)
                          : longness == 1 ? (long long)va_arg(ap, long)
                                          : (long long)va_arg(ap, int);
        if (longness == -1) value = (short)value;
        if (longness == -2) value = (signed char)value;
        unsigned long long magnitude =
            value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
        wasmplug__integer(&sink, spec, conv, value < 0, magnitude);
        break;
      }
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        unsigned long long value = longness == 2   ? va_arg(ap, unsigned long long)
                                   : longness == 1 ? (unsigned long long)va_arg(ap, unsigned long)
                                                   : (unsigned long long)va_arg(ap, unsigned);
        if (longness == -1) value = (unsigned short)value;
        if (longness == -2) value = (unsigned char)value;
        wasmplug__integer(&sink, spec, conv, 0, value);
        break;
      }
      case 'p':
        wasmplug__integer(&sink, spec, 'p', 0, (unsigned long long)(uintptr_t)va_arg(ap, void *));
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
      case 'a':
      case 'A':
        if (longness == 3) {
          /* A long double is taken off the arguments but not converted (that needs libc). */
          (void)va_arg(ap, long double);
          wasmplug__field(&sink, &spec, "", "(long double)", 13, 0);
        } else {
          wasmplug__float(&sink, spec, conv, va_arg(ap, double));
        }
        break;
      case 'n': /* writes nothing here: its pointer is taken off the arguments */
        (void)va_arg(ap, void *);
        break;
      case '%':
        wasmplug__put(&sink, '%');
        break;
      default: /* not a conversion: the text kept as it is ('\0': a lone '%' at the end) */
        for (const char *c = start; c < fmt; c++) wasmplug__put(&sink, *c);
        if (conv == '\0') fmt--;
        else wasmplug__put(&sink, conv);
        break;
    }
  }
  if (cap > 0) buf[sink.len < cap ? sink.len : cap - 1] = '\0';
  return (int)sink.len;
}

#endif /* WASMPLUG_LIBC */

int wasmplug_format(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = wasmplug_vformat(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

/* Formats into a new buffer of wasmplug_alloc; NULL without memory. */
static char *wasmplug__vformat_new(size_t *len, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  char probe[1];
  int n = wasmplug_vformat(probe, sizeof probe, fmt, ap);
  char *text = n < 0 ? NULL : (char *)wasmplug_alloc((size_t)n + 1);
  if (text != NULL) wasmplug_vformat(text, (size_t)n + 1, fmt, again);
  va_end(again);
  *len = text == NULL ? 0 : (size_t)n;
  return text;
}

void wasmplug_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t len;
  char *text = wasmplug__vformat_new(&len, fmt, ap);
  va_end(ap);
  if (text == NULL) return;
  host_log(level, (const uint8_t *)text, len);
  wasmplug_free(text);
}

/* ---- Input and output -------------------------------------------------------- */

static const uint8_t *wasmplug__input;
static size_t wasmplug__input_len;
static uint8_t *wasmplug__output;
static size_t wasmplug__output_len;
/* The length of an output there was no memory to copy: the call then fails. */
static size_t wasmplug__output_lost;

const uint8_t *wasmplug_input(size_t *len) {
  static const uint8_t empty[1] = {0};
  if (len != NULL) *len = wasmplug__input_len;
  return wasmplug__input != NULL ? wasmplug__input : empty;
}

/* Takes `data` (of wasmplug_alloc) as the output, freeing the one before. */
static void wasmplug__set_output(uint8_t *data, size_t len) {
  if (wasmplug__output != data) wasmplug_free(wasmplug__output);
  wasmplug__output = data;
  wasmplug__output_len = data == NULL ? 0 : len;
  wasmplug__output_lost = 0;
}

void wasmplug_output(const void *data, size_t len) {
  uint8_t *copy = len == 0 ? NULL : (uint8_t *)wasmplug_alloc(len);
  if (copy != NULL) memcpy(copy, data, len);
  wasmplug__set_output(copy, len);
  if (len > 0 && copy == NULL) wasmplug__output_lost = len;
}

void wasmplug_output_str(const char *s) { wasmplug_output(s, wasmplug__strlen(s)); }

int wasmplug_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t len;
  char *text = wasmplug__vformat_new(&len, fmt, ap);
  va_end(ap);
  wasmplug__set_output((uint8_t *)text, len);
  return 1;
}

uint64_t wasmplug__run(int (*fn)(void), const uint8_t *ptr, size_t len) {
  wasmplug__set_output(NULL, 0);
  wasmplug__input = ptr;
  wasmplug__input_len = len;
  int status = fn();
  uint8_t *out = wasmplug__output;
  size_t out_len = wasmplug__output_len;
  size_t lost = wasmplug__output_lost;
  wasmplug__output = NULL;
  wasmplug__output_len = 0;
  wasmplug__output_lost = 0;
  wasmplug__input = NULL;
  wasmplug__input_len = 0;
  if (status == 0 && lost == 0) return ((uint64_t)(uintptr_t)out << 32) | (uint64_t)out_len;
  if (status == 0) {
    /* The output set last did not fit in memory: an empty one would pass for it. */
    char message[80];
    int n = wasmplug_format(message, sizeof message, "out of memory for the %u-byte output",
                            (unsigned)lost);
    host_set_error((const uint8_t *)message, n < (int)sizeof message ? (size_t)n : 0);
  } else if (out_len > 0) {
    host_set_error(out, out_len);
  } else {
    char message[64];
    int n = wasmplug_format(message, sizeof message, "plugin function failed with status %d",
                            status);
    host_set_error((const uint8_t *)message, n < (int)sizeof message ? (size_t)n : 0);
  }
  wasmplug_free(out);
  return 0;
}

/* ---- Host calls that answer into a buffer ----------------------------------- */

typedef int32_t (*wasmplug__answer_fn)(const uint8_t *a, size_t a_len, const uint8_t *b,
                                       size_t b_len, uint8_t *out, size_t cap);

static int32_t wasmplug__get_config(const uint8_t *a, size_t a_len, const uint8_t *b,
                                    size_t b_len, uint8_t *out, size_t cap) {
  (void)b, (void)b_len;
  return host_get_config(a, a_len, out, cap);
}

static int32_t wasmplug__storage_get(const uint8_t *a, size_t a_len, const uint8_t *b,
                                     size_t b_len, uint8_t *out, size_t cap) {
  (void)b, (void)b_len;
  return host_storage_get(a, a_len, out, cap);
}

static int32_t wasmplug__call_tool(const uint8_t *a, size_t a_len, const uint8_t *b,
                                   size_t b_len, uint8_t *out, size_t cap) {
  return host_call_tool(a, a_len, b, b_len, out, cap);
}

static int32_t wasmplug__http_fetch(const uint8_t *a, size_t a_len, const uint8_t *b,
                                    size_t b_len, uint8_t *out, size_t cap) {
  (void)b, (void)b_len;
  return host_http_fetch(a, a_len, out, cap);
}

/* Asks the host, growing the buffer to the length it answers while that is larger. */
static uint8_t *wasmplug__answer(wasmplug__answer_fn fn, const char *a, const char *b,
                                 size_t *len) {
  size_t a_len = a == NULL ? 0 : wasmplug__strlen(a);
  size_t b_len = b == NULL ? 0 : wasmplug__strlen(b);
  size_t cap = 256;
  if (len != NULL) *len = 0;
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t *buf = (uint8_t *)wasmplug_alloc(cap + 1);
    if (buf == NULL) return NULL;
    int32_t n = fn((const uint8_t *)a, a_len, (const uint8_t *)b, b_len, buf, cap);
    if (n < 0) {
      wasmplug_free(buf);
      return NULL;
    }
    if ((size_t)n <= cap) {
      buf[n] = 0;
      if (len != NULL) *len = (size_t)n;
      return buf;
    }
    wasmplug_free(buf); /* needs more room: the host answered the full length */
    cap = (size_t)n;
  }
  return NULL;
}

char *wasmplug_config_get(const char *key, size_t *len) {
  return (char *)wasmplug__answer(wasmplug__get_config, key, NULL, len);
}

int wasmplug_config_set(const char *key, const char *value) {
  return host_set_config((const uint8_t *)key, wasmplug__strlen(key), (const uint8_t *)value,
                         wasmplug__strlen(value));
}

uint8_t *wasmplug_storage_get(const char *key, size_t *len) {
  return wasmplug__answer(wasmplug__storage_get, key, NULL, len);
}

int wasmplug_storage_set(const char *key, const void *value, size_t len) {
  return host_storage_set((const uint8_t *)key, wasmplug__strlen(key), (const uint8_t *)value,
                          len);
}

int wasmplug_send_message(const char *to, const void *msg, size_t len) {
  return host_send_message((const uint8_t *)to, wasmplug__strlen(to), (const uint8_t *)msg, len);
}

char *wasmplug_call_tool(const char *name, const char *args_json, size_t *len) {
  return (char *)wasmplug__answer(wasmplug__call_tool, name, args_json, len);
}

char *wasmplug_http_fetch(const char *request_json, size_t *len) {
  return (char *)wasmplug__answer(wasmplug__http_fetch, request_json, NULL, len);
}

#endif /* WASMPLUG_NO_IMPLEMENTATION */

#ifdef __cplusplus
}
#endif

#endif /* WASMPLUG_H */

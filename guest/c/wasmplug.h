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
 * of the whole text. Without libc it knows %s %.*s %d %i %u %x %c %%, the
 * numbers with l, ll or z too; checked like printf's formats by the compiler.
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

static void wasmplug__put_unsigned(wasmplug__sink *sink, unsigned long long value,
                                   unsigned base) {
  char digits[20];
  int n = 0;
  do {
    unsigned digit = value % base;
    digits[n++] = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
    value /= base;
  } while (value != 0);
  while (n > 0) wasmplug__put(sink, digits[--n]);
}

int wasmplug_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
  wasmplug__sink sink = {buf, cap, 0};
  for (; *fmt != '\0'; fmt++) {
    if (*fmt != '%') {
      wasmplug__put(&sink, *fmt);
      continue;
    }
    fmt++;
    int precision = -1;
    if (fmt[0] == '.' && fmt[1] == '*') {
      precision = va_arg(ap, int);
      fmt += 2;
    }
    /* Length modifiers: none (int), l or z (long, size_t: 32 bits on wasm32), ll (64 bits). */
    int longness = 0;
    if (*fmt == 'l' || *fmt == 'z') {
      longness = 1;
      if (*fmt++ == 'l' && *fmt == 'l') {
        longness = 2;
        fmt++;
      }
    }
    switch (*fmt) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (s == NULL) s = "(null)";
        for (int i = 0; s[i] != '\0' && (precision < 0 || i < precision); i++) {
          wasmplug__put(&sink, s[i]);
        }
        break;
      }
      case 'd':
      case 'i': {
        long long value = longness == 2   ? va_arg(ap, long long)
                          : longness == 1 ? (long long)va_arg(ap, long)
                                          : (long long)va_arg(ap, int);
        if (value < 0) wasmplug__put(&sink, '-');
        wasmplug__put_unsigned(
            &sink, value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value, 10);
        break;
      }
      case 'u':
      case 'x': {
        unsigned long long value = longness == 2   ? va_arg(ap, unsigned long long)
                                   : longness == 1 ? (unsigned long long)va_arg(ap, unsigned long)
                                                   : (unsigned long long)va_arg(ap, unsigned);
        wasmplug__put_unsigned(&sink, value, *fmt == 'u' ? 10 : 16);
        break;
      }
      case 'c':
        wasmplug__put(&sink, (char)va_arg(ap, int));
        break;
      case '%':
        wasmplug__put(&sink, '%');
        break;
      case '\0': /* a lone '%' at the end */
        wasmplug__put(&sink, '%');
        fmt--;
        break;
      default: /* not a conversion this formatter knows: kept as it is */
        wasmplug__put(&sink, '%');
        wasmplug__put(&sink, *fmt);
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

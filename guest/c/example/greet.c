/*
 * The C SDK's example plugin: `greet`, for `plugin.callJson("greet", { name })`.
 *
 * It reads the greeting from the config (key "greeting", default "Hello"),
 * counts its calls in storage (key "count"), logs, asks the host tool
 * "decorate" to dress up the text, and answers
 * `{"message": <what the tool answered>, "count": <calls so far>}`.
 * Without a "name" it fails: the caller gets a GuestError `missing "name"`.
 *
 * Capabilities: ReadConfig, ReadState, WriteState, CallTool.
 * Build: `deno task build:guests`.
 */
#include "wasmplug.h"

/*
 * The contents of the string field "name" of a JSON object, escapes kept (so
 * they can go into JSON again), or NULL. A naive scan, enough for an example.
 */
static const char *find_name(const char *json, size_t len, size_t *name_len) {
  static const char key[] = "\"name\"";
  for (size_t i = 0; i + sizeof key - 1 <= len; i++) {
    size_t k = 0;
    while (k < sizeof key - 1 && json[i + k] == key[k]) k++;
    if (k < sizeof key - 1) continue;
    size_t at = i + k;
    while (at < len && (json[at] == ' ' || json[at] == ':')) at++;
    if (at >= len || json[at] != '"') return NULL;
    size_t start = ++at;
    while (at < len && json[at] != '"') at += json[at] == '\\' ? 2 : 1;
    if (at >= len) return NULL;
    *name_len = at - start;
    return json + start;
  }
  return NULL;
}

/* `text` as the contents of a JSON string (quotes and backslashes escaped). */
static char *json_escape(const char *text) {
  size_t len = 0;
  for (const char *c = text; *c != '\0'; c++) len += *c == '"' || *c == '\\' ? 2 : 1;
  char *out = wasmplug_alloc(len + 1);
  if (out == NULL) return NULL;
  size_t at = 0;
  for (const char *c = text; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\') out[at++] = '\\';
    out[at++] = *c;
  }
  out[at] = '\0';
  return out;
}

static int parse_count(const uint8_t *text, size_t len) {
  int n = 0;
  for (size_t i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++) n = n * 10 + (text[i] - '0');
  return n;
}

WASMPLUG_EXPORT(greet)
int greet(void) {
  size_t in_len;
  const char *in = (const char *)wasmplug_input(&in_len);
  size_t name_len = 0;
  const char *name = find_name(in, in_len, &name_len);
  if (name == NULL || name_len == 0) return wasmplug_fail("missing \"name\"");

  char *configured = wasmplug_config_get("greeting", NULL);
  char *greeting = json_escape(configured != NULL ? configured : "Hello");
  wasmplug_free(configured);

  size_t stored_len = 0;
  uint8_t *stored = wasmplug_storage_get("count", &stored_len);
  int count = (stored == NULL ? 0 : parse_count(stored, stored_len)) + 1;
  wasmplug_free(stored);
  char count_text[16];
  int count_len = wasmplug_format(count_text, sizeof count_text, "%d", count);
  wasmplug_storage_set("count", count_text, (size_t)count_len);

  wasmplug_log(WASMPLUG_INFO, "greeting %.*s (call %d)", (int)name_len, name, count);

  size_t args_len = 0;
  char *args = NULL;
  if (greeting != NULL) {
    args_len = (size_t)wasmplug_format(NULL, 0, "{\"text\":\"%s, %.*s!\"}", greeting,
                                       (int)name_len, name);
    args = wasmplug_alloc(args_len + 1);
    if (args != NULL) {
      wasmplug_format(args, args_len + 1, "{\"text\":\"%s, %.*s!\"}", greeting, (int)name_len,
                      name);
    }
  }
  wasmplug_free(greeting);
  if (args == NULL) return wasmplug_fail("out of memory");

  size_t decorated_len = 0;
  char *decorated = wasmplug_call_tool("decorate", args, &decorated_len);
  wasmplug_free(args);
  if (decorated == NULL) return wasmplug_fail("no tool \"decorate\"");

  size_t out_len = (size_t)wasmplug_format(NULL, 0, "{\"message\":%s,\"count\":%d}", decorated,
                                           count);
  char *out = wasmplug_alloc(out_len + 1);
  if (out == NULL) {
    wasmplug_free(decorated);
    return wasmplug_fail("out of memory");
  }
  wasmplug_format(out, out_len + 1, "{\"message\":%s,\"count\":%d}", decorated, count);
  wasmplug_output(out, out_len);
  wasmplug_free(out);
  wasmplug_free(decorated);
  return 0;
}

// A WASI command in C (wasi-libc), run by wasmplug's WASI preview 1.
//
// 1. Echoes stdin upper-cased and counts its lines.
// 2. Prints its arguments after the program name.
// 3. Prints /data/greeting.txt, from the directory preopened as /data.
// 4. With REPORT_PATH set, writes the line count to that file.
// 5. Tries to reach past its sandbox: each path in PROBE_PATHS
//    (colon-separated), then the network; it reports each failure.
// 6. Exits with code 3, which the host receives as the exit code.
//
// Build: `bash examples/c_wasi/build.sh`.

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static long echo_upper(void) {
  long lines = 0;
  int c;
  while ((c = getchar()) != EOF) {
    if (c == '\n') lines++;
    putchar(toupper(c));
  }
  return lines;
}

static int print_file(const char *path) {
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, file)) > 0) fwrite(buf, 1, n, stdout);
  fclose(file);
  return 0;
}

static void write_report(const char *path, long lines) {
  FILE *file = fopen(path, "w");
  if (file == NULL || fprintf(file, "lines: %ld\n", lines) < 0 || fclose(file) != 0) {
    printf("report %s: failed (%s)\n", path, strerror(errno));
  } else {
    printf("report %s: written\n", path);
  }
}

static void probe(const char *path) {
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    printf("probe %s: denied (%s)\n", path, strerror(errno));
    return;
  }
  char buf[64];
  size_t n = fread(buf, 1, sizeof buf, file);
  fclose(file);
  printf("probe %s: READ %zu BYTES\n", path, n);
}

static void probe_network(void) {
  // Preview 1 cannot open a socket; accepting on a descriptor is all it has.
  __wasi_fd_t fd;
  __wasi_errno_t err = __wasi_sock_accept(3, 0, &fd);
  printf("network: %s\n", err == 0 ? "CONNECTED" : strerror(err));
}

int main(int argc, char **argv) {
  long lines = echo_upper();
  printf("lines: %ld\n", lines);

  printf("args:");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");

  printf("greeting: ");
  fflush(stdout);
  if (print_file("/data/greeting.txt") != 0) return 1;

  const char *report = getenv("REPORT_PATH");
  if (report != NULL) write_report(report, lines);

  const char *probes = getenv("PROBE_PATHS");
  if (probes != NULL) {
    char *list = strdup(probes);
    for (char *path = strtok(list, ":"); path != NULL; path = strtok(NULL, ":")) probe(path);
    free(list);
  }
  probe_network();
  return 3;
}

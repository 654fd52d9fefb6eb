#!/usr/bin/env bash
# Builds c_wasi.wasm from main.c with clang and wasi-libc (a WASI preview 1
# command). With `--opt`, also runs binaryen's wasm-opt over it
# (see ../_wasm_opt.sh).
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v clang >/dev/null || missing+=("clang")
command -v wasm-ld >/dev/null || missing+=("lld")
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=("wasi-libc")
builtins="$(clang --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null || true)"
[ -n "$builtins" ] && [ -f "$builtins" ] || missing+=("libclang-rt-14-dev-wasm32")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Building the C WASI example needs: ${missing[*]}" >&2
  echo "  apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32" >&2
  exit 1
fi
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
  -Wl,--strip-all -o c_wasi.wasm main.c
echo "built $(pwd)/c_wasi.wasm ($(wc -c < c_wasi.wasm) bytes)"
if [ "${1:-}" = "--opt" ]; then bash ../_wasm_opt.sh c_wasi.wasm; fi

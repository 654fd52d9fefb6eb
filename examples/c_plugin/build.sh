#!/usr/bin/env bash
# Builds plugin.wasm from plugin.c with clang for wasm32, without libc or
# WASI. With `--opt`, also runs binaryen's wasm-opt over it
# (see ../_wasm_opt.sh).
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v clang >/dev/null || missing+=("clang")
command -v wasm-ld >/dev/null || missing+=("lld (wasm-ld)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Building the C plugin example needs: ${missing[*]}" >&2
  echo "  apt-get install clang lld" >&2
  exit 1
fi
clang --target=wasm32 -O2 -nostdlib -ffreestanding -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=16384 \
  -o plugin.wasm plugin.c
echo "built $(pwd)/plugin.wasm ($(wc -c < plugin.wasm) bytes)"
if [ "${1:-}" = "--opt" ]; then bash ../_wasm_opt.sh plugin.wasm; fi

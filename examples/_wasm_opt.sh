#!/usr/bin/env bash
# Optimizes a built example in place with binaryen's wasm-opt, the optional
# last step of each example's build.sh (`build.sh --opt`). The level is
# $WASM_OPT_LEVEL, -Oz by default (-O3 favours speed).
#
#   bash examples/_wasm_opt.sh FILE.wasm
set -euo pipefail
file="$1"
if ! command -v wasm-opt >/dev/null; then
  echo "wasm-opt not found (apt-get install binaryen, or npm's binaryen); skipping it" >&2
  exit 0
fi
level="${WASM_OPT_LEVEL:--Oz}"
before="$(wc -c < "$file")"
wasm-opt "$level" "$file" -o "$file"
echo "wasm-opt $level: $before -> $(wc -c < "$file") bytes"

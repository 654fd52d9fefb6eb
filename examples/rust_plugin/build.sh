#!/usr/bin/env bash
# Builds my_plugin.wasm from lib.rs with Debian's rustc for wasm32-unknown-unknown.
# With `--opt`, also runs binaryen's wasm-opt over it
# (see ../_wasm_opt.sh).
set -euo pipefail
cd "$(dirname "$0")"
rustc=/usr/bin/rustc
# The list goes through a variable: `grep -q` exits at the first match, and
# under pipefail rustc's SIGPIPE would fail the test.
targets="$([ -x "$rustc" ] && "$rustc" --print target-list || true)"
if ! grep -qx wasm32-unknown-unknown <<<"$targets" \
  || [ ! -d /usr/lib/rustlib/wasm32-unknown-unknown ]; then
  echo "Building the Rust example needs Debian's rustc and libstd-rust-dev-wasm32:" >&2
  echo "  apt-get install rustc libstd-rust-dev-wasm32" >&2
  exit 1
fi
"$rustc" --target wasm32-unknown-unknown --crate-type cdylib --edition 2021 \
  -C opt-level=s -C strip=symbols -C panic=abort -o my_plugin.wasm lib.rs
echo "built $(pwd)/my_plugin.wasm ($(wc -c < my_plugin.wasm) bytes)"
if [ "${1:-}" = "--opt" ]; then bash ../_wasm_opt.sh my_plugin.wasm; fi

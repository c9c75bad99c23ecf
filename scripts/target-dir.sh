# Sourced by scripts/test and bench/lib.sh: exports CARGO_TARGET_DIR as cargo itself resolves it
# (the caller's variable, else .cargo/config.toml's build.target-dir), so the scripts, the tests'
# binaries and a plain `cargo run` all name one build. The path is written once, in the config.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR="$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  [ -n "$CARGO_TARGET_DIR" ] || { echo "cannot ask cargo for the target dir (cargo metadata failed)" >&2; exit 1; }
fi
export CARGO_TARGET_DIR

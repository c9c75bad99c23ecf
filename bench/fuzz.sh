#!/usr/bin/env bash
# Fuzz the parsers that read untrusted bytes (the targets in fuzz/fuzz_targets, one per parser),
# one after the other, with cargo-fuzz on the nightly toolchain (fuzzing only: the project builds
# and tests on stable, and fuzz/ is outside the main workspace). Installs cargo-fuzz if missing,
# seeds each corpus from the repository's own files (bench/fuzz_seed.py), runs each target for
# SECONDS_PER_TARGET and prints, per target: runs, exec/s, corpus size, crashes. A crash, hang
# (-timeout=10 s) or memory blow-up (-rss_limit_mb=2048) leaves its input in
# fuzz/artifacts/TARGET/; keep it as a regression test in the parser's crate.
#
#   bench/fuzz.sh                      every target, 600 s each
#   bench/fuzz.sh reference route      only these
#   SMOKE=1 bench/fuzz.sh              build, then 10 s per target (needs nightly: not part of
#                                      scripts/test)
#
# Niced and one process per target (-jobs=1 -workers=1): the cores are shared. LeakSanitizer is
# off: it needs ptrace, which this machine's sandbox blocks ("LeakSanitizer may hang"), and the
# rss limit catches memory that grows per input anyway.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SMOKE="${SMOKE:-0}"
if [ "$SMOKE" = 1 ]; then SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-10}"; fi
SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-600}"
TOOLCHAIN="${TOOLCHAIN:-nightly}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/skiff-fuzz-target}"
CORPUS="${CORPUS:-/var/tmp/skiff-fuzz-corpus}"
LOGS="${LOGS:-$CORPUS/logs}"

rustup toolchain list | grep -q "^$TOOLCHAIN" || rustup toolchain install "$TOOLCHAIN" --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cd "$ROOT/fuzz"
nice -n 19 cargo "+$TOOLCHAIN" fuzz build
python3 "$ROOT/bench/fuzz_seed.py" "$ROOT" "$CORPUS"
mkdir -p "$LOGS"

if (($#)); then targets=("$@"); else mapfile -t targets < <(cargo "+$TOOLCHAIN" fuzz list); fi
printf '%-18s %8s %12s %8s %8s %8s\n' target seconds runs exec/s corpus crashes
for t in "${targets[@]}"; do
  mkdir -p "$CORPUS/$t" "artifacts/$t" "$LOGS/$t"
  start=$(date +%s)
  # -jobs=1 makes libFuzzer write its output to fuzz-0.log in the working directory.
  # TMPDIR: archive_load's store lives there for the whole process (never dropped), so the
  # script removes it.
  rm -rf "$LOGS/$t/tmp" && mkdir -p "$LOGS/$t/tmp"
  (cd "$LOGS/$t" && rm -f fuzz-0.log &&
    TMPDIR="$LOGS/$t/tmp" nice -n 19 cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$ROOT/fuzz" "$t" "$CORPUS/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -jobs=1 -workers=1 -print_final_stats=1 -detect_leaks=0 \
      -artifact_prefix="$ROOT/fuzz/artifacts/$t/" >"$LOGS/$t/cargo.log" 2>&1) || true
  secs=$(($(date +%s) - start))
  rm -rf "$LOGS/$t/tmp"
  log="$LOGS/$t/fuzz-0.log"
  stat() { awk -v k="stat::$1:" '$1 == k {print $2}' "$log" 2>/dev/null | tail -1; }
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  printf '%-18s %8s %12s %8s %8s %8s\n' "$t" "$secs" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$(find "$CORPUS/$t" -type f | wc -l)" "$crashes"
done
echo "logs: $LOGS/TARGET/fuzz-0.log; crashing inputs: fuzz/artifacts/TARGET/"

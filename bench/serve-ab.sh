#!/usr/bin/env bash
# Server CPU per request of two skiff binaries side by side, alternating, for one change's
# before/after on a noisy machine: both serve the same guest at once; each round runs wrk
# against A then B (then B then A, the next round), and takes each server's CPU time from /proc
# over its wrk run, as bench/serve.sh does. Prints every round and the medians.
#
#   bench/serve-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#   GUEST=guests/wasm/http-hello-p2.wasm CONNS=64 DURATION=5s SERVE_ARGS="--reuse 1000" bench/serve-ab.sh A B
#   GUEST_B=guests/wasm/http-hello-p2.wasm bench/serve-ab.sh SKIFF SKIFF    two guests, one binary
#
# Not a test: it prints numbers, it asserts nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
A="$1" B="$2" ROUNDS="${3:-7}"
GUEST="${GUEST:-$ROOT/guests/wasm/http-hello.wasm}"
GUEST_A="${GUEST_A:-$GUEST}" GUEST_B="${GUEST_B:-$GUEST}"
CONNS="${CONNS:-64}" DURATION="${DURATION:-5s}" THREADS="${THREADS:-2}"
read -r -a EXTRA <<<"${SERVE_ARGS:-}"
need_apt wrk curl
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
declare -A PID URL
TICK_US=$((1000000 / $(getconf CLK_TCK)))
for s in A B; do
  port=$(free_port)
  SKIFF_HOME="$WORK/home-$s" "${!s}" serve "${EXTRA[@]}" --listen "127.0.0.1:$port" "$(eval echo "\$GUEST_$s")" \
    >"$WORK/$s.out" 2>"$WORK/$s.err" &
  PIDS+=($!); PID[$s]=$!; URL[$s]="http://127.0.0.1:$port/"
  until_200 "${URL[$s]}"
  wrk -t"$THREADS" -c"$CONNS" -d1s "${URL[$s]}" >/dev/null # warm-up: pool slots, caches
done
cpu_us() { awk -v u="$TICK_US" '{print ($14 + $15) * u}' "/proc/${PID[$1]}/stat"; }
run() { # one wrk run against $1: prints "µs/request req/s"
  local t0 t1 out n
  t0=$(cpu_us "$1")
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "${URL[$1]}")"
  t1=$(cpu_us "$1")
  grep -q "Non-2xx\|Socket errors" <<<"$out" && echo "serve-ab: errors from $1: $out" >&2
  n="$(awk '/requests in/ {print $1}' <<<"$out")"
  awk -v t=$((t1 - t0)) -v n="$n" -v r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    'BEGIN { printf "%.2f %.0f\n", t / n, r }'
}
echo "A=$A"; echo "B=$B"
echo "guests A $(basename "$GUEST_A") B $(basename "$GUEST_B"), wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= ROUNDS; i++)); do
  if ((i % 2)); then order="A B"; else order="B A"; fi
  for s in $order; do
    read -r cpu rps < <(run "$s")
    echo "$cpu" >>"$WORK/cpu-$s"; echo "$rps" >>"$WORK/rps-$s"
    echo "round $i $s: $cpu µs/request, $rps req/s"
  done
done
ma=$(median <"$WORK/cpu-A") mb=$(median <"$WORK/cpu-B")
echo "median A: $ma µs/request, $(median <"$WORK/rps-A") req/s"
echo "median B: $mb µs/request, $(median <"$WORK/rps-B") req/s"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "B/A CPU per request: %.3f\n", b / a }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

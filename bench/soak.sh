#!/usr/bin/env bash
# Soak: `skiff serve` and one app behind `skiff daemon`, each under wrk at full load for DURATION,
# with the server's RSS sampled every SAMPLE seconds. Passes when wrk saw no error (socket errors
# or non-2xx) and the RSS at the end is within 10% of the RSS after warm-up (the first tenth of the
# run: the pool's warm slots and allocator arenas fill there). Prints one table row per server.
#
#   bench/soak.sh                      10 minutes each, the release build
#   DURATION=60 bench/soak.sh          shorter
#   SMOKE=1 bench/soak.sh              a few seconds each, on the debug build (the test suite)
#
# Not a timed test: it asserts no error and flat memory, never a speed.
source "$(dirname "$0")/lib.sh"
need_apt wrk jq curl
build_skiff_release

DURATION="${DURATION:-600}"; SAMPLE="${SAMPLE:-10}"; CONNS="${CONNS:-64}"
[ "$SMOKE" = 1 ] && { DURATION=4; SAMPLE=1; }
GUEST="$ROOT/guests/wasm/http-hello.wasm"
work=$(mktemp -d /var/tmp/skiff-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# soak NAME PID URL: wrk for DURATION while sampling the RSS of PID; prints the row, returns 1 on
# an error or on growth past 10%.
soak() {
  local name="$1" pid="$2" url="$3" warm=$((DURATION / 10 > 0 ? DURATION / 10 : 1))
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s "$url" > "$work/$name.wrk" 2>&1 &
  local wrk_pid=$! t=0 base="" last=""
  while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep "$SAMPLE"; t=$((t + SAMPLE))
    last=$(rss_kib "$pid")
    [ -z "$base" ] && ((t >= warm)) && base=$last
    echo "$t $last" >> "$work/$name.rss"
  done
  wait "$wrk_pid"
  [ -n "$base" ] || base=$last
  local reqs errors non2xx rps
  reqs=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")
  errors=$(awk '/Socket errors/ {gsub(",",""); s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' "$work/$name.wrk")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/$name.wrk")
  errors=${errors:-0}; non2xx=${non2xx:-0}
  awk -v n="$name" -v d="$DURATION" -v r="$reqs" -v q="$rps" -v e="$errors" -v x="$non2xx" -v b="$base" -v l="$last" \
    'BEGIN { printf "| %s | %d s | %d | %.0f | %d | %d | %.1f MiB | %.1f MiB | %+.1f%% |\n", n, d, r, q, e, x, b/1024, l/1024, (l-b)*100/b }'
  ((errors == 0 && non2xx == 0)) || { echo "$name: wrk saw errors:" >&2; cat "$work/$name.wrk" >&2; return 1; }
  awk -v b="$base" -v l="$last" 'BEGIN { exit !(l <= b * 1.10) }' ||
    { echo "$name: RSS grew past 10% (samples in $work/$name.rss):" >&2; cat "$work/$name.rss" >&2; return 1; }
}

echo "| server | duration | requests | req/s | socket errors | non-2xx | RSS after warm-up | RSS at end | growth |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
failed=0

port=$(free_port)
SKIFF_HOME="$work/serve-home" "$SKIFF" serve --listen "127.0.0.1:$port" "$GUEST" > "$work/serve.log" 2>&1 &
serve_pid=$!; pids+=("$serve_pid")
until_200 "http://127.0.0.1:$port/"
soak "skiff serve" "$serve_pid" "http://127.0.0.1:$port/" || failed=1
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

export SKIFF_HOME="$work/daemon-home"
"$SKIFF" daemon --http-listen 127.0.0.1:0 > "$work/daemon.log" 2>&1 &
dpid=$!; pids+=("$dpid")
sock="$SKIFF_HOME/daemon/skiff.sock"
for _ in $(seq 1000); do curl -fs --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.01; done
http=$(cat "$SKIFF_HOME/daemon/http-addr")
digest=$(curl -fsS --unix-socket "$sock" --data-binary "@$GUEST" http://d/v1/blobs | jq -r .digest)
curl -fs -o /dev/null --unix-socket "$sock" -H 'content-type: application/json' \
  -d "{\"name\":\"soak\",\"spec\":{\"image\":\"$digest\",\"route\":\"/soak\"}}" http://d/v1/workloads
until_200 "http://$http/soak"
soak "skiff daemon app" "$dpid" "http://$http/soak" || failed=1

exit "$failed"

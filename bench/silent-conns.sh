#!/usr/bin/env bash
# Connections that do nothing, against every listener that takes strangers' connections:
# N silent TCP connections (for the TCP API, half of them stopping mid-head) held open against
#   1. `skiff serve` (its default --max-connections is 10,000),
#   2. the daemon's HTTP data plane (one deployed app),
#   3. the daemon's TCP API (256 connections per listener),
# then a normal request to each is timed right away and again 5 s later, once the server has
# accepted every held connection (and, for 3, `skiff ps` over the Unix socket and a
# token holder over TCP), beside the same request with nothing held. Also: how many of the N
# the server had closed (made room at the cap, or head timeout of 10 s), and the server's RSS
# growth per held connection.
#
#   bench/silent-conns.sh            N=10000 (raises `ulimit -n`; the machine's hard limit is 20000)
#   SMOKE=1 bench/silent-conns.sh    N=300, debug build, no waiting for the head timeout (1 s)
# Not a test: it prints numbers, it asserts nothing (but fails if a request fails).
source "$(dirname "$0")/lib.sh"
need_apt curl jq python3
[ -x "$SKIFF" ] || build_skiff_release
N="${N:-10000}"; HOLD_SECS=20
[ "$SMOKE" = 1 ] && { N="${N_SMOKE:-300}"; HOLD_SECS=1; }
# Every held connection is a descriptor for the holder and one for the server.
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > N + 500 )) || { echo "ulimit -n $(ulimit -n) is too low for N=$N" >&2; exit 1; }

work=$(mktemp -d /var/tmp/skiff-bench-silent.XXXXXX)
pids=()
cleanup() {
  exec 7>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Connections the kernel dropped because a listen queue was full (machine-wide counter): the
# holder counts them as connected, but the server never saw them, so it cannot close them.
overflows() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (k[i] == "ListenOverflows") print $i } }' /proc/net/netstat; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# "status seconds" of one request; extra curl args first, URL last.
timed() { curl -s -o /dev/null -m 60 -w '%{http_code} %{time_total}' "$@" || true; }

# Hold N connections to $2 (extra args to silent_conns.py after it), the holder's stdin on fd 7;
# prints "$1: holding N: <its JSON line>". Not in a subshell: fd 7 must stay open.
hold() {
  local what="$1"; shift
  rm -f "$work/in" "$work/held" && mkfifo "$work/in"
  python3 "$BENCH_DIR/silent_conns.py" "$@" < "$work/in" > "$work/held" &
  holder=$!; pids+=("$holder"); over0=$(overflows)
  exec 7>"$work/in"
  until [ -s "$work/held" ]; do sleep 0.1; done
  echo "$what: holding $N: $(head -1 "$work/held")"
}
# Wait HOLD_SECS more (past the head timeout), let the holder go, print how many the server closed.
release() {
  sleep "$HOLD_SECS"
  exec 7>&-
  wait "$holder" || true
  echo "$1: $(tail -1 "$work/held"), listen-queue overflows meanwhile: $(( $(overflows) - over0 ))"
}

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }

# 1. skiff serve, default limits.
"$SKIFF" serve --listen 127.0.0.1:0 "$ROOT/guests/wasm/http-hello.wasm" > "$work/serve.out" 2> "$work/serve.err" &
spid=$!; pids+=("$spid")
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.05; done
saddr=$(sed -n 's|^listening on http://||p' "$work/serve.out")
base=$(timed "http://$saddr/"); rss0=$(rss_kib "$spid")
hold "skiff serve" "$saddr" "$N"
under=$(timed "http://$saddr/"); sleep 5; later=$(timed "http://$saddr/"); rss1=$(rss_kib "$spid")
release "skiff serve"
row "skiff serve, GET /" "$base" "$under" "$later" "$(( (rss1 - rss0) * 1024 / N )) B"

# 2 and 3. The daemon: data plane and TCP API.
export SKIFF_HOME="$work/home"
"$SKIFF" daemon --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 > "$work/daemon.log" 2>&1 &
dpid=$!; pids+=("$dpid")
sock="$SKIFF_HOME/daemon/skiff.sock"
for _ in $(seq 1000); do curl -fs --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.01; done
http=$(cat "$SKIFF_HOME/daemon/http-addr"); api=$(cat "$SKIFF_HOME/daemon/api-addr")
token=$(cat "$SKIFF_HOME/daemon/token")
digest=$(curl -fsS --unix-socket "$sock" --data-binary "@$ROOT/guests/wasm/http-hello.wasm" http://d/v1/blobs | jq -r .digest)
curl -fsS -o /dev/null --unix-socket "$sock" -H 'content-type: application/json' \
  -d "{\"name\":\"hello\",\"spec\":{\"image\":\"$digest\",\"route\":\"/\"}}" http://d/v1/workloads
until_200 "http://$http/"
base=$(timed "http://$http/"); rss0=$(rss_kib "$dpid")
hold "daemon data plane" "$http" "$N"
under=$(timed "http://$http/"); sleep 5; later=$(timed "http://$http/"); rss1=$(rss_kib "$dpid")
release "daemon data plane"
row "daemon data plane, GET /" "$base" "$under" "$later" "$(( (rss1 - rss0) * 1024 / N )) B"

ps_ms() { local t0; t0=$(now_us); "$SKIFF" ps >/dev/null && echo "ok $(( ($(now_us) - t0) / 1000 )) ms"; }
auth=(-H "Authorization: Bearer $token")
base_tcp=$(timed "${auth[@]}" "http://$api/v1/workloads"); base_ps=$(ps_ms)
hold "daemon TCP API" "$api" "$N" --partial
under_tcp=$(timed "${auth[@]}" "http://$api/v1/workloads"); under_ps=$(ps_ms)
sleep 5
later_tcp=$(timed "${auth[@]}" "http://$api/v1/workloads"); later_ps=$(ps_ms)
later_stranger=$(timed "http://$api/v1/workloads")
release "daemon TCP API"
row "daemon TCP API, token holder" "$base_tcp" "$under_tcp" "$later_tcp" "-"
row "daemon Unix socket, skiff ps" "$base_ps" "$under_ps" "$later_ps" "-"
row "daemon TCP API, no token (401 expected)" "-" "-" "$later_stranger" "-"

echo
echo "| N=$N connections held | nothing held: status s | held, at once | held, 5 s later | RSS per held conn |"
echo "| --- | --- | --- | --- | ---: |"
printf '%s\n' "${rows[@]}"

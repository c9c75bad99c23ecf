#!/usr/bin/env bash
# Footprint (issue 18, item 5): the size of the skiff binary as built, the resident memory of an
# idle daemon, and of `skiff serve` with one app (default pool, and --max-concurrent 2), each
# after the first request so that everything a request touches is counted. Each RSS is given
# whole and split: private (anonymous: what this process alone costs) and file-backed (pages of
# the skiff binary the kernel mapped, shared by every skiff process on the node and reclaimable).
#
#   bench/footprint.sh            SKIFF=... to measure another build
# Not a test: it prints numbers, it asserts nothing.
source "$(dirname "$0")/lib.sh"
need_apt jq curl
[ -x "$SKIFF" ] || build_skiff_release

work=$(mktemp -d /var/tmp/skiff-bench-footprint.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# "rss anon file" in KiB
rss_split() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print r, a, f}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
hello="$ROOT/guests/wasm/http-hello.wasm"
export SKIFF_HOME="$work/home"

bytes=$(stat -c %s "$SKIFF")
text=$(size -A "$SKIFF" | awk '$1 == ".text" {print $2}')
debug=$(size -A "$SKIFF" | awk '$1 ~ /^\.debug/ {s += $2} END {print s + 0}')

# Warm the compile cache: no measured process holds Cranelift's compile-time memory. `serve`
# compiles for its pooling engine, whose cache key differs from `run`'s: warming with `run` (as
# this script did until 2026-12-07) left the first measured serve compiling, and its 28.5 MiB were
# read as the pool's cost. One throw-away serve warms the right entry.
"$SKIFF" run "$hello" >/dev/null 2>&1 || true

serve_rss() { # serve args...; prints "rss anon file" in KiB after one request
  # Emptied here, not by the background command's redirect: the wait below would otherwise
  # read the previous serve's "listening on".
  : >"$work/serve.out"
  "$SKIFF" serve --listen 127.0.0.1:0 "$@" > "$work/serve.out" 2> "$work/serve.err" &
  pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$work/serve.out" && break; sleep 0.05; done
  local url; url=$(awk '/listening on/ {print $3; exit}' "$work/serve.out")
  [ -n "$url" ] || { cat "$work/serve.err" >&2; kill "$pid" 2>/dev/null; exit 1; }
  curl -fs "$url/" >/dev/null
  sleep 0.5
  rss_split "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
serve_rss "$hello" >/dev/null
read -r serve_default serve_anon serve_file < <(serve_rss "$hello")
read -r serve_two _ _ < <(serve_rss --max-concurrent 2 "$hello")

"$SKIFF" daemon --http-listen 127.0.0.1:0 > "$work/daemon.log" 2>&1 &
pid=$!
sock="$SKIFF_HOME/daemon/skiff.sock"
for _ in $(seq 1000); do curl -fs --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.01; done
sleep 1
read -r daemon daemon_anon daemon_file < <(rss_split "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

echo "| what | figure | target |"
echo "| --- | ---: | ---: |"
awk -v b="$bytes" 'BEGIN { printf "| skiff binary (%s) | %.1f MB |", "as built", b / 1e6 }'; echo " ≤ 30 MB |"
awk -v t="$text" -v d="$debug" 'BEGIN { printf "| of which .text / debug sections | %.1f MB / %.1f MB | |\n", t / 1e6, d / 1e6 }'
echo "| idle daemon, data plane on, RSS | $(mib "$daemon") MiB | ≤ 20 MiB |"
echo "| of which private / file-backed (the binary's pages, shared) | $(mib "$daemon_anon") / $(mib "$daemon_file") MiB | |"
echo "| skiff serve, one app, after one request, RSS | $(mib "$serve_default") MiB | ≤ 12 MiB |"
echo "| of which private / file-backed (the binary's pages, shared) | $(mib "$serve_anon") / $(mib "$serve_file") MiB | |"
echo "| the same with --max-concurrent 2 | $(mib "$serve_two") MiB | |"
mkdir -p "$RESULTS"
jq -n --argjson b "$bytes" --argjson t "$text" --argjson d "$debug" --argjson dm "$daemon" \
  --argjson s "$serve_default" --argjson s2 "$serve_two" --argjson sa "$serve_anon" --argjson sf "$serve_file" \
  --argjson da "$daemon_anon" --argjson df "$daemon_file" \
  '{scenario: "footprint", date: (now | todate), binary_bytes: $b, text_bytes: $t, debug_bytes: $d,
    daemon_idle_rss_kib: $dm, daemon_idle_anon_kib: $da, daemon_idle_file_kib: $df,
    serve_one_app_rss_kib: $s, serve_one_app_anon_kib: $sa, serve_one_app_file_kib: $sf,
    serve_one_app_max_concurrent_2_rss_kib: $s2}' \
  > "$RESULTS/footprint.json"

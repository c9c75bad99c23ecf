#!/usr/bin/env bash
# Memory: one skiff serve process holding 1, 100 and 1,000 hello apps (each on its own route)
# vs one runc container of busybox httpd per app (1 and 100; 1,000 with FULL=1). RSS is summed
# over every process a side needs (for runc: every httpd; runc itself exits after `run -d`).
# Usage: bench/density.sh      (SMOKE=1: 1 and 10 apps only)
source "$(dirname "$0")/lib.sh"
need_apt runc busybox-static jq curl
[ -x "$SKIFF" ] || build_skiff_release

work=$(mktemp -d /var/tmp/skiff-bench-density.XXXXXX)
ids=()
cleanup() {
  for id in "${ids[@]}"; do runc kill "$id" KILL 2>/dev/null; runc delete -f "$id" 2>/dev/null; done
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
counts="1 100 1000"; runc_counts="1 100"
[ "${FULL:-0}" = 1 ] && runc_counts="1 100 1000"
[ "$SMOKE" = 1 ] && { counts="1 10"; runc_counts="1 10"; }
hello="$ROOT/guests/wasm/http-hello.wasm"

# Warm the compile cache first, so no measured process holds Cranelift's compile-time memory.
SKIFF_HOME="$work/home" "$SKIFF" run "$hello" >/dev/null 2>&1 || true
SKIFF_HOME="$work/home" "$SKIFF" serve --listen 127.0.0.1:0 "$hello" > "$work/warm.out" 2>&1 &
warm=$!; for _ in $(seq 600); do grep -q "listening on" "$work/warm.out" && break; sleep 0.05; done
kill "$warm"; wait "$warm" 2>/dev/null || true

echo "| apps | skiff serve RSS MiB | MiB per app |"
echo "| ---: | ---: | ---: |"
declare -A SK
for n in $counts; do
  specs=(); for i in $(seq 1 "$n"); do specs+=("a$i=$hello@/a$i"); done
  SKIFF_HOME="$work/home" "$SKIFF" serve --listen 127.0.0.1:0 --max-concurrent 2 "${specs[@]}" \
    > "$work/serve.out" 2> "$work/serve.err" &
  serve_pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$work/serve.out" && break; sleep 0.05; done
  url=$(awk '/listening on/ {print $3; exit}' "$work/serve.out")
  [ -n "$url" ] || { cat "$work/serve.err" >&2; exit 1; }
  curl -fs "$url/a$n" >/dev/null          # one request to the last app: everything is live
  kib=$(rss_kib "$serve_pid"); SK[$n]=$kib
  awk -v n="$n" -v k="$kib" 'BEGIN { printf "| %d | %.1f | %.3f |\n", n, k/1024, k/1024/n }'
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
done

echo
echo "| containers | runc busybox httpd RSS MiB (sum) | MiB per container |"
echo "| ---: | ---: | ---: |"
declare -A RC
for n in $runc_counts; do
  for i in $(seq 1 "$n"); do
    b="$work/b$i"; port=$((20000 + i))
    make_busybox_bundle "$b" /bin/httpd -f -p "127.0.0.1:$port" -h / >/dev/null
    runc run -d -b "$b" "skiff-density-$i" >/dev/null 2>&1 </dev/null
    ids+=("skiff-density-$i")
  done
  total=0
  for id in "${ids[@]}"; do
    pid=$(runc state "$id" | jq .pid); total=$((total + $(rss_kib "$pid")))
  done
  RC[$n]=$total
  awk -v n="$n" -v k="$total" 'BEGIN { printf "| %d | %.1f | %.3f |\n", n, k/1024, k/1024/n }'
  for id in "${ids[@]}"; do runc kill "$id" KILL 2>/dev/null; runc delete -f "$id" 2>/dev/null; done
  ids=()
done
mkdir -p "$RESULTS"
{ echo "{"; echo "\"scenario\":\"density\",\"date\":\"$(date -u +%FT%TZ)\","
  echo "\"skiff_rss_kib\":{$(for n in $counts; do printf '"%s":%s,' "$n" "${SK[$n]}"; done | sed 's/,$//')},"
  echo "\"runc_rss_kib\":{$(for n in $runc_counts; do printf '"%s":%s,' "$n" "${RC[$n]}"; done | sed 's/,$//')}"
  echo "}"; } > "$RESULTS/density.json"

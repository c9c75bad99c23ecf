#!/usr/bin/env bash
# Start to first HTTP 200: `skiff serve` of the hello component (compile cache warm) vs `runc run`
# of busybox httpd, each started and polled with curl until it answers, N times, medians.
source "$(dirname "$0")/lib.sh"
need_apt runc busybox-static jq curl
[ -x "$SKIFF" ] || build_skiff_release
work=$(mktemp -d /var/tmp/skiff-bench-first200.XXXXXX)
trap 'runc delete -f skiff-first200 2>/dev/null; rm -rf "$work"' EXIT
export SKIFF_HOME="$work/home"
hello="$ROOT/guests/wasm/http-hello.wasm"
n=20; [ "$SMOKE" = 1 ] && n=2
port=$(free_port)
make_busybox_bundle "$work/bundle" /bin/httpd -f -p "127.0.0.1:$port" -h /bin

# Warm-up: the first serve compiles the component into the cache; every measured start is warm.
"$SKIFF" serve --listen "127.0.0.1:$port" "$hello" >/dev/null 2>&1 &
pid=$!; until_200 "http://127.0.0.1:$port/"; kill "$pid"; wait "$pid" 2>/dev/null || true

: > "$work/skiff.txt"; : > "$work/runc.txt"
for _ in $(seq "$n"); do
  t0=$(now_us)
  "$SKIFF" serve --listen "127.0.0.1:$port" "$hello" >/dev/null 2>&1 &
  pid=$!
  until_200 "http://127.0.0.1:$port/"
  echo $(( $(now_us) - t0 )) >> "$work/skiff.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true

  runc_httpd_first200_us "$work/bundle" skiff-first200 "http://127.0.0.1:$port/busybox" >> "$work/runc.txt"
done
s=$(median < "$work/skiff.txt"); r=$(median < "$work/runc.txt")
echo "| server | start to first 200, median ms (n=$n) |"
echo "| --- | ---: |"
awk -v s="$s" -v r="$r" 'BEGIN { printf "| skiff serve | %.2f |\n| runc + busybox httpd | %.2f |\n\nskiff / runc: %.3f\n", s/1000, r/1000, s/r }'
mkdir -p "$RESULTS"
printf '{"scenario":"first-200","date":"%s","n":%s,"skiff_median_us":%s,"runc_median_us":%s}\n' \
  "$(date -u +%FT%TZ)" "$n" "$s" "$r" > "$RESULTS/first200.json"

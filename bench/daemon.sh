#!/usr/bin/env bash
# The daemon's scenarios, each beside a container peer measured in the same run:
#  1. deploy to first 200: a new app (new name and route, image already uploaded, daemon up)
#     from POST /v1/workloads to the first 200 on its route; vs `runc run -d` of busybox httpd
#     to its first 200 (the helper bench/first200.sh uses). skiff is timed twice: with curl
#     (one curl for the deploy, curl polling the route: the same method as the runc side) and
#     from the in-process driver (bench/daemon_driver.py: no process per request).
#  2. run-to-completion tasks per second through the API (create, then wait; a task counts when
#     the API reports exit code 0), C clients at once; vs `runc run` of busybox /bin/true, C at
#     once.
#  3. density: N hello apps deployed on one fresh daemon: its RSS, and the first request of
#     random never-requested apps (scale to zero: they hold no code until then); vs the RSS of
#     busybox httpd containers, per container.
#     The first request of all loads the binary's code and is reported apart.
#  4. the data plane: requests per second of one deployed app under wrk (64 connections), beside
#     the same binary under `skiff serve`.
#  5. CPU fairness: one deployed app under wrk alone, then with two busy-loop tasks
#     (guests/wasm/loop.wasm) running beside it in the same daemon; the ratio of the two
#     (target >= 0.8). No container peer: runc containers are separate processes the kernel
#     already shares fairly.
# Usage: bench/daemon.sh    (SMOKE=1: a few of each; DEPLOYS, TASKS, CONC, APPS override;
#        ONLY=fairness: scenario 5 alone, on a fresh daemon, results in $RESULTS/fairness.json;
#        ONLY=data-plane: scenario 4 alone, on a fresh daemon)
source "$(dirname "$0")/lib.sh"
need_apt runc busybox-static jq curl wrk
[ -x "$SKIFF" ] || build_skiff_release

DEPLOYS="${DEPLOYS:-50}"; TASKS="${TASKS:-5000}"; CONC="${CONC:-64}"; APPS="${APPS:-10000}"; WRK_SECS=10s
RUNC_STARTS=20; RUNC_TASKS=200; RUNC_DENSITY=10; LOADED=1000
if [ "$SMOKE" = 1 ]; then
  DEPLOYS=3; TASKS=20; CONC=4; APPS=20; RUNC_STARTS=1; RUNC_TASKS=4; RUNC_DENSITY=1; LOADED=5; WRK_SECS=1s
fi
work=$(mktemp -d /var/tmp/skiff-bench-daemon.XXXXXX)
ids=(); dpid=
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null
  for id in "${ids[@]}"; do runc kill "$id" KILL 2>/dev/null; runc delete -f "$id" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
driver() { python3 "$BENCH_DIR/daemon_driver.py" "$@"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A fresh daemon with a data plane, on home $1; sets dpid, sock, http.
start_daemon() {
  export SKIFF_HOME="$1"
  [ -n "$dpid" ] && { kill "$dpid"; wait "$dpid" 2>/dev/null || true; }
  "$SKIFF" daemon --http-listen 127.0.0.1:0 > "$work/daemon.log" 2>&1 &
  dpid=$!
  sock="$SKIFF_HOME/daemon/skiff.sock"
  for _ in $(seq 1000); do curl -fs --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.01; done
  http=$(cat "$SKIFF_HOME/daemon/http-addr")
}
upload() { curl -fsS --unix-socket "$sock" --data-binary "@$1" http://d/v1/blobs | jq -r .digest; }

wrk_rps() { wrk -t2 -c64 -d"$WRK_SECS" "$1" | awk '/Requests\/sec/ {print $2}'; }
api() { curl -fsS --unix-socket "$sock" -H 'content-type: application/json' "$@"; }

# 5. CPU fairness: an app under wrk, alone and beside two looping tasks.
fairness() {
  local app loop alone busy
  app=$(upload "$ROOT/guests/wasm/http-hello.wasm")
  loop=$(upload "$ROOT/guests/wasm/loop.wasm")
  api -o /dev/null -d "{\"name\":\"fair\",\"spec\":{\"image\":\"$app\",\"route\":\"/fair\"}}" http://d/v1/workloads
  until_200 "http://$http/fair"
  wrk -t2 -c64 -d1s "http://$http/fair" >/dev/null   # warm-up
  alone=$(wrk_rps "http://$http/fair")
  for i in 1 2; do
    api -o /dev/null -d "{\"name\":\"loop$i\",\"spec\":{\"image\":\"$loop\"}}" http://d/v1/workloads
  done
  sleep 1
  [ "$(api http://d/v1/workloads | jq '[.[] | select(.name|startswith("loop")) | select(.state.status=="running")] | length')" = 2 ] ||
    { echo "fairness: the loop tasks are not running" >&2; exit 1; }
  busy=$(wrk_rps "http://$http/fair")
  api -o /dev/null -X POST "http://d/v1/workloads/loop1/stop" || true
  api -o /dev/null -X POST "http://d/v1/workloads/loop2/stop" || true
  echo
  echo "| one HTTP app, wrk -t2 -c64 -d$WRK_SECS | req/s |"
  echo "| --- | ---: |"
  echo "| alone | $alone |"
  echo "| beside two busy-loop tasks | $busy |"
  awk -v a="$alone" -v b="$busy" 'BEGIN { printf "\nbeside two loops / alone: %.2f (target >= 0.8)\n", b/a }'
  mkdir -p "$RESULTS"
  jq -n --arg date "$(date -u +%FT%TZ)" --argjson alone "$alone" --argjson busy "$busy" \
    '{scenario:"daemon-fairness", date:$date, alone_rps:$alone, beside_two_loops_rps:$busy, ratio:($busy/$alone)}' \
    > "$RESULTS/fairness.json"
}

# 4. The data plane: one deployed app under wrk, beside the same binary under `skiff serve`.
data_plane() {
  local digest
  digest=$(upload "$ROOT/guests/wasm/http-hello.wasm")
  curl -fs -o /dev/null --unix-socket "$sock" -H 'content-type: application/json' \
    -d "{\"name\":\"wrk\",\"spec\":{\"image\":\"$digest\",\"route\":\"/wrk\"}}" http://d/v1/workloads
  until_200 "http://$http/wrk"
  daemon_rps=$(wrk_rps "http://$http/wrk")
  serve_port=$(free_port)
  "$SKIFF" serve --listen "127.0.0.1:$serve_port" "$ROOT/guests/wasm/http-hello.wasm" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  until_200 "http://127.0.0.1:$serve_port/"
  serve_rps=$(wrk_rps "http://127.0.0.1:$serve_port/")
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  echo
  echo "| one HTTP app, wrk -t2 -c64 -d$WRK_SECS | req/s |"
  echo "| --- | ---: |"
  echo "| skiff daemon (data plane) | $daemon_rps |"
  echo "| skiff serve, same binary | $serve_rps |"
  awk -v d="$daemon_rps" -v s="$serve_rps" 'BEGIN { printf "\ndaemon / serve req/s: %.2f (target >= 0.9)\n", d/s }'
}

if [ "${ONLY:-}" = fairness ]; then
  start_daemon "$work/home"
  fairness
  exit 0
fi
if [ "${ONLY:-}" = data-plane ]; then
  start_daemon "$work/home"
  data_plane
  exit 0
fi

start_daemon "$work/home"
app_digest=$(upload "$ROOT/guests/wasm/http-hello.wasm")
task_digest=$(upload "$ROOT/guests/wasm/hello.wasm")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Deploy to first 200.
read -r drv_med drv_min drv_max < <(driver deploy --sock "$sock" --http "$http" --digest "$app_digest" --n "$DEPLOYS" \
  | jq -r '"\(.median_us) \(.min_us) \(.max_us)"')
: > "$work/curl.txt"
for i in $(seq 0 "$DEPLOYS"); do
  body=$(printf '{"name":"c%s","spec":{"image":"%s","route":"/c%s"}}' "$i" "$app_digest" "$i")
  t0=$(now_us)
  curl -fs -o /dev/null --unix-socket "$sock" -H 'content-type: application/json' -d "$body" http://d/v1/workloads
  until_200 "http://$http/c$i"
  t=$(( $(now_us) - t0 )); [ "$i" = 0 ] || echo "$t" >> "$work/curl.txt"   # the first is a warm-up
done
read -r curl_med curl_min curl_max < <(stats < "$work/curl.txt")
port=$(free_port)
make_busybox_bundle "$work/httpd" /bin/httpd -f -p "127.0.0.1:$port" -h /bin
: > "$work/runc.txt"
for i in $(seq "$RUNC_STARTS"); do
  ids=(skiff-bench-d200)
  runc_httpd_first200_us "$work/httpd" skiff-bench-d200 "http://127.0.0.1:$port/busybox" >> "$work/runc.txt"
done
ids=()
read -r runc_med runc_min runc_max < <(stats < "$work/runc.txt")
echo
echo "| deploy to first 200 (n=$DEPLOYS; runc n=$RUNC_STARTS) | median ms | min ms | max ms |"
echo "| --- | ---: | ---: | ---: |"
awk -v a="$drv_med" -v b="$drv_min" -v c="$drv_max" 'BEGIN { printf "| skiff daemon, in-process driver | %.2f | %.2f | %.2f |\n", a/1000, b/1000, c/1000 }'
awk -v a="$curl_med" -v b="$curl_min" -v c="$curl_max" 'BEGIN { printf "| skiff daemon, curl | %.2f | %.2f | %.2f |\n", a/1000, b/1000, c/1000 }'
awk -v a="$runc_med" -v b="$runc_min" -v c="$runc_max" 'BEGIN { printf "| runc + busybox httpd, curl | %.2f | %.2f | %.2f |\n", a/1000, b/1000, c/1000 }'
awk -v s="$curl_med" -v r="$runc_med" -v d="$drv_med" 'BEGIN { printf "\nskiff / runc (both with curl): %.3f; in-process deploy to 200: %.2f ms (target <= 5 ms)\n", s/r, d/1000 }'

# 2. Tasks per second.
tasks_json=$(driver tasks --sock "$sock" --digest "$task_digest" --n "$TASKS" -c "$CONC")
make_busybox_bundle "$work/true" /bin/true
t0=$(now_us)
seq "$RUNC_TASKS" | xargs -P "$CONC" -I{} sh -c "runc run -b '$work/true' skiff-bench-task-{} >/dev/null 2>&1 </dev/null"
runc_secs=$(awk -v t="$(( $(now_us) - t0 ))" 'BEGIN { print t/1e6 }')
skiff_tps=$(jq .per_sec <<< "$tasks_json")
runc_tps=$(awk -v n="$RUNC_TASKS" -v s="$runc_secs" 'BEGIN { print n/s }')
echo
echo "| run-to-completion tasks, $CONC at once | tasks | ok | tasks/s | median latency ms |"
echo "| --- | ---: | ---: | ---: | ---: |"
jq -r '"| skiff daemon API (create + wait), hello.wasm | \(.n) | \(.ok) | \(.per_sec | round) | \(.latency_median_us / 1000 * 100 | round / 100) |"' <<< "$tasks_json"
awk -v n="$RUNC_TASKS" -v t="$runc_tps" 'BEGIN { printf "| runc run, busybox /bin/true | %d | %d | %.0f | |\n", n, n, t }'
awk -v s="$skiff_tps" -v r="$runc_tps" 'BEGIN { printf "\nskiff / runc tasks/s: %.2f (target >= 1000/s; runwasi publishes 330/s)\n", s/r }'
[ "$(jq .failed <<< "$tasks_json")" = 0 ] || { echo "tasks failed: $tasks_json" >&2; exit 1; }

data_plane
fairness

# 3. Density, on a fresh daemon.
start_daemon "$work/home2"
app_digest=$(upload "$ROOT/guests/wasm/http-hello.wasm")
base_kib=$(rss_kib "$dpid")
density_json=$(driver density --sock "$sock" --http "$http" --digest "$app_digest" --n "$APPS" -c 16 --sample 20)
sampled_kib=$(rss_kib "$dpid")
driver load --sock "$sock" --http "$http" --n "$LOADED" >/dev/null
loaded_kib=$(rss_kib "$dpid")
: > "$work/runc-rss.txt"
for i in $(seq "$RUNC_DENSITY"); do
  p=$(free_port); b="$work/dens$i"
  make_busybox_bundle "$b" /bin/httpd -f -p "127.0.0.1:$p" -h / >/dev/null
  runc run -d -b "$b" "skiff-bench-dens-$i" >/dev/null 2>&1 </dev/null
  ids+=("skiff-bench-dens-$i")
  rss_kib "$(runc state "skiff-bench-dens-$i" | jq .pid)" >> "$work/runc-rss.txt"
done
runc_kib=$(awk '{s+=$1} END {print s/NR}' "$work/runc-rss.txt")
echo
echo "| density | value |"
echo "| --- | ---: |"
awk -v k="$base_kib" 'BEGIN { printf "| daemon RSS, no apps | %.1f MiB |\n", k/1024 }'
awk -v k="$sampled_kib" -v n="$APPS" 'BEGIN { printf "| daemon RSS, %d apps deployed (21 of them requested) | %.1f MiB |\n", n, k/1024 }'
awk -v k="$sampled_kib" -v b="$base_kib" -v n="$APPS" 'BEGIN { printf "| per deployed app | %.1f KiB |\n", (k-b)/n }'
awk -v k="$loaded_kib" -v n="$LOADED" 'BEGIN { printf "| daemon RSS, %d of them requested (loaded) | %.1f MiB |\n", n, k/1024 }'
awk -v k="$loaded_kib" -v s="$sampled_kib" -v n="$LOADED" 'BEGIN { printf "| per loaded app (beyond deployed) | %.1f KiB |\n", (k-s)/n }'
awk -v k="$runc_kib" -v n="$RUNC_DENSITY" 'BEGIN { printf "| runc busybox httpd, RSS per container (n=%d) | %.1f KiB |\n", n, k }'
jq -r '"| first request of the first app (loads the binary from the compile cache) | \(.first_app_of_the_binary_us/1000*100|round/100) ms |"' <<< "$density_json"
jq -r '"| first request of a random never-requested app, median / max (n=\(.n)) | \(.median_us/1000*100|round/100) / \(.max_us/1000*100|round/100) ms |"' <<< "$density_json"
jq -r '"| deploying them (16 clients) | \(.deploy_seconds*10|round/10) s |"' <<< "$density_json"
awk -v k="$sampled_kib" -v b="$base_kib" -v n="$APPS" -v r="$runc_kib" 'BEGIN { printf "\nskiff per deployed app / runc per container (RSS): %.3f; target: %d apps in <= 1024 MiB, first request <= 10 ms\n", (k-b)/n/r, n }'
first_cold=$(jq .median_us <<< "$density_json")
awk -v s="$first_cold" -v r="$runc_med" 'BEGIN { printf "cold app first request / runc start to first 200: %.3f\n", s/r }'

mkdir -p "$RESULTS"
jq -n --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson deploy "{\"n\":$DEPLOYS,\"driver_median_us\":$drv_med,\"driver_min_us\":$drv_min,\"driver_max_us\":$drv_max,\"curl_median_us\":$curl_med,\"curl_min_us\":$curl_min,\"curl_max_us\":$curl_max,\"runc_n\":$RUNC_STARTS,\"runc_median_us\":$runc_med,\"runc_min_us\":$runc_min,\"runc_max_us\":$runc_max}" \
  --argjson tasks "$tasks_json" --argjson runc_tps "$runc_tps" --argjson runc_tasks "$RUNC_TASKS" \
  --argjson density "$density_json" \
  --argjson data_plane "{\"daemon_rps\":$daemon_rps,\"serve_rps\":$serve_rps}" \
  --argjson rss "{\"base_kib\":$base_kib,\"deployed_kib\":$sampled_kib,\"loaded\":$LOADED,\"loaded_kib\":$loaded_kib,\"runc_per_container_kib\":$runc_kib}" \
  '{scenario:"daemon", date:$date, load_after:$load, deploy_to_first_200:$deploy,
    tasks:($tasks + {runc_tasks:$runc_tasks, runc_per_sec:$runc_tps}), density:($density + $rss),
    data_plane:$data_plane}' \
  > "$RESULTS/daemon.json"

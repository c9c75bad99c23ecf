#!/usr/bin/env bash
# Docker, on one private dockerd (Debian's 20.10: its own data-root, exec-root, socket and
# network namespace, where its default bridge and iptables rules live; vfs), in one run:
# - `docker run --rm --runtime skiff` of a skiff hello (skiff-oci) against `docker run --rm` of
#   busybox /bin/true under runc, both --network none;
# - served: from `docker run -d -p 127.0.0.1:18080:8080` to the first HTTP 200 through Docker's
#   port mapping, a wasi:http component (skiff-oci, on its default port) against busybox httpd
#   under runc, both on the default bridge.
#
#   bench/docker.sh              build skiff-oci (release) and measure
#   SKIFF_OCI=/path/to/skiff-oci bench/docker.sh   use that binary
#   RUNS=50 bench/docker.sh      more runs (default 30)
#   SMOKE=1 bench/docker.sh      two runs of each on the debug build (the test suite)
#
# Needs root, docker.io, runc, busybox-static, hyperfine, jq (installed if missing).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUNS="${RUNS:-30}"
[ "$SMOKE" = 1 ] && RUNS=2
need_apt docker.io runc busybox-static hyperfine jq curl

profile=release; [ "$SMOKE" = 1 ] && profile=debug
cargo_profile=(); [ "$profile" = release ] && cargo_profile=(--release)
if [ -z "${SKIFF_OCI:-}" ]; then
  SKIFF_OCI="$CARGO_TARGET_DIR/$profile/skiff-oci"
  [ -x "$SKIFF_OCI" ] && [ "$SMOKE" = 1 ] || cargo build "${cargo_profile[@]}" -q --workspace --bin skiff-oci
fi

W="$(mktemp -d /tmp/skiff-bench-docker.XXXXXX)"
cleanup() {
  [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
  umount -R "$W/exec" "$W/data" 2>/dev/null || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT

jq -n --arg w "$W" --arg oci "$SKIFF_OCI" '{
  "data-root": "\($w)/data", "exec-root": "\($w)/exec", pidfile: "\($w)/docker.pid",
  hosts: ["unix://\($w)/docker.sock"], "containerd-namespace": "bench",
  "containerd-plugins-namespace": "bench-plugins", "storage-driver": "vfs",
  runtimes: {skiff: {path: $oci}}}' >"$W/daemon.json"
# A network namespace of its own (loopback up): its bridge, NAT rules and port mappings stay in
# it. DPID is dockerd's pid (unshare and sh exec it).
SKIFF_HOME="$W/skiff-home" unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' \
  dockerd --config-file "$W/daemon.json" >"$W/dockerd.log" 2>&1 &
DPID=$!
DOCKER=(/usr/bin/docker -H "unix://$W/docker.sock")
for _ in $(seq 500); do "${DOCKER[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done

# The images from `docker import`: rootfses holding hello.wasm, http-hello.wasm, and static
# busybox (with httpd and a page to serve).
mkdir -p "$W/hello" "$W/web" "$W/bb/bin" "$W/bb/www"
cp guests/wasm/hello.wasm "$W/hello/app.wasm"
cp guests/wasm/http-hello.wasm "$W/web/app.wasm"
cp "$(command -v busybox)" "$W/bb/bin/busybox"; ln -s busybox "$W/bb/bin/true"; ln -s busybox "$W/bb/bin/httpd"
echo "hello from busybox" >"$W/bb/www/index.html"
tar -C "$W/hello" -c . | "${DOCKER[@]}" import --change 'ENTRYPOINT ["/app.wasm"]' - bench/hello:1 >/dev/null
tar -C "$W/web" -c . | "${DOCKER[@]}" import --change 'ENTRYPOINT ["/app.wasm"]' - bench/web:1 >/dev/null
tar -C "$W/bb" -c . | "${DOCKER[@]}" import - bench/busybox:1 >/dev/null

# Warm the compile cache once, as any host that has run the image before would be.
"${DOCKER[@]}" run --rm --runtime skiff --network none bench/hello:1 >/dev/null
"${DOCKER[@]}" run -d --name web --runtime skiff bench/web:1 >/dev/null
for _ in $(seq 600); do "${DOCKER[@]}" logs web 2>&1 | grep -q listening && break; sleep 0.05; done
"${DOCKER[@]}" rm -f web >/dev/null

echo "== docker run --rm: skiff-oci hello vs runc /bin/true"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" \
  -n "skiff-oci: hello.wasm" "${DOCKER[*]} run --rm --runtime skiff --network none bench/hello:1" \
  -n "runc: busybox /bin/true" "${DOCKER[*]} run --rm --network none bench/busybox:1 /bin/true"

jq -r '.results as $r | "median: skiff-oci \($r[0].median*1000|floor) ms, runc \($r[1].median*1000|floor) ms; skiff/runc = \(($r[0].median/$r[1].median*100|floor)/100)"' "$W/result.json"

# Start to the first 200 through Docker's port mapping: run -d, then curl (inside dockerd's
# network namespace, where the mapping listens) until it answers; at most 30 s.
D="${DOCKER[*]}"
first_200='timeout 30 sh -c "until nsenter --net=/proc/'"$DPID"'/ns/net curl -sf -o /dev/null http://127.0.0.1:18080/; do :; done"'
echo "== docker run -d -p, to the first HTTP 200: skiff-oci http-hello vs runc busybox httpd"
hyperfine --warmup 2 --runs "$RUNS" --export-json "$W/served.json" \
  --prepare "$D rm -f web >/dev/null 2>&1 || true" --cleanup "$D rm -f web >/dev/null 2>&1 || true" \
  -n "skiff-oci: http-hello.wasm" "$D run -d --name web --runtime skiff -p 127.0.0.1:18080:8080 bench/web:1 >/dev/null && $first_200" \
  -n "runc: busybox httpd" "$D run -d --name web -p 127.0.0.1:18080:8080 bench/busybox:1 /bin/httpd -f -p 8080 -h /www >/dev/null && $first_200"
jq -r '.results as $r | "median: skiff-oci \($r[0].median*1000|floor) ms, runc \($r[1].median*1000|floor) ms; skiff/runc = \(($r[0].median/$r[1].median*100|floor)/100)"' "$W/served.json"

mkdir -p "$RESULTS"
jq -n --slurpfile h "$W/result.json" --slurpfile s "$W/served.json" --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg docker "$(dockerd --version)" \
  '{scenario:"docker",date:$date,loadavg:$load,dockerd:$docker,
    docker_run_rm:{skiff_oci_median_s:$h[0].results[0].median,runc_median_s:$h[0].results[1].median},
    docker_run_served_first_200:{skiff_oci_median_s:$s[0].results[0].median,runc_median_s:$s[0].results[1].median}}' > "$RESULTS/docker.json"

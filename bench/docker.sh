#!/usr/bin/env bash
# Docker, on one private dockerd (Debian's 20.10: its own data-root, exec-root and socket, no
# bridge, no iptables, vfs), in one run: `docker run --rm --runtime skiff` of a skiff hello
# (skiff-oci) against `docker run --rm` of busybox /bin/true under runc, both --network none.
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
need_apt docker.io runc busybox-static hyperfine jq

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
  "containerd-plugins-namespace": "bench-plugins", bridge: "none", iptables: false,
  "ip-masq": false, "storage-driver": "vfs", runtimes: {skiff: {path: $oci}}}' >"$W/daemon.json"
SKIFF_HOME="$W/skiff-home" dockerd --config-file "$W/daemon.json" >"$W/dockerd.log" 2>&1 &
DPID=$!
DOCKER=(/usr/bin/docker -H "unix://$W/docker.sock")
for _ in $(seq 500); do "${DOCKER[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done

# Both images from `docker import`: a rootfs holding hello.wasm, and static busybox.
mkdir -p "$W/hello" "$W/bb/bin"
cp guests/wasm/hello.wasm "$W/hello/app.wasm"
cp "$(command -v busybox)" "$W/bb/bin/busybox"; ln -s busybox "$W/bb/bin/true"
tar -C "$W/hello" -c . | "${DOCKER[@]}" import --change 'ENTRYPOINT ["/app.wasm"]' - bench/hello:1 >/dev/null
tar -C "$W/bb" -c . | "${DOCKER[@]}" import - bench/busybox:1 >/dev/null

# Warm the compile cache once, as any host that has run the image before would be.
"${DOCKER[@]}" run --rm --runtime skiff --network none bench/hello:1 >/dev/null

echo "== docker run --rm: skiff-oci hello vs runc /bin/true"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" \
  -n "skiff-oci: hello.wasm" "${DOCKER[*]} run --rm --runtime skiff --network none bench/hello:1" \
  -n "runc: busybox /bin/true" "${DOCKER[*]} run --rm --network none bench/busybox:1 /bin/true"

jq -r '.results as $r | "median: skiff-oci \($r[0].median*1000|floor) ms, runc \($r[1].median*1000|floor) ms; skiff/runc = \(($r[0].median/$r[1].median*100|floor)/100)"' "$W/result.json"

mkdir -p "$RESULTS"
jq -n --slurpfile h "$W/result.json" --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg docker "$(dockerd --version)" \
  '{scenario:"docker",date:$date,loadavg:$load,dockerd:$docker,
    docker_run_rm:{skiff_oci_median_s:$h[0].results[0].median,runc_median_s:$h[0].results[1].median}}' > "$RESULTS/docker.json"

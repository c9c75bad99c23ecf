#!/usr/bin/env bash
# containerd, on one private containerd, in one run:
# 1. `ctr run --rm` of a skiff hello (runtime io.containerd.skiff.v1) against `ctr run --rm` of
#    busybox /bin/true with runc;
# 2. start to first HTTP 200: `ctr run -d` of the http-hello component through the shim
#    (annotation dev.skiff.http.port) against `ctr run -d` of busybox httpd with runc, each
#    polled with curl until it answers (both --net-host), medians.
#
#   bench/shim.sh              build the shim (release) and measure
#   SHIM=/path/to/containerd-shim-skiff-v1 bench/shim.sh   use that binary
#   RUNS=50 bench/shim.sh      more runs (default 30; first-200: N=20)
#   SMOKE=1 bench/shim.sh      two runs of each on the debug build (the test suite)
#
# Needs root, containerd, runc, busybox-static, hyperfine, jq, curl (installed if missing).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUNS="${RUNS:-30}"; N="${N:-20}"
[ "$SMOKE" = 1 ] && { RUNS=2; N=2; }
need_apt containerd runc busybox-static hyperfine jq curl

profile=release; [ "$SMOKE" = 1 ] && profile=debug
cargo_profile=(); [ "$profile" = release ] && cargo_profile=(--release)
if [ -z "${SHIM:-}" ]; then
  SHIM="$CARGO_TARGET_DIR/$profile/containerd-shim-skiff-v1"
  [ -x "$SHIM" ] && [ "$SMOKE" = 1 ] || cargo build "${cargo_profile[@]}" -q --workspace --bin containerd-shim-skiff-v1
fi
COMPAT="${COMPAT:-$CARGO_TARGET_DIR/$profile/examples/compat-tar}"
[ -x "$COMPAT" ] || cargo build "${cargo_profile[@]}" -q --workspace --example compat-tar

W="$(mktemp -d /tmp/skiff-bench-shim.XXXXXX)"
cleanup() {
  # Tasks left by a failed run (a server holding the port) go before containerd does.
  if [ -n "${CPID:-}" ]; then
    for t in $(ctr -a "$W/c.sock" -n bench task ls -q 2>/dev/null); do
      ctr -a "$W/c.sock" -n bench task delete -f "$t" >/dev/null 2>&1 || true
    done
  fi
  [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$W/bin" "$W/skiff-home"
cp "$SHIM" "$W/bin/containerd-shim-skiff-v1"
cat > "$W/config.toml" <<TOML
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/c.sock"
[ttrpc]
  address = "$W/c.sock.ttrpc"
TOML
PATH="$W/bin:$PATH" SKIFF_HOME="$W/skiff-home" containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
CPID=$!
CTR=(ctr -a "$W/c.sock" -n bench)
for _ in $(seq 500); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.02; done

# The skiff image: hello.wasm in the compat layout.
"$COMPAT" bench/hello:1 guests/wasm/hello.wasm "$W/hello.tar" >/dev/null
"${CTR[@]}" images import --platform wasi/wasm "$W/hello.tar" >/dev/null

# The runc image: a busybox rootfs as a one-layer OCI image.
mkdir -p "$W/bb/rootfs/bin" "$W/bb/layout/blobs/sha256"
cp "$(command -v busybox)" "$W/bb/rootfs/bin/busybox"
for t in true httpd; do ln -s busybox "$W/bb/rootfs/bin/$t"; done
tar -C "$W/bb/rootfs" -cf "$W/bb/layer.tar" .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$W/bb/layout/blobs/sha256/$d"; echo "$d"; }
L=$(blob "$W/bb/layer.tar"); LS=$(stat -c %s "$W/bb/layer.tar")
jq -n --arg l "sha256:$L" '{architecture:"amd64",os:"linux",config:{Cmd:["/bin/true"]},rootfs:{type:"layers",diff_ids:[$l]}}' >"$W/bb/config.json"
C=$(blob "$W/bb/config.json"); CS=$(stat -c %s "$W/bb/config.json")
jq -n --arg c "sha256:$C" --argjson cs "$CS" --arg l "sha256:$L" --argjson ls "$LS" \
  '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
    layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l,size:$ls}]}' >"$W/bb/manifest.json"
M=$(blob "$W/bb/manifest.json"); MS=$(stat -c %s "$W/bb/manifest.json")
jq -n --arg m "sha256:$M" --argjson ms "$MS" \
  '{schemaVersion:2,manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$m,size:$ms,
    annotations:{"io.containerd.image.name":"bench/busybox:1"}}]}' >"$W/bb/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/bb/layout/oci-layout"
tar -C "$W/bb/layout" -cf "$W/busybox.tar" .
"${CTR[@]}" images import "$W/busybox.tar" >/dev/null

# Warm the compile cache once, as any node that has run the image before would be.
"${CTR[@]}" run --rm --runtime io.containerd.skiff.v1 --platform wasi/wasm bench/hello:1 warm >/dev/null

echo "== ctr run --rm: skiff hello vs runc /bin/true"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" \
  -n "skiff shim: hello.wasm" "${CTR[*]} run --rm --runtime io.containerd.skiff.v1 --platform wasi/wasm bench/hello:1 s" \
  -n "runc: busybox /bin/true" "${CTR[*]} run --rm bench/busybox:1 r"

jq -r '.results as $r | "median: skiff \($r[0].median*1000|floor) ms, runc \($r[1].median*1000|floor) ms; skiff/runc = \(($r[0].median/$r[1].median*100|floor)/100)"' "$W/result.json"

echo; echo "== start to first HTTP 200: skiff shim + http-hello vs runc + busybox httpd (ctr run -d)"
"$COMPAT" bench/http-hello:1 guests/wasm/http-hello.wasm "$W/http-hello.tar" >/dev/null
"${CTR[@]}" images import --platform wasi/wasm "$W/http-hello.tar" >/dev/null
port=$(free_port)
skiff_run=("${CTR[@]}" run -d --net-host --runtime io.containerd.skiff.v1 --platform wasi/wasm
  --annotation "dev.skiff.http.port=$port" bench/http-hello:1)
runc_run=("${CTR[@]}" run -d --net-host bench/busybox:1)
runc_args=(/bin/httpd -f -p "127.0.0.1:$port" -h /bin)
# Untimed: SIGKILL the task, wait for it, remove task and container (the port is then free).
stop() { "${CTR[@]}" task kill -s SIGKILL "$1" >/dev/null 2>&1 || true
  "${CTR[@]}" task delete -f "$1" >/dev/null 2>&1 || true
  "${CTR[@]}" containers delete "$1" >/dev/null 2>&1 || true; }
# Warm-up: the first start compiles the component into the node's cache.
"${skiff_run[@]}" hw >/dev/null; until_200 "http://127.0.0.1:$port/"; stop hw
: > "$W/skiff200.txt"; : > "$W/runc200.txt"
for i in $(seq "$N"); do
  t0=$(now_us)
  "${skiff_run[@]}" "h$i" >/dev/null
  until_200 "http://127.0.0.1:$port/"
  echo $(( $(now_us) - t0 )) >> "$W/skiff200.txt"
  stop "h$i"

  t0=$(now_us)
  "${runc_run[@]}" "b$i" "${runc_args[@]}" >/dev/null
  until_200 "http://127.0.0.1:$port/busybox"
  echo $(( $(now_us) - t0 )) >> "$W/runc200.txt"
  stop "b$i"
done
s200=$(median < "$W/skiff200.txt"); r200=$(median < "$W/runc200.txt")
echo "| ctr run -d, start to first 200 | median ms (n=$N) |"
echo "| --- | ---: |"
awk -v s="$s200" -v r="$r200" 'BEGIN { printf "| skiff shim + http-hello.wasm | %.1f |\n| runc + busybox httpd | %.1f |\n\nskiff / runc: %.3f\n", s/1000, r/1000, s/r }'

mkdir -p "$RESULTS"
jq -n --slurpfile h "$W/result.json" --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson n "$N" --argjson s "$s200" --argjson r "$r200" \
  '{scenario:"shim",date:$date,loadavg:$load,
    ctr_run_rm:{skiff_median_s:$h[0].results[0].median,runc_median_s:$h[0].results[1].median},
    first200:{n:$n,skiff_median_us:$s,runc_median_us:$r}}' > "$RESULTS/shim.json"

#!/usr/bin/env bash
# containerd: `ctr run --rm` of a skiff hello (runtime io.containerd.skiff.v1) against
# `ctr run --rm` of busybox /bin/true with runc, on the same private containerd, in one run.
#
#   bench/shim.sh              build the shim (release) and measure
#   SHIM=/path/to/containerd-shim-skiff-v1 bench/shim.sh   use that binary
#   RUNS=50 bench/shim.sh      more runs (default 30)
#
# Needs root, containerd, runc, busybox-static, hyperfine, jq (apt-get install -y ...).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
RUNS="${RUNS:-30}"

for t in containerd ctr runc hyperfine jq busybox; do
  command -v "$t" >/dev/null || { echo "shim.sh: missing $t (apt-get install -y containerd runc busybox-static hyperfine jq)" >&2; exit 1; }
done

if [ -z "${SHIM:-}" ]; then
  cargo build --release -q -p containerd-shim-skiff
  cargo build --release -q -p skiff-compat --example compat-tar
  SHIM="$CARGO_TARGET_DIR/release/containerd-shim-skiff-v1"
fi
COMPAT="${COMPAT:-$CARGO_TARGET_DIR/release/examples/compat-tar}"
[ -x "$COMPAT" ] || cargo build --release -q -p skiff-compat --example compat-tar

W="$(mktemp -d /tmp/skiff-bench-shim.XXXXXX)"
cleanup() {
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
ln -s busybox "$W/bb/rootfs/bin/true"
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

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" \
  -n "skiff shim: hello.wasm" "${CTR[*]} run --rm --runtime io.containerd.skiff.v1 --platform wasi/wasm bench/hello:1 s" \
  -n "runc: busybox /bin/true" "${CTR[*]} run --rm bench/busybox:1 r"

jq -r '.results as $r | "median: skiff \($r[0].median*1000|floor) ms, runc \($r[1].median*1000|floor) ms; skiff/runc = \(($r[0].median/$r[1].median*100|floor)/100)"' "$W/result.json"

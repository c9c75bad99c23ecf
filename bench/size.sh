#!/usr/bin/env bash
# Image size: skiff's hello HTTP image (manifest + config + the one wasm layer, as pushed) vs a
# busybox-httpd container image (the smallest real HTTP server image: static busybox, as an OCI
# layer tarball, gzipped as registries store it).
source "$(dirname "$0")/lib.sh"
need_apt busybox-static jq
[ -x "$SKIFF" ] || build_skiff_release
work=$(mktemp -d /var/tmp/skiff-bench-size.XXXXXX); trap 'rm -rf "$work"' EXIT
export SKIFF_HOME="$work/home"
mkdir -p "$work/ctx"
cp "$ROOT/guests/wasm/http-hello.wasm" "$work/ctx/"
cat > "$work/ctx/skiff.toml" <<TOML
name = "hello-http"
version = "1.0"
wasm = "http-hello.wasm"
[http]
route = "/"
TOML
"$SKIFF" build -q -t hello-http:1.0 "$work/ctx" >/dev/null
"$SKIFF" save -o "$work/skiff.tar" hello-http:1.0
# Everything in the layout but the tar framing and the layout's own index: what a pull moves.
skiff_bytes=$(tar -tvf "$work/skiff.tar" | awk '$6 ~ /^blobs\/sha256\// {s+=$3} END {print s}')

mkdir -p "$work/rootfs/bin"; cp /bin/busybox "$work/rootfs/bin/"; ln -s busybox "$work/rootfs/bin/httpd"
tar -C "$work/rootfs" -cf - . | gzip -9 > "$work/busybox-layer.tar.gz"
busybox_bytes=$(stat -c %s "$work/busybox-layer.tar.gz")

echo "| image | bytes a pull moves |"
echo "| --- | ---: |"
echo "| skiff hello HTTP (CNCF Wasm layout) | $skiff_bytes |"
echo "| busybox httpd (one gzipped layer, static busybox) | $busybox_bytes |"
awk -v a="$skiff_bytes" -v b="$busybox_bytes" 'BEGIN { printf "\nskiff / busybox: %.3f\n", a/b }'
mkdir -p "$RESULTS"
printf '{"scenario":"image-size","date":"%s","skiff_bytes":%s,"busybox_httpd_bytes":%s}\n' \
  "$(date -u +%FT%TZ)" "$skiff_bytes" "$busybox_bytes" > "$RESULTS/size.json"

#!/usr/bin/env bash
# skiff push / pull of a 50 MiB image against a loopback registry, next to curl moving the same
# blob over the same registry API. One run; prints times, throughputs and the ratios.
#
#   bench/registry.sh                      the release skiff ($SKIFF, default
#                                          $CARGO_TARGET_DIR/release/skiff)
#   SKIFF=$CARGO_TARGET_DIR/debug/skiff bench/registry.sh     a debug build (deps optimised)
#   SIZE_MIB=200 bench/registry.sh         a larger image
#
# Needs: docker-registry and curl (apt), python3 (to make the image). Not a test: it prints
# numbers, it asserts nothing but that a re-pull moves 0 blob bytes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/.."
TARGET="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
SKIFF="${SKIFF:-$TARGET/release/skiff}"
SIZE_MIB="${SIZE_MIB:-50}"

command -v docker-registry >/dev/null || { echo "registry.sh: apt-get install -y docker-registry" >&2; exit 1; }
[ -x "$SKIFF" ] || { echo "registry.sh: no skiff at $SKIFF: cargo build --release -p skiff-cli" >&2; exit 1; }

WORK="$(mktemp -d)"
REG_PID=""
cleanup() { [ -n "$REG_PID" ] && { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
cat >"$WORK/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}, delete: {enabled: true}}
http: {addr: $ADDR, secret: bench}
EOF
docker-registry serve "$WORK/config.yml" >/dev/null 2>&1 &
REG_PID=$!
for _ in $(seq 200); do curl -fs -o /dev/null "http://$ADDR/v2/" && break; sleep 0.02; done

# The image: the hello guest with a ${SIZE_MIB} MiB custom section of random bytes (incompressible,
# valid Wasm, so skiff build and the post-pull compile accept it; compiling skips the section).
python3 - "$ROOT/guests/wasm/hello.wasm" "$WORK/app/app.wasm" "$SIZE_MIB" <<'EOF'
import os, sys
src, dst, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
name = b"bench.padding"
payload = leb(len(name)) + name + os.urandom(mib << 20)
os.makedirs(os.path.dirname(dst), exist_ok=True)
with open(dst, "wb") as f:
    f.write(open(src, "rb").read() + b"\x00" + leb(len(payload)) + payload)
EOF
printf 'name = "big"\nversion = "1"\nwasm = "app.wasm"\n' >"$WORK/app/skiff.toml"
BLOB="$WORK/app/app.wasm"
BYTES=$(stat -c %s "$BLOB")
DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"

A="$WORK/home-a"; B="$WORK/home-b"
SKIFF_HOME=$A "$SKIFF" build -q "$WORK/app" >/dev/null
SKIFF_HOME=$A "$SKIFF" tag big:1 "$ADDR/skiff/big:1"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mibs() { awk -v n="$BYTES" -v s="$1" 'BEGIN { printf "%.1f", n / 1048576 / s }'; }

# curl: the same blob up (POST a session, PUT the bytes with ?digest=) into another repository.
t0=$(now)
LOC=$(curl -fsS -X POST -D - -o /dev/null "http://$ADDR/v2/curl/big/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
case "$LOC" in http*) ;; *) LOC="http://$ADDR$LOC";; esac
case "$LOC" in *\?*) SEP='&';; *) SEP='?';; esac
curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB" "$LOC${SEP}digest=$DIGEST" -o /dev/null
t1=$(now); CURL_UP=$(secs "$t0" "$t1")

t0=$(now); SKIFF_HOME=$A "$SKIFF" push -q "$ADDR/skiff/big:1" >/dev/null; t1=$(now)
SKIFF_UP=$(secs "$t0" "$t1")

t0=$(now); curl -fsS -o "$WORK/curl.blob" "http://$ADDR/v2/curl/big/blobs/$DIGEST"; t1=$(now)
CURL_DOWN=$(secs "$t0" "$t1")

t0=$(now); SKIFF_HOME=$B "$SKIFF" pull --no-compile "$ADDR/skiff/big:1" >"$WORK/pull1.txt"; t1=$(now)
SKIFF_DOWN=$(secs "$t0" "$t1")

t0=$(now); SKIFF_HOME=$B "$SKIFF" pull "$ADDR/skiff/big:1" >"$WORK/pull2.txt"; t1=$(now)
SKIFF_REPULL=$(secs "$t0" "$t1")
REPULL_BYTES=$(sed -n 's/.*(\([0-9]*\) blob bytes transferred).*/\1/p' "$WORK/pull2.txt")

echo "registry: $SKIFF ($( [[ "$SKIFF" == */release/* ]] && echo release || echo 'debug build, dependencies optimised')), docker-registry on loopback, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "image: ${SIZE_MIB} MiB wasm layer ($BYTES bytes) + config + manifest; one run each"
printf '%-34s %9s %10s\n' "" "seconds" "MiB/s"
printf '%-34s %9s %10s\n' "curl upload (POST + PUT)" "$CURL_UP" "$(mibs "$CURL_UP")"
printf '%-34s %9s %10s\n' "skiff push (whole command)" "$SKIFF_UP" "$(mibs "$SKIFF_UP")"
printf '%-34s %9s %10s\n' "curl download (GET)" "$CURL_DOWN" "$(mibs "$CURL_DOWN")"
printf '%-34s %9s %10s\n' "skiff pull --no-compile" "$SKIFF_DOWN" "$(mibs "$SKIFF_DOWN")"
printf '%-34s %9s %10s\n' "skiff re-pull (+ compile)" "$SKIFF_REPULL" "-"
awk -v a="$CURL_UP" -v b="$SKIFF_UP" -v c="$CURL_DOWN" -v d="$SKIFF_DOWN" 'BEGIN {
  printf "push throughput / curl: %.2f\npull throughput / curl: %.2f\n", a / b, c / d }'
echo "re-pull blob bytes moved: ${REPULL_BYTES:-?}"
[ "$REPULL_BYTES" = 0 ] || { echo "registry.sh: a re-pull moved blob bytes" >&2; exit 1; }

#!/usr/bin/env bash
# skiff push / pull of a 50 MiB image against a loopback registry, next to curl moving the same
# blob over the same registry API, in alternating rounds; prints median times, throughputs and
# the ratios of the medians, and writes $RESULTS/registry.json when RESULTS is set.
#
#   bench/registry.sh                      the release skiff ($SKIFF, default
#                                          $CARGO_TARGET_DIR/release/skiff)
#   SKIFF=$CARGO_TARGET_DIR/debug/skiff bench/registry.sh     a debug build (deps optimised)
#   SIZE_MIB=200 ROUNDS=9 bench/registry.sh                    a larger image, more rounds
#
# Needs: docker-registry, curl and openssl (apt), python3 (to make the image). Not a test: it prints
# numbers, it asserts nothing but that a re-pull moves 0 blob bytes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/.."
source "$ROOT/scripts/target-dir.sh"
SKIFF="${SKIFF:-$CARGO_TARGET_DIR/release/skiff}"
SIZE_MIB="${SIZE_MIB:-50}"
ROUNDS="${ROUNDS:-5}"

command -v docker-registry >/dev/null || { echo "registry.sh: apt-get install -y docker-registry" >&2; exit 1; }
command -v openssl >/dev/null || { echo "registry.sh: apt-get install -y openssl" >&2; exit 1; }
[ -x "$SKIFF" ] || { echo "registry.sh: no skiff at $SKIFF: cargo build --release --bin skiff" >&2; exit 1; }

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
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# curl: the same blob up (POST a session, PUT the bytes with ?digest=) into its own repository.
curl_up() {
  local loc sep
  loc=$(curl -fsS -X POST -D - -o /dev/null "http://$ADDR/v2/curl/big$1/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="http://$ADDR$loc";; esac
  case "$loc" in *\?*) sep='&';; *) sep='?';; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB" "$loc${sep}digest=$DIGEST" -o /dev/null
}
# skiff: a fresh repository each round, and no memory of earlier ones (else it would mount).
skiff_up() {
  rm -f "$A/registry-sources.json"
  SKIFF_HOME=$A "$SKIFF" tag big:1 "$ADDR/skiff/big$1:1"
  SKIFF_HOME=$A "$SKIFF" push -q "$ADDR/skiff/big$1:1" >/dev/null
}
skiff_down() { rm -rf "$B"; SKIFF_HOME=$B "$SKIFF" pull -q --no-compile "$ADDR/skiff/big$1:1" >/dev/null; }
curl_down() { curl -fsS -o "$WORK/curl.blob" "http://$ADDR/v2/curl/big$1/blobs/$DIGEST"; }
# A download that checks its digest as skiff's does, hashing in stream (openssl's sha256 uses the
# CPU's SHA extensions where it has them, as skiff's does). Not the target's peer: shown so the
# cost of verifying is visible apart from the rest.
curl_down_verified() {
  local got
  got=$(curl -fsS "http://$ADDR/v2/curl/big$1/blobs/$DIGEST" | tee "$WORK/curl.blob" | openssl dgst -sha256 -r | cut -d' ' -f1)
  [ "sha256:$got" = "$DIGEST" ] || { echo "registry.sh: curl | openssl: digest mismatch" >&2; exit 1; }
}
# Each step starts with no dirty pages left by the one before (a push leaves 50 MiB in the
# registry's storage): else whoever fsyncs next waits for the kernel to flush someone else's bytes.
timed() { local t0 t1; sync; t0=$(now); "$@"; t1=$(now); secs "$t0" "$t1"; }

CU=(); SU=(); CD=(); SD=(); CV=()
for r in $(seq "$ROUNDS"); do
  # Alternate who goes first: the second writer of a blob finds it in the registry's storage.
  if ((r % 2)); then
    CU+=("$(timed curl_up "$r")"); SU+=("$(timed skiff_up "$r")")
    CD+=("$(timed curl_down "$r")"); SD+=("$(timed skiff_down "$r")"); CV+=("$(timed curl_down_verified "$r")")
  else
    SU+=("$(timed skiff_up "$r")"); CU+=("$(timed curl_up "$r")")
    CV+=("$(timed curl_down_verified "$r")"); SD+=("$(timed skiff_down "$r")"); CD+=("$(timed curl_down "$r")")
  fi
done
CURL_UP=$(median "${CU[@]}"); SKIFF_UP=$(median "${SU[@]}")
CURL_DOWN=$(median "${CD[@]}"); SKIFF_DOWN=$(median "${SD[@]}"); CURL_VERIFIED=$(median "${CV[@]}")

t0=$(now); SKIFF_HOME=$B "$SKIFF" pull "$ADDR/skiff/big$ROUNDS:1" >"$WORK/pull2.txt"; t1=$(now)
SKIFF_REPULL=$(secs "$t0" "$t1")
REPULL_BYTES=$(sed -n 's/.*(\([0-9]*\) blob bytes transferred).*/\1/p' "$WORK/pull2.txt")

BUILD=$( [[ "$SKIFF" == */debug/* ]] && echo 'debug build, dependencies optimised' || echo release)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "registry: $SKIFF ($BUILD), docker-registry on loopback, $(nproc) cores, load $LOAD"
echo "image: ${SIZE_MIB} MiB wasm layer ($BYTES bytes) + config + manifest; medians of $ROUNDS alternating rounds"
printf '%-30s %8s %8s   %s\n' "" "seconds" "MiB/s" "each round"
printf '%-30s %8s %8s   %s\n' "curl upload (POST + PUT)" "$CURL_UP" "$(mibs "$CURL_UP")" "${CU[*]}"
printf '%-30s %8s %8s   %s\n' "skiff push (whole command)" "$SKIFF_UP" "$(mibs "$SKIFF_UP")" "${SU[*]}"
printf '%-30s %8s %8s   %s\n' "curl download (GET)" "$CURL_DOWN" "$(mibs "$CURL_DOWN")" "${CD[*]}"
printf '%-30s %8s %8s   %s\n' "curl | tee | openssl sha256" "$CURL_VERIFIED" "$(mibs "$CURL_VERIFIED")" "${CV[*]}"
printf '%-30s %8s %8s   %s\n' "skiff pull --no-compile" "$SKIFF_DOWN" "$(mibs "$SKIFF_DOWN")" "${SD[*]}"
printf '%-30s %8s %8s\n' "skiff re-pull (+ compile)" "$SKIFF_REPULL" "-"
PUSH_RATIO=$(awk -v a="$CURL_UP" -v b="$SKIFF_UP" 'BEGIN { printf "%.2f", a / b }')
PULL_RATIO=$(awk -v a="$CURL_DOWN" -v b="$SKIFF_DOWN" 'BEGIN { printf "%.2f", a / b }')
VERIFIED_RATIO=$(awk -v a="$CURL_VERIFIED" -v b="$SKIFF_DOWN" 'BEGIN { printf "%.2f", a / b }')
echo "push throughput / curl: $PUSH_RATIO"
echo "pull throughput / curl: $PULL_RATIO"
echo "pull throughput / curl with a digest check: $VERIFIED_RATIO"
echo "re-pull blob bytes moved: ${REPULL_BYTES:-?}"
if [ -n "${RESULTS:-}" ]; then
  mkdir -p "$RESULTS"
  cat >"$RESULTS/registry.json" <<EOF
{"date": "$(date -u +%FT%TZ)", "skiff": "$BUILD", "load": "$LOAD", "size_mib": $SIZE_MIB, "rounds": $ROUNDS,
 "median_seconds": {"curl_upload": $CURL_UP, "skiff_push": $SKIFF_UP, "curl_download": $CURL_DOWN, "curl_download_verified": $CURL_VERIFIED, "skiff_pull": $SKIFF_DOWN},
 "push_ratio": $PUSH_RATIO, "pull_ratio": $PULL_RATIO, "pull_ratio_verified": $VERIFIED_RATIO}
EOF
fi
[ "$REPULL_BYTES" = 0 ] || { echo "registry.sh: a re-pull moved blob bytes" >&2; exit 1; }

#!/usr/bin/env bash
# Builds every skiff test guest from source into guests/wasm/ (see guests/README.md).
#
#   guests/build.sh            build all guests except http-js, replace guests/wasm/*
#   guests/build.sh --js       also build http-js (runs `npm ci` in guests/js; ~13 MB output)
#   guests/build.sh --check    rebuild into a temp dir, fail if a committed file differs
#                              (http-js is never byte-compared: its output is not reproducible)
#   guests/build.sh --out DIR  write the guests to DIR instead of guests/wasm
#
# Installs nothing: it checks for its tools and says what to install.
# Cargo builds go to $SKIFF_GUESTS_TARGET_DIR (default /var/tmp/skiff-guests-target), never to the
# main workspace's target dir; an ambient CARGO_TARGET_DIR is ignored on purpose.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/wasm"
CHECK=0
JS=0

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --js) JS=1 ;;
    --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

export CARGO_TARGET_DIR="${SKIFF_GUESTS_TARGET_DIR:-/var/tmp/skiff-guests-target}"
T="$CARGO_TARGET_DIR"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 ($2)"); }
need cargo "install Rust with rustup"
need rustc "install Rust with rustup"
need clang "apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32"
need wasm-ld "apt-get install -y lld"
need wat2wasm "apt-get install -y wabt"
need wasm-validate "apt-get install -y wabt"
if [ "$JS" = 1 ]; then
  need node "apt-get install -y nodejs npm"
  need npm "apt-get install -y nodejs npm"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'build.sh: missing tools:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
sysroot="$(rustc --print sysroot)"
for t in wasm32-wasip1 wasm32-wasip2; do
  [ -d "$sysroot/lib/rustlib/$t" ] || die "Rust target $t is missing: rustup target add wasm32-wasip1 wasm32-wasip2"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/skiff-guests.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/out"
mkdir -p "$STAGE"

printf 'int main(void){return 0;}\n' > "$WORK/probe.c"
clang --target=wasm32-wasi -O2 -s -o "$WORK/probe.wasm" "$WORK/probe.c" 2>"$WORK/probe.err" ||
  { cat "$WORK/probe.err" >&2; die "clang cannot build for wasm32-wasi: apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32"; }

start=$SECONDS

# ---------------------------------------------------------------------------------------------
# Rust guests (workspace guests/rust) and the host tool guests/tools/componentize
# ---------------------------------------------------------------------------------------------
# Keep absolute paths out of the binaries so that the bytes do not depend on where the repo or
# CARGO_HOME live (only target-specific flags: the host tool's build is not affected).
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
remap="--remap-path-prefix=$HERE=/skiff-guests --remap-path-prefix=$cargo_home=/cargo"
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="$remap"
export CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="$remap"

log "building the componentize host tool"
cargo build --quiet --locked --release --manifest-path "$HERE/tools/componentize/Cargo.toml"
COMPONENTIZE="$T/release/componentize"

log "building Rust guests for wasm32-wasip1"
cargo build --quiet --locked --release --manifest-path "$HERE/rust/Cargo.toml" \
  --target wasm32-wasip1 -p hello -p http-hello -p http-fanout -p http-counter
log "building Rust guests for wasm32-wasip2"
cargo build --quiet --locked --release --manifest-path "$HERE/rust/Cargo.toml" \
  --target wasm32-wasip2 -p hello -p socket -p http-hello -p http-get

P1="$T/wasm32-wasip1/release"
P2="$T/wasm32-wasip2/release"
cp "$P1/hello.wasm" "$STAGE/hello.wasm"
cp "$P2/hello.wasm" "$STAGE/hello-p2.wasm"
cp "$P2/socket.wasm" "$STAGE/socket.wasm"
cp "$P2/http_hello.wasm" "$STAGE/http-hello-p2.wasm"
cp "$P2/http-get.wasm" "$STAGE/http-get.wasm"
"$COMPONENTIZE" --adapter proxy "$P1/http_hello.wasm" "$STAGE/http-hello.wasm"
"$COMPONENTIZE" --adapter proxy "$P1/http_fanout.wasm" "$STAGE/http-fanout.wasm"
"$COMPONENTIZE" --adapter proxy "$P1/http_counter.wasm" "$STAGE/http-counter.wasm"

# ---------------------------------------------------------------------------------------------
# C guests
# ---------------------------------------------------------------------------------------------
log "building C guests"
for src in "$HERE"/c/*.c; do
  name="$(basename "$src" .c)"
  clang --target=wasm32-wasi -O2 -s -o "$STAGE/$name.wasm" "$src"
done

# C++ with -fwasm-exceptions, as the machine's clang emits it (see cpp/throw-legacy.cpp)
log "building C++ guests"
for src in "$HERE"/cpp/*.cpp; do
  name="$(basename "$src" .cpp)"
  clang++ --target=wasm32-wasi -fwasm-exceptions -O2 -s -nostdlib++ -Wl,--allow-undefined \
    -o "$STAGE/$name.wasm" "$src"
done

# ---------------------------------------------------------------------------------------------
# WAT guests (name section kept, so traps show function names)
# ---------------------------------------------------------------------------------------------
log "building WAT guests"
for src in "$HERE"/wat/*.wat; do
  case "$src" in *.component.wat|*.proposal.wat) continue ;; esac
  name="$(basename "$src" .wat)"
  # Multi-memory (many-memories) must be enabled by name in wabt 1.0.32; it changes no bytes.
  wat2wasm --enable-multi-memory --debug-names "$src" -o "$STAGE/$name.wasm"
done
# Components in text form: wabt cannot read them, the componentize tool (wat crate) can.
for src in "$HERE"/wat/*.component.wat; do
  name="$(basename "$src" .component.wat)"
  "$COMPONENTIZE" --wat "$src" "$STAGE/$name.wasm"
done
# Core modules using proposals wabt 1.0.32 cannot read (exceptions' try_table, GC types,
# shared memory): the same wat crate reads them.
for src in "$HERE"/wat/*.proposal.wat; do
  name="$(basename "$src" .proposal.wat)"
  "$COMPONENTIZE" --wat "$src" "$STAGE/$name.wasm"
done

# ---------------------------------------------------------------------------------------------
# Broken inputs
# ---------------------------------------------------------------------------------------------
cp "$HERE/misc/not-wasm.txt" "$STAGE/not-wasm.txt"
head -c 40 "$STAGE/hello.wasm" > "$STAGE/truncated.wasm"

# ---------------------------------------------------------------------------------------------
# JavaScript guest (optional)
# ---------------------------------------------------------------------------------------------
if [ "$JS" = 1 ]; then
  log "building http-js (npm ci + componentize-js, about a minute)"
  (cd "$HERE/js" && npm ci --no-audit --no-fund --loglevel=error >&2)
  # StarlingMonkey (componentize-js 0.23) exports wasi:http/incoming-handler@0.2.10; jco 1.35
  # ships the 0.2.12 WIT, which is the same API: take it and relabel it 0.2.10.
  jswit="$WORK/js-wit"
  mkdir -p "$jswit/deps"
  cp "$HERE/js/world.wit" "$jswit/world.wit"
  cp -r "$HERE/js/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12/"wasi-* "$jswit/deps/"
  find "$jswit/deps" -name '*.wit' -exec sed -i 's/0\.2\.12/0.2.10/g' {} +
  (cd "$HERE/js" && node node_modules/@bytecodealliance/componentize-js/src/cli.js \
    http-js.js --wit "$jswit" --world-name http-js -o "$STAGE/http-js.wasm" >&2)
fi

# ---------------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------------
log "verifying"
for m in hello exit-code escape ticker open-many loop memory-hog trap stack-overflow library \
  table-hog many-memories too-many-memories; do
  wasm-validate --enable-multi-memory "$STAGE/$m.wasm" || die "$m.wasm is not a valid core module"
done
if wasm-validate "$STAGE/truncated.wasm" 2>/dev/null; then die "truncated.wasm validates"; fi

expect_export() { # component, export prefix
  "$COMPONENTIZE" --print-exports "$STAGE/$1.wasm" | grep -q "^$2" || die "$1.wasm does not export $2"
}
components=(hello-p2 socket http-hello http-hello-p2 http-table-hog http-fanout http-counter http-get)
if [ "$JS" = 1 ]; then components+=(http-js); fi
for c in "${components[@]}"; do
  "$COMPONENTIZE" --print-imports "$STAGE/$c.wasm" >/dev/null || die "$c.wasm is not a valid component"
done
expect_export hello-p2 "wasi:cli/run@"
expect_export socket "wasi:cli/run@"
expect_export http-hello "wasi:http/incoming-handler@"
expect_export http-hello-p2 "wasi:http/incoming-handler@"
expect_export http-table-hog "wasi:http/incoming-handler@"
expect_export http-fanout "wasi:http/incoming-handler@"
expect_export http-counter "wasi:http/incoming-handler@"
expect_export http-get "wasi:cli/run@"
if [ "$JS" = 1 ]; then expect_export http-js "wasi:http/incoming-handler@"; fi

# http-hello must link in the strict wasi:http/proxy world.
outside="$("$COMPONENTIZE" --print-imports "$STAGE/http-hello.wasm" |
  grep -Ev '^wasi:(http/[a-z-]+|io/[a-z-]+|clocks/[a-z-]+|random/[a-z-]+|cli/(stdout|stderr|stdin))@0\.2\.[0-9]+$' || true)"
[ -z "$outside" ] || die "http-hello.wasm imports outside wasi:http/proxy: $outside"

chmod 644 "$STAGE"/*

# ---------------------------------------------------------------------------------------------
# Install or compare
# ---------------------------------------------------------------------------------------------
if [ "$CHECK" = 1 ]; then
  bad=0
  for f in "$STAGE"/*; do
    name="$(basename "$f")"
    if [ "$name" = http-js.wasm ]; then continue; fi # not reproducible (Wizer snapshot of temp paths)
    if ! cmp -s "$f" "$OUT/$name"; then
      echo "build.sh --check: $name differs from the committed $OUT/$name (or is missing)" >&2
      bad=1
    fi
  done
  for f in "$OUT"/*; do
    [ -e "$STAGE/$(basename "$f")" ] || [ "$(basename "$f")" = http-js.wasm ] ||
      { echo "build.sh --check: $OUT/$(basename "$f") is not built by build.sh" >&2; bad=1; }
  done
  [ "$bad" = 0 ] || die "committed guests are stale: run guests/build.sh and commit guests/wasm"
  log "check ok: committed guests match their sources ($((SECONDS - start)) s)"
else
  mkdir -p "$OUT"
  for f in "$STAGE"/*; do
    name="$(basename "$f")"
    cmp -s "$f" "$OUT/$name" || cp "$f" "$OUT/$name"
    chmod 644 "$OUT/$name"
  done
  log "built $(ls "$STAGE" | wc -l) guests into $OUT ($((SECONDS - start)) s)"
fi

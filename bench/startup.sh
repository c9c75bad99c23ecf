#!/usr/bin/env bash
# Where a cold `skiff run` of a cached hello spends its time, beside the same figures for the
# wasmtime release binary and for the cheapest process there is (static busybox `true`): what
# exec and the kernel cost for any process, what loading a large binary adds (the dynamic
# loader's relocations, page faults on the first touch of its pages), and what skiff's own run
# path adds on top. Issue 18, item 4.
#
#   bench/startup.sh          (SMOKE=1 for one quick iteration)
#
# Columns: task-clock (CPU ms) and page faults are perf-stat means over RUNS runs; the loader's
# figures are glibc's own (LD_DEBUG=statistics), in cycles. Not a test: it prints, it asserts
# nothing. Needs perf (linux-perf) and busybox-static.
source "$(dirname "$0")/lib.sh"
need_apt busybox-static linux-perf binutils jq strace
build_skiff_release
RUNS=50; [ "$SMOKE" = 1 ] && RUNS=2
have_wasmtime=0; need_wasmtime && have_wasmtime=1

work=$(mktemp -d /var/tmp/skiff-bench-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
hello="$ROOT/guests/wasm/hello.wasm"
export SKIFF_HOME="$work/home"
"$SKIFF" run "$hello" >/dev/null # fills the compile cache
[ "$have_wasmtime" = 1 ] && "$WASMTIME" compile "$hello" -o "$work/hello.cwasm"

# "cpu_ms faults" for a command, perf stat's means over $RUNS runs.
measure() {
  perf stat -x, -r "$RUNS" -e task-clock,page-faults -o "$work/perf.csv" -- "$@" >/dev/null 2>&1 || {
    echo "n/a n/a"
    return
  }
  awk -F, '/task-clock/ {c=$1} /page-faults/ {f=$1} END {printf "%.2f %d\n", c, f}' "$work/perf.csv"
}
# "total_cycles relocation_cycles relative_relocations" of the dynamic loader for a command.
loader() {
  LD_DEBUG=statistics LD_DEBUG_OUTPUT="$work/ld" "$@" >/dev/null 2>&1 || true
  cat "$work"/ld.* 2>/dev/null | awk '
    /total startup time in dynamic loader/ {t=$(NF-1)}
    /time needed for relocation/ {r=$(NF-2)}
    /number of relative relocations/ {n=$NF}
    END {printf "%s %s %s\n", t ? t : "-", r ? r : "-", n ? n : "-"}'
  rm -f "$work"/ld.*
}
elf() { # "size_MB pie relocatable_ro_KiB" of a binary
  local b; b=$(readlink -f "$1")
  local size pie ro
  size=$(stat -c %s "$b" | awk '{printf "%.1f", $1 / 1e6}')
  if readelf -h "$b" | grep -q 'DYN'; then pie=yes; else pie=no; fi
  ro=0
  for hex in $(readelf -S -W "$b" | awk '$2 ~ /^\.(data\.rel\.ro|got)$/ {print $6}'); do ro=$((ro + 16#$hex)); done
  ro=$((ro / 1024))
  echo "$size $pie $ro"
}

printf '%-44s %9s %8s %13s %12s %9s\n' command cpu_ms faults loader_cycles reloc_cycles relative
row() {
  local label="$1"; shift
  read -r cpu faults < <(measure "$@")
  read -r total reloc n < <(loader "$@")
  printf '%-44s %9s %8s %13s %12s %9s\n' "$label" "$cpu" "$faults" "$total" "$reloc" "$n"
  jq -n --arg l "$label" --arg c "$cpu" --arg f "$faults" --arg t "$total" --arg r "$reloc" --arg n "$n" \
    '{label: $l, cpu_ms: $c, page_faults: $f, loader_cycles: $t, relocation_cycles: $r, relative_relocations: $n}' \
    >>"$work/rows.json"
}
row "busybox true (static: exec's floor)" /bin/busybox true
row "skiff --version (load the binary, no work)" "$SKIFF" --version
row "skiff run hello (cached)" "$SKIFF" run "$hello"
if [ "$have_wasmtime" = 1 ]; then
  row "wasmtime --version" "$WASMTIME" --version
  row "wasmtime run --allow-precompiled hello" "$WASMTIME" run --allow-precompiled "$work/hello.cwasm"
fi

echo
printf '%-10s %8s %5s %22s\n' binary size_MB pie "relocated data (KiB)"
read -r s p r < <(elf "$SKIFF"); printf '%-10s %8s %5s %22s\n' skiff "$s" "$p" "$r"
if [ "$have_wasmtime" = 1 ]; then
  read -r s p r < <(elf "$WASMTIME"); printf '%-10s %8s %5s %22s\n' wasmtime "$s" "$p" "$r"
fi

# Syscalls of one cached run: what the run path asks of the kernel.
if command -v strace >/dev/null; then
  echo
  echo "syscalls of one cached skiff run: $(strace -f -c -o "$work/strace" "$SKIFF" run "$hello" >/dev/null 2>&1; awk '$NF == "total" {print $4}' "$work/strace")"
fi

mkdir -p "$RESULTS"
jq -s --arg smoke "$SMOKE" '{scenario: "startup", smoke: ($smoke == "1"), date: (now | todate), rows: .}' \
  "$work/rows.json" >"$RESULTS/startup.json"

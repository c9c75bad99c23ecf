#!/usr/bin/env bash
# Cold start of a whole process: `skiff run` of a cached hello vs `wasmtime run` of the same
# binary precompiled vs `runc run`, `crun run` and `podman run --rm` of busybox /bin/true, side by
# side in one run; then a CPU-bound guest under skiff and wasmtime.
# Usage: bench/run.sh            (SMOKE=1 for one quick iteration)
source "$(dirname "$0")/lib.sh"
need_apt hyperfine jq runc crun busybox-static
build_skiff_release
tools="skiff runc crun"
need_wasmtime && tools="skiff wasmtime runc crun"

work=$(mktemp -d /var/tmp/skiff-bench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
hello="$ROOT/guests/wasm/hello.wasm"
export SKIFF_HOME="$work/home"
"$SKIFF" run "$hello" >/dev/null                       # fills the compile cache
[[ $tools == *wasmtime* ]] && "$WASMTIME" compile "$hello" -o "$work/hello.cwasm"
make_busybox_bundle "$work/bundle" /bin/true
need_podman "$work" && tools="$tools podman"

runs=30; warmup=5
[ "$SMOKE" = 1 ] && { runs=2; warmup=0; }
hf() { hyperfine -N --style none --warmup "$warmup" --runs "$runs" --export-json "$1" "${@:2}" >/dev/null; }

hf "$work/skiff.json"    "$SKIFF run $hello"
[[ $tools == *wasmtime* ]] && hf "$work/wasmtime.json" "$WASMTIME run --allow-precompiled $work/hello.cwasm"
hf "$work/runc.json"     "runc run -b $work/bundle skiff-bench-runc"
# crun refuses this machine's hybrid cgroups unless the unified mount is hidden (notes/machine.md).
hf "$work/crun.json"     "unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run -b $work/bundle skiff-bench-crun'"
[[ $tools == *podman* ]] && hf "$work/podman.json" "podman run --rm --network none $PODMAN_IMAGE /bin/true"

printf '\n%-10s %10s %10s %10s\n' tool median_ms min_ms max_ms
for t in $tools; do
  jq -r --arg t "$t" '.results[0] | [$t, (.median*1000|.*100|round/100), (.min*1000|.*100|round/100), (.max*1000|.*100|round/100)] | @tsv' "$work/$t.json" \
    | awk '{printf "%-10s %10s %10s %10s\n", $1, $2, $3, $4}'
done
echo
[[ $tools == *wasmtime* ]] && echo "skiff / wasmtime run (precompiled): $(ratio "$work/skiff.json" "$work/wasmtime.json")  (target <= 0.9)"
echo "skiff / runc run /bin/true:         $(ratio "$work/skiff.json" "$work/runc.json")  (target <= 0.1)"
echo "skiff / crun run /bin/true:         $(ratio "$work/skiff.json" "$work/crun.json")"
[[ $tools == *podman* ]] && echo "skiff / podman run --rm /bin/true:  $(ratio "$work/skiff.json" "$work/podman.json")"

# A CPU-bound guest (guests/wasm/busy.wasm: 10^9 multiply-adds, no host call, exit 61), both on
# cached code: what a foreground run costs wasm code (skiff compiles it without epoch checks when
# there is no --timeout). Target: skiff <= 1.02x wasmtime.
busy="$ROOT/guests/wasm/busy.wasm"
"$SKIFF" run "$busy" || [ $? = 61 ] || { echo "busy.wasm did not exit 61" >&2; exit 1; }
[[ $tools == *wasmtime* ]] && "$WASMTIME" compile "$busy" -o "$work/busy.cwasm"
cpu_runs=10; [ "$SMOKE" = 1 ] && cpu_runs=1
hfi() { hyperfine -N -i --style none --warmup 1 --runs "$cpu_runs" --export-json "$1" "${@:2}" >/dev/null; }
hfi "$work/skiff-cpu.json" "$SKIFF run $busy"
[[ $tools == *wasmtime* ]] && hfi "$work/wasmtime-cpu.json" "$WASMTIME run --allow-precompiled $work/busy.cwasm"
# On a shared machine wall time mostly measures the scheduler; user CPU is what the guest's code
# costs, so the ratio is taken on it (hyperfine's mean user seconds).
echo
printf '%-15s %10s %10s\n' "" median_ms user_ms
for t in skiff wasmtime; do
  [ -f "$work/$t-cpu.json" ] || continue
  jq -r --arg t "$t busy" '.results[0] | [$t, (.median*1000|round), (.user*1000|round)] | @tsv' "$work/$t-cpu.json" \
    | awk -F'\t' '{printf "%-15s %10s %10s\n", $1, $2, $3}'
done
if [[ $tools == *wasmtime* ]]; then
  cpu_ratio=$(jq -n --slurpfile a "$work/skiff-cpu.json" --slurpfile b "$work/wasmtime-cpu.json" \
    '($a[0].results[0].user / $b[0].results[0].user) * 1000 | round / 1000')
  echo "skiff / wasmtime, CPU-bound guest (user CPU): $cpu_ratio  (target <= 1.02)"
fi

mkdir -p "$RESULTS"
{
  for t in $tools; do jq --arg t "$t" '{($t): .results[0]}' "$work/$t.json"; done
  for t in skiff wasmtime; do
    if [ -f "$work/$t-cpu.json" ]; then
      jq --arg t "$t" '{cpu_bound: {($t): .results[0]}}' "$work/$t-cpu.json"
    fi
  done
} | jq -s --arg smoke "$SMOKE" 'reduce .[] as $x ({}; . * $x) + {scenario: "cold-run", smoke: ($smoke == "1"), date: (now | todate)}' \
  > "$RESULTS/run.json"

#!/usr/bin/env bash
# Pod churn through containerd's CRI plugin, skiff pods and runc pods measured the same way:
# PODS pods (default 200) created, started, answering HTTP, stopped and removed, BATCH (20) at a
# time; afterwards nothing of any pod may be left (shim, mount, netns, CNI IP, task state).
# Prints per handler the median time from RunPodSandbox to the first HTTP 200 and the resident
# memory per pod (the shim and its processes). Runs the test build of
# crates/containerd-shim-skiff/tests/cri.rs (debug build of our crates; dependencies optimised).
#
#   bench/cri-churn.sh               200 pods, 20 at a time
#   PODS=20 BATCH=5 bench/cri-churn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/target-dir.sh
SKIFF_CRI_CHURN_PODS="${PODS:-200}" SKIFF_CRI_CHURN_BATCH="${BATCH:-20}" \
  cargo test -q --workspace --locked --test cri churn_of_http_pods_leaves_nothing_behind -- --nocapture 2>&1 \
  | grep -E '^churn |test result|panicked|FAILED|left behind' 

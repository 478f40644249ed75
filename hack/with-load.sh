#!/usr/bin/env bash
# hack/with-load.sh N CMD...: run CMD with N busy loops beside it, as a second build on CI's two cores
# would be; the loops stop when CMD ends, however it ends (each also stops by itself once this script
# is gone, even SIGKILLed). N=0 runs CMD alone.
set -euo pipefail
n="${1:-0}"; shift
me=$$
hogs=()
for ((i = 0; i < n; i++)); do
  ( trap - INT TERM; while kill -0 "${me}" 2>/dev/null; do :; done ) &
  hogs+=($!)
done
stop() { ((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
((n == 0)) || echo "[load] ${n} busy loop(s) beside the tests: pids ${hogs[*]}" >&2
rc=0
"$@" || rc=$?
exit "${rc}"

#!/usr/bin/env bash
# Checks a failover model with Spin: generates the verifier (spin -a), compiles it, runs an
# exhaustive safety search and reports what it found.
#
#   tests/model/check.sh registry                      # must say "errors: 0"
#   tests/model/check.sh --expect-violation registry -DDELAY=5
#   tests/model/check.sh etcd -DW=2                    # any -D overrides a model parameter
#   tests/model/check.sh --work-dir /tmp/m etcd        # where pan.* and the trail go
#
# Exit status: 0 when the result is the expected one (no violation, or with
# --expect-violation a violation and its trail), 1 otherwise, 2 on a usage or tool error.
# Generated files go to a temporary directory (removed afterwards) or --work-dir, never into
# the source tree. Needs spin (Debian `spin`) and a C compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
expect_violation=0
work_dir=""
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --expect-violation) expect_violation=1; shift ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
model="$1"; shift
defines=("$@")
for d in "${defines[@]}"; do
  [[ "$d" == -D* ]] || { echo "check.sh: not a -D option: $d" >&2; exit 2; }
done
pml="$here/$model.pml"
[ -f "$pml" ] || { echo "check.sh: no model $pml" >&2; exit 2; }
command -v spin >/dev/null || { echo "check.sh: spin is not installed (Debian: apt-get install spin)" >&2; exit 2; }
cc="${CC:-cc}"
command -v "$cc" >/dev/null || { echo "check.sh: no C compiler ($cc)" >&2; exit 2; }

if [ -z "$work_dir" ]; then
  work_dir="$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-model.XXXXXX")"
  trap 'rm -rf "$work_dir"' EXIT
else
  mkdir -p "$work_dir"
fi
cd "$work_dir"
cp "$here"/*.pml .

echo "model: $model ${defines[*]:-(defaults)}"
spin "${defines[@]}" -a "$model.pml" >spin.log 2>&1 || { cat spin.log >&2; exit 2; }
# SAFETY: assertions only (no cycles); COLLAPSE: compressed state storage; MEMLIM in MB
# (FULCRUM_MODEL_MEMLIM_MB, default 2048: the long variants in docs/master-slave.md need more).
"$cc" -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM="${FULCRUM_MODEL_MEMLIM_MB:-2048}" -o pan pan.c
# -E: the processes loop forever, so no end state is "invalid"; -m: depth limit; -c1: stop at
# the first violation; -n: no list of unreached code.
start=$(date +%s.%N)
./pan -E -m2000000 -c1 -n >pan.out 2>&1 || true
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
grep -E "^pan:|State-vector|states, stored|transitions|Search not completed|total actual memory" pan.out || true
echo "time: ${elapsed} s (pan's own figure: $(sed -n 's/^pan: elapsed time //p' pan.out))"

errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out)
if [ -z "$errors" ]; then
  echo "check.sh: pan did not finish:" >&2
  cat pan.out >&2
  exit 2
fi
incomplete=0
grep -qE "Search not completed|max search depth too small|reached -DMEMLIM bound" pan.out && incomplete=1

if [ "$errors" != 0 ]; then
  echo "VIOLATION: $(grep -m1 -E 'assertion violated' pan.out | sed 's/^pan:1: //')"
  # The counterexample, as the steps that changed something (spin -t replays the trail).
  spin "${defines[@]}" -t -p -g "$model.pml" >trail.txt 2>&1 || true
  grep -E "^spin: (.*Error|text of failed|trail ends)" trail.txt || true
  echo "(the whole counterexample: spin ${defines[*]} -t -p -g $model.pml in $work_dir, with --work-dir)"
  if [ "$expect_violation" = 1 ]; then
    echo "OK: the checker found the expected violation"
    exit 0
  fi
  echo "FAIL: a property is violated" >&2
  exit 1
fi

if [ "$incomplete" = 1 ]; then
  echo "FAIL: the search did not complete (raise MEMLIM or shrink the model)" >&2
  exit 1
fi
if [ "$expect_violation" = 1 ]; then
  echo "FAIL: expected a violation, the search found none" >&2
  exit 1
fi
echo "OK: errors: 0, every reachable state checked"

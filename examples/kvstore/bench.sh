#!/usr/bin/env bash
# Write throughput and latency of the kvstore with 0, 1 and 2 in-sync slaves: for each k,
# a fresh fulcrum-registry and k+1 kvstore_server replicas (--min_insync_replicas=k) on
# 127.0.0.1, then kvstore_load against the master. Every process is stopped by its PID.
#
#   examples/kvstore/bench.sh [build dir] [threads] [seconds]
set -euo pipefail
build=${1:-build}
threads=${2:-8}
seconds=${3:-10}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo token > "$work/token"

# Starts a process whose stdout says "LISTENING <port>"; sets $listening to the port.
start() {
  local log=$1
  shift
  rm -f "$log.out"
  "$@" > "$log.out" 2> "$log" &
  pids+=($!)
  for _ in $(seq 200); do
    if grep -q LISTENING "$log.out" 2>/dev/null; then
      listening=$(awk '/LISTENING/ {print $2; exit}' "$log.out")
      return
    fi
    sleep 0.05
  done
  echo "did not start: $*" >&2
  cat "$log" >&2
  exit 1
}

for k in 0 1 2; do
  rm -rf "$work/data"
  first=${#pids[@]}
  start "$work/registry-$k.log" "$build/registry/fulcrum-registry" --port=0 \
    --data_dir="$work/data" --token_file="$work/token"
  port=$listening
  for i in $(seq 0 "$k"); do
    start "$work/server-$k-$i.log" "$build/examples/kvstore/kvstore_server" \
      --registry="127.0.0.1:$port" --token_file="$work/token" --min_insync_replicas="$k" \
      --group=bench
  done
  sleep 2  # a master elected and its slaves in sync
  echo -n "in-sync slaves required: $k, replicas: $((k + 1)), threads: $threads: "
  "$build/examples/kvstore/kvstore_load" --registry="127.0.0.1:$port" --threads="$threads" \
    --seconds="$seconds" 2> "$work/load.log" || { cat "$work/load.log" >&2; }
  for pid in "${pids[@]:$first}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:$first}"; do wait "$pid" 2>/dev/null || true; done
  pids=("${pids[@]:0:$first}")
done

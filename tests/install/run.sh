#!/usr/bin/env bash
# The install test: Fulcrum as a user outside its tree gets it.
#
#   tests/install/run.sh                    # what scripts/test.sh runs as its own stage
#   tests/install/run.sh --jobs 1 --keep    # one compile job; keep the scratch folder
#   tests/install/run.sh --build-dir DIR    # default: build-install/ at the repository root
#
# Runs alone, without ctest (needs the packages scripts/setup.sh installs):
#  1. configures and builds a Release build of Fulcrum with FULCRUM_WERROR=ON and no tests,
#     benchmarks or examples (in DIR/fulcrum, reused between runs), and installs it into a fresh
#     temporary prefix;
#  2. checks the prefix: fulcrum-gen, fulcrum-registry, fulcrumctl, the runtime, both discovery
#     libraries, the registry IDL library, the package config and its version file, every public
#     header, and no other header (nothing from src/ or the daemon);
#  3. copies tests/install/project/ out of the tree and builds it with -DCMAKE_PREFIX_PATH=<prefix>
#     alone (find_package(Fulcrum 0.1 COMPONENTS fulcrum etcd registry)), then checks that
#     nothing in its build or in the installed package refers to the source or build tree;
#  4. starts the installed fulcrum-registry on 127.0.0.1 (--port=0; the port is read back from
#     its "LISTENING <port>" line), two of the project's servers that register over fulcrum://
#     (ports chosen by the OS, read back the same way), waits until the installed
#     `fulcrumctl show Inventory` lists both, runs the project's client over fulcrum:// (every
#     answer checked, both replicas must answer), and stops the servers with SIGTERM (each must
#     drain and exit 0).
# Every process it starts is stopped by its PID on exit, and every wait is bounded. Exits
# non-zero, saying why and showing the logs, if anything is missing or wrong.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="$root/build-install"
jobs=$(nproc)
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$(realpath -m "$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

fulcrum_build="$build/fulcrum"
scratch=$(mktemp -d /tmp/fulcrum-install.XXXXXX)
prefix="$scratch/prefix"
project_src="$scratch/project"
project_build="$scratch/project-build"
run="$scratch/run"
mkdir -p "$run"

pids=()
stop_pid() {  # stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; reaps it.
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
failed=1
cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ "$failed" -ne 0 ]; then
    for log in "$run"/*.log "$run"/*.out; do
      [ -s "$log" ] || continue
      echo "---- $log (last 30 lines)"
      tail -n 30 "$log"
    done
  fi
  if [ "$keep" -eq 1 ] || [ "$failed" -ne 0 ]; then
    echo "install test: scratch folder kept: $scratch"
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT
fail() {
  echo "install test FAILED: $*" >&2
  exit 1
}
step() { printf '\n---- install test: %s\n' "$*"; }

# wait_for_line FILE REGEX SECONDS PID: until FILE has a line matching REGEX; fails if PID exits.
wait_for_line() {
  local file=$1 regex=$2 deadline=$((SECONDS + $3)) pid=$4
  while [ "$SECONDS" -lt "$deadline" ]; do
    if grep -Eq "$regex" "$file" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || fail "process $pid ($file) exited before printing '$regex'"
    sleep 0.1
  done
  fail "no '$regex' in $file after $3 s"
}

step "Release build of Fulcrum (FULCRUM_WERROR=ON) in $fulcrum_build"
cmake -S "$root" -B "$fulcrum_build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFULCRUM_BUILD_TESTS=OFF -DFULCRUM_BUILD_BENCH=OFF -DFULCRUM_BUILD_EXAMPLES=OFF \
  -DFULCRUM_WERROR=ON -DFULCRUM_SANITIZE= >/dev/null
cmake --build "$fulcrum_build" -j "$jobs"

step "cmake --install into $prefix"
cmake --install "$fulcrum_build" --prefix "$prefix" >"$run/install.out"

step "the prefix holds every deliverable"
libdir=""
for d in lib lib64 "lib/$(gcc -dumpmachine)"; do
  if [ -f "$prefix/$d/libfulcrum_runtime.a" ]; then libdir=$d; break; fi
done
[ -n "$libdir" ] || fail "libfulcrum_runtime.a is not installed"
for f in bin/fulcrum-gen bin/fulcrum-registry bin/fulcrumctl \
         "$libdir/libfulcrum_runtime.a" "$libdir/libfulcrum_registry_thrift.a" \
         "$libdir/libfulcrum_discovery_fulcrum.a" "$libdir/libfulcrum_discovery_etcd.a" \
         "$libdir/cmake/Fulcrum/FulcrumConfig.cmake" "$libdir/cmake/Fulcrum/FulcrumConfigVersion.cmake" \
         "$libdir/cmake/Fulcrum/FulcrumTargets.cmake" "$libdir/cmake/Fulcrum/FulcrumFulcrumTargets.cmake" \
         "$libdir/cmake/Fulcrum/FulcrumEtcdTargets.cmake" "$libdir/cmake/Fulcrum/FulcrumRegistryTargets.cmake" \
         "$libdir/cmake/Fulcrum/FulcrumThrift.cmake" "$libdir/cmake/Fulcrum/FulcrumThriftGen.cmake" \
         "$libdir/cmake/Fulcrum/FulcrumDeps.cmake" \
         include/fulcrum/idl/Registry.h include/fulcrum/idl/registry_types.h; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
for f in bin/fulcrum-gen bin/fulcrum-registry bin/fulcrumctl; do
  [ -x "$prefix/$f" ] || fail "$f is not executable"
done
# Public headers: every one in the source's public include folders is installed...
public_dirs=("$root/runtime/include" "$root/codegen/include" "$root"/runtime/discovery/*/include)
for dir in "${public_dirs[@]}"; do
  while IFS= read -r h; do
    [ -f "$prefix/include/$h" ] || fail "public header $h is not installed"
  done < <(cd "$dir" && find . -name '*.h' | sed 's|^\./||')
done
# ...and nothing else is, but the registry IDL's generated headers.
while IFS= read -r h; do
  case "$h" in fulcrum/idl/*) continue ;; esac
  found=0
  for dir in "${public_dirs[@]}"; do [ -f "$dir/$h" ] && found=1; done
  [ "$found" -eq 1 ] || fail "include/$h is installed but is not a public header"
done < <(cd "$prefix/include" && find . -type f | sed 's|^\./||')

step "an outside project, with CMAKE_PREFIX_PATH=$prefix only"
cp -r "$root/tests/install/project" "$project_src"
cmake -S "$project_src" -B "$project_build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$prefix" >"$run/project-configure.out"
cmake --build "$project_build" -j "$jobs"
fulcrum_dir=$(sed -n 's/^Fulcrum_DIR:PATH=//p' "$project_build/CMakeCache.txt")
[ "$fulcrum_dir" = "$prefix/$libdir/cmake/Fulcrum" ] ||
  fail "the project found Fulcrum in '$fulcrum_dir', not in the prefix"
printf '%s\n%s\n' "$prefix/bin/fulcrum-registry" "$prefix/bin/fulcrumctl" |
  cmp -s - "$project_build/tools.txt" ||
  fail "Fulcrum::fulcrum-registry/fulcrumctl are not the prefix's: $(tr '\n' ' ' <"$project_build/tools.txt")"
# No path into the source or the build tree, in the project's build or the installed package.
for tree in "$root" "$fulcrum_build"; do
  if hits=$(grep -rIl --exclude-dir=.git -F "$tree" "$project_build" "$prefix/$libdir/cmake" \
            "$prefix/include"); then
    fail "these files refer to $tree: $hits"
  fi
done

step "installed fulcrum-registry, two outside servers over fulcrum://, fulcrumctl, the client"
"$prefix/bin/fulcrum-registry" --host=127.0.0.1 --port=0 --data_dir="$run/registry-data" \
  >"$run/registry.out" 2>"$run/registry.log" &
pids+=($!)
registry_pid=$!
wait_for_line "$run/registry.out" '^LISTENING [0-9]+$' 20 "$registry_pid"
registry_port=$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$run/registry.out" | head -n 1)
echo "fulcrum-registry (pid $registry_pid) on 127.0.0.1:$registry_port"

server_pids=()
server_ports=()
for id in replica-1 replica-2; do
  "$project_build/inventory_server" "fulcrum://127.0.0.1:$registry_port" "$id" \
    >"$run/$id.out" 2>"$run/$id.log" &
  pids+=($!)
  server_pids+=($!)
  wait_for_line "$run/$id.out" '^LISTENING [0-9]+$' 20 "$!"
  port=$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$run/$id.out" | head -n 1)
  server_ports+=("$port")
  echo "inventory_server $id (pid $!) on 127.0.0.1:$port"
done

ctl=("$prefix/bin/fulcrumctl" "--registry=127.0.0.1:$registry_port" --timeout_ms=2000)
deadline=$((SECONDS + 20))
while :; do
  timeout 10 "${ctl[@]}" show Inventory >"$run/fulcrumctl.out" 2>"$run/fulcrumctl.log" || true
  listed=0
  for port in "${server_ports[@]}"; do
    if grep -Eq "^127\.0\.0\.1:$port +UP( |$)" "$run/fulcrumctl.out"; then
      listed=$((listed + 1))
    fi
  done
  if [ "$listed" -eq "${#server_ports[@]}" ]; then break; fi
  [ "$SECONDS" -lt "$deadline" ] ||
    fail "fulcrumctl show Inventory does not list both servers UP: $(cat "$run/fulcrumctl.out")"
  sleep 0.2
done
cat "$run/fulcrumctl.out"

timeout 60 "$project_build/inventory_client" "fulcrum://127.0.0.1:$registry_port/Inventory" 200 2 \
  >"$run/client.out" 2>"$run/client.log" || fail "inventory_client failed (exit $?)"
grep -q '^inventory_client OK: 200 calls answered correctly by 2 replica(s)$' "$run/client.out" ||
  fail "inventory_client did not report success"
cat "$run/client.out"

# A server told to stop deregisters, drains and exits 0.
for pid in "${server_pids[@]}"; do
  kill -TERM "$pid"
  deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "inventory_server $pid did not stop within 15 s of SIGTERM"
  fi
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "inventory_server $pid exited $rc after SIGTERM"
done

failed=0
echo
echo "install test passed: installed prefix $prefix, outside project, registry, client, fulcrumctl"

#!/usr/bin/env bash
# Installs every Debian package Fulcrum needs, then configures and builds it.
#
#   scripts/setup.sh                         # packages + the default build in build/
#   scripts/setup.sh --build-dir build-asan --sanitize address,undefined --target fulcrum_unit_tests
#   scripts/setup.sh --werror                # warnings are errors (what scripts/test.sh and CI use)
#   scripts/setup.sh --packages-only
#
# Idempotent and quick when everything is installed and built. Non-interactive.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"
sanitize=""
build_type="RelWithDebInfo"
targets=()
packages_only=0
werror=OFF

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$(realpath -m "$2"); shift 2 ;;
    --sanitize) sanitize="$2"; shift 2 ;;
    --build-type) build_type="$2"; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --werror) werror=ON; shift ;;
    --packages-only) packages_only=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "setup.sh: unknown option '$1'" >&2; usage 2 ;;
  esac
done

# The packages, by what they are for.
packages=(
  g++ cmake ninja-build pkg-config             # toolchain
  thrift-compiler libthrift-dev libevent-dev    # Apache Thrift 0.17 (+ libevent for thriftnb)
  libboost-dev libssl-dev                       # Boost, OpenSSL (TLS: Thrift's TSSLSocket, etcd's https)
  libgoogle-glog-dev libgflags-dev              # logging, flags
  libgtest-dev libgmock-dev googletest          # tests
  libbenchmark-dev                              # micro-benchmarks
  nlohmann-json3-dev                            # fulcrum-gen reads the compiler's JSON
  spin                                          # model checker: tests/model (ctest -L model)
  python3-thrift                                # stock Python servers the tests call
  # etcd: the etcd discovery library's tests; openssl makes their (and the registry's)
  # throwaway TLS certificates
  etcd-server openssl
  # metrics (prometheus-cpp), and the observability tests' real Prometheus and headless browser
  prometheus-cpp-dev prometheus chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$packages_only" -eq 1 ] && exit 0

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DFULCRUM_SANITIZE="$sanitize" -DFULCRUM_WERROR="$werror" >/dev/null
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$build_dir" --target "${targets[@]}"
else
  cmake --build "$build_dir"
fi

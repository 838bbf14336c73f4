#!/usr/bin/env bash
# Sets up and runs the whole test suite:
#   1. the default build, every test (unit, integration, stress, codegen, registry, etcd against a
#      real etcd) via ctest;
#   2. the install test (tests/install/run.sh): a Release build installed into a temporary
#      prefix, an outside project built against that prefix alone, run against the installed
#      fulcrum-registry and checked with the installed fulcrumctl;
#   3. the unit tests (runtime's and the etcd discovery library's) again under AddressSanitizer +
#      UndefinedBehaviorSanitizer;
#   4. the concurrency stress tests, the registry's in-process tests (store, watches,
#      registrar and resolver against an in-process daemon) and the etcd discovery library's tests,
#      under ThreadSanitizer.
# Every build has warnings as errors (FULCRUM_WERROR=ON). Installs its own dependencies
# (scripts/setup.sh). Exits non-zero on any failure.
#
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # step 1 only
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc)

step() { printf '\n==== %s\n' "$*"; }

step "build (default)"
"$root/scripts/setup.sh" --werror --build-dir "$root/build"
step "ctest (default build)"
(cd "$root/build" && ctest --output-on-failure -j "$jobs" --timeout 600)

[ "$quick" -eq 1 ] && exit 0

step "install test (Release build in build-install/, installed, used from outside)"
"$root/tests/install/run.sh" --build-dir "$root/build-install" --jobs "$jobs"

step "build (address,undefined)"
"$root/scripts/setup.sh" --werror --build-dir "$root/build-asan" --sanitize address,undefined \
  --build-type Debug --target fulcrum_unit_tests --target fulcrum_etcd_unit_tests
step "unit tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$root/build-asan/tests/fulcrum_unit_tests" --gtest_brief=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$root/build-asan/tests/discovery/etcd/fulcrum_etcd_unit_tests" --gtest_brief=1

step "build (thread)"
"$root/scripts/setup.sh" --werror --build-dir "$root/build-tsan" --sanitize thread \
  --build-type RelWithDebInfo --target fulcrum_stress_tests --target fulcrum_registry_tests \
  --target fulcrum_etcd_tests
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp"
step "stress tests under TSan"
"$root/build-tsan/tests/fulcrum_stress_tests" --gtest_brief=1
step "registry tests under TSan (in-process ones; the multi-process ones ran in step 1)"
"$root/build-tsan/tests/registry/fulcrum_registry_tests" --gtest_brief=1 \
  --gtest_filter='-EndToEndTest.*:RegistryProcessTest.*'
step "etcd discovery tests under TSan (registrar and resolver threads against a real etcd)"
"$root/build-tsan/tests/discovery/etcd/fulcrum_etcd_tests" --gtest_brief=1

echo
echo "all test stages passed"

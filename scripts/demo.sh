#!/usr/bin/env bash
# Sets up (packages, build) and runs the demo: fulcrum-registry and calculator servers on
# 127.0.0.1, a balanced client under load, one server SIGKILLed part-way. Extra arguments go to
# the demo, e.g.
#   scripts/demo.sh --balancer=round_robin --seconds=10
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --build-dir "$root/build" --target fulcrum_demo
exec "$root/build/examples/demo/fulcrum_demo" "$@"

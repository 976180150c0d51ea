#!/usr/bin/env bash
# Installs dependencies, builds lpd and runs the whole test suite (unit and
# end-to-end). Usage: scripts/test.sh [default|asan]
set -euo pipefail
preset="${1:-default}"
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" --timeout 600

#!/usr/bin/env bash
# Installs dependencies, builds lpd, starts the daemon (unless one already
# answers) and shows its status. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default
if ! build/default/lpctl status >/dev/null 2>&1; then
  build/default/lpd start
fi
build/default/lpctl status

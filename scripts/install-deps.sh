#!/usr/bin/env bash
# Installs everything lpd needs to build and test, from Debian 12 packages only.
# Idempotent: when every package is already installed it does nothing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-filesystem1.81-dev libboost-regex1.81-dev
  libicu-dev  # issue 14: readiness patterns as Unicode text (boost::u32regex)
  nlohmann-json3-dev libspdlog-dev libfmt-dev catch2 libcli11-dev
  libsystemd-dev systemd libgtest-dev
  python3 python3-dev python3-pytest python3-pytest-xdist python3-pytest-timeout python3-pytest-xprocess
  python3-pytest-rerunfailures  # issue 12: flaky reruns reported once (tests/e2e/test_shim_outcomes.py)
  socat procps dpkg-dev passwd
  # issue 16: the WebSocket client of the HTTP API's tests, and the browser of the dashboard's
  # test (tests/e2e/test_dashboard.py drives headless chromium over the DevTools protocol)
  python3-websockets chromium
  # fuzzing (scripts/fuzz.sh): clang 14 and its runtime, which holds libFuzzer
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# The newcomer's path, checked end to end: clones this repository (its HEAD)
# into a fresh directory only root may enter (`mktemp -d`, mode 0700, as a
# clone in /root would be) and runs the README's two quick-start commands
# there: `bash scripts/try.sh` (twice: it must be idempotent), `lpd stop`,
# then `bash scripts/test.sh` and `bash scripts/fuzz.sh 1`. Slow (a full build and the whole suite: 16
# minutes on a loaded 2-core VM, 3 with a warm ccache), so it is a job of its
# own, not part of ctest.
#
# Usage: scripts/clone-check.sh [--with-local-changes] [--keep]
#   --with-local-changes  also carry this work tree's uncommitted changes and
#                         untracked (not ignored) files into the clone
#   --keep                leave the clone (and its logs) in place afterwards
# The clone's lpd listens on a socket inside the clone and keeps its state
# there (LPD_SOCKET, LPD_STATE_DIR), apart from any lpd already running.
# Where ccache is installed the build uses it (speed only).
# Exit 0 when every step passed; otherwise the failing step is named and
# its log kept.
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
with_local=0
keep=0
for arg in "$@"; do
  case "$arg" in
    --with-local-changes) with_local=1 ;;
    --keep) keep=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "clone-check: unknown argument $arg (see --help)" >&2; exit 64 ;;
  esac
done

where="$(mktemp -d)"  # 0700: throwaway users may not enter it
clone="$where/lpd"
logs="$where/logs"
mkdir -p "$logs"
finish() {
  local code=$?
  # A daemon the clone's try.sh started must not outlive the check.
  if [ -x "$clone/build/default/lpd" ]; then
    "$clone/build/default/lpd" stop >/dev/null 2>&1 || true
  fi
  if [ "$code" -eq 0 ] && [ "$keep" -eq 0 ]; then
    rm -rf "$where"
  else
    echo "clone-check: clone and logs kept in $where" >&2
  fi
}
trap finish EXIT

echo "clone-check: cloning $source_dir into $clone (directory mode $(stat -c %a "$where"))"
git clone --quiet "$source_dir" "$clone"
if [ "$with_local" -eq 1 ]; then
  (cd "$source_dir" && git diff HEAD --binary) | (cd "$clone" && git apply --whitespace=nowarn --allow-empty)
  (cd "$source_dir" && git ls-files -z --others --exclude-standard) |
    (cd "$source_dir" && xargs -0 -r cp --parents -t "$clone")
  echo "clone-check: carried the work tree's uncommitted changes into the clone"
fi

export LPD_SOCKET="$clone/build/lpd.sock" LPD_STATE_DIR="$clone/build/lpd-state"
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="$clone" CCACHE_NOHASHDIR=1
fi

step() {  # step NAME COMMAND...: runs it in the clone, its output in logs/NAME.log
  local name="$1"
  shift
  local started=$SECONDS
  echo "clone-check: $name: $*"
  if (cd "$clone" && "$@") >"$logs/$name.log" 2>&1; then
    echo "clone-check: $name passed ($((SECONDS - started)) s)"
  else
    local code=$?
    echo "clone-check: $name FAILED (exit $code, $((SECONDS - started)) s); the end of $logs/$name.log:" >&2
    tail -n 60 "$logs/$name.log" >&2
    exit 1
  fi
}

step try bash scripts/try.sh
step try-again bash scripts/try.sh
step lpd-stop build/default/lpd stop
step test env -u LPD_SOCKET -u LPD_STATE_DIR bash scripts/test.sh
# CI also builds and runs the fuzz targets (.ci/run); their source list is
# kept by hand (fuzz/CMakeLists.txt), so a parser's new dependency breaks
# only that build. One second a target is enough to see it link and start.
step fuzz bash scripts/fuzz.sh 1
echo "clone-check: the README's quick start and the fuzz build passed in a fresh 0700 clone"

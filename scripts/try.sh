#!/usr/bin/env bash
# The quick start: installs dependencies, builds lpd, starts the daemon
# (unless one already answers), then shows lpd's main job on the sample
# project in examples/ (examples/run-sample.sh): a pytest suite under
# `lpctl run` where two tests share a helper server lpd starts once, a
# failing test pauses and is resumed from outside with a reason, the last
# test segfaults and lpd pins the crash on it with its traceback, and lpd
# writes a JUnit report. It ends with what happened, where to look, and how
# to stop the daemon (`lpd stop`). Every wait is on an event from lpd. Safe
# to run again, from any directory. Exit 0 when the sample behaved as
# described.
# $LPD_SOCKET (and $LPD_STATE_DIR, for a daemon it starts) choose another
# daemon than the default one (scripts/clone-check.sh keeps apart that way).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default

bin="$repo/build/default"
if ! "$bin/lpctl" status >/dev/null 2>&1; then
  "$bin/lpd" start ${LPD_STATE_DIR:+--state-dir "$LPD_STATE_DIR"}
else
  # A daemon already answers: say so when it is not this build's (an older
  # build, replaced since: its executable reads "(deleted)"), rather than
  # show the sample on it silently. It may serve others: not stopped here.
  pid="$("$bin/lpctl" --json status | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin).get("pid", ""))')"
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  if [ -n "$exe" ] && [ "$exe" != "$(readlink -f "$bin/lpd")" ]; then
    echo "try.sh: note: the lpd already running (pid $pid) is $exe, not this build's $bin/lpd;" \
         "the sample runs on it. To try this build's daemon: $bin/lpd stop, then run this again." >&2
  fi
fi
exec bash examples/run-sample.sh "$bin" "$bin/try"

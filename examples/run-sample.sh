#!/usr/bin/env bash
# Runs the sample project (examples/sample-suite) under an lpd that is
# already running, as scripts/try.sh does once it has built lpd:
#   1. lpctl run --detach --pause-on-failure --junit ... -- pytest
#   2. lpctl watch: waits (an event from lpd) for the failing test's pause,
#      then lpctl resume ... --failure-reason: lets it go on, with a reason
#   3. lpctl attach: the run's output, replayed and followed to its end
#   4. lpctl crashes -v: the crash lpd pinned on test_3_crash.py::test_segfault,
#      with its traceback
# then checks that each of those happened (the JUnit file, lpd's crash
# records, the pause) and prints where to look and how to stop lpd.
#
# Usage: examples/run-sample.sh BIN_DIR OUT_DIR
#   BIN_DIR  holds lpd and lpctl (build/default)
#   OUT_DIR  gets sample-junit.xml (made if missing)
# The daemon is lpctl's default one, or $LPD_SOCKET's. Exit 0 when the
# sample behaved as described, 1 when it did not (PROBLEM lines say how).
set -euo pipefail
if [ $# -ne 2 ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 64
fi
bin="$(cd "$1" && pwd)"
mkdir -p "$2"
out="$(cd "$2" && pwd)"
sample="$(cd "$(dirname "$0")/sample-suite" && pwd)"
lpd="$bin/lpd"
lpctl="$bin/lpctl"
python=/usr/bin/python3  # the interpreter scripts/install-deps.sh gave pytest to
junit="$out/sample-junit.xml"
reason="resumed by examples/run-sample.sh: the sample's total is wrong on purpose"

say() { printf '\n== %s\n' "$*"; }
json_field() {  # json_field EXPR: EXPR evaluated on the JSON document on stdin (as `d`)
  "$python" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

status="$("$lpctl" --json status)"
socket="$(json_field 'd["socket"]' <<<"$status")"
state_dir="$(json_field 'd["state_dir"]' <<<"$status")"
rm -f "$junit"
export PYTHONDONTWRITEBYTECODE=1  # the sample leaves the clone as it was

say "lpctl run --detach --pause-on-failure --junit $junit -- pytest (in $sample)"
run_id="$("$lpctl" run --detach --name sample --pause-on-failure --junit "$junit" --cwd "$sample" \
  -- "$python" -m pytest)"
echo "run $run_id started"

say "waiting for the failing test to pause: lpctl watch --run-id $run_id"
if ! pause="$("$lpctl" --json watch --run-id "$run_id" --timeout 600)"; then
  echo "run-sample: run $run_id ended (or lpd failed) before its failing test paused; its output:" >&2
  "$lpctl" attach "$run_id" >&2 || true
  exit 1
fi
pause_id="$(json_field 'd["pause_id"]' <<<"$pause")"
paused_test="$(json_field 'd["nodeid"]' <<<"$pause")"
echo "paused: $paused_test (pause $pause_id); resuming it:"
"$lpctl" resume "$pause_id" --failure-reason "$reason"

say "the run's output: lpctl attach $run_id (replayed, then followed to its end)"
run_code=0
# In a subshell whose stderr is dropped (lpctl's own goes to fd 3): lpctl
# ends by the run's signal, and bash would add a "Segmentation fault" line
# that reads as if lpctl had crashed.
( "$lpctl" attach "$run_id" 2>&3; exit $? ) 3>&2 2>/dev/null || run_code=$?
if [ "$run_code" = 64 ] || [ "$run_code" = 2 ]; then
  echo "run-sample: lpctl attach failed (exit $run_code)" >&2
  exit 1
fi

say "the crash lpd pinned: lpctl crashes -v --run-id $run_id"
"$lpctl" crashes -v --run-id "$run_id"

# What happened, read back from lpd and from the JUnit file, and checked.
pause_after="$("$lpctl" --json ls -a --run-id "$run_id")"
crashes="$("$lpctl" --json crashes --run-id "$run_id")"
ok=1
summary="$("$python" - "$junit" "$crashes" "$pause_after" "$pause_id" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET

junit, crashes, pauses, pause_id = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
problems = []
outcome = {}
try:
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome[case.get("name")] = kinds[0] if kinds else "passed"
except (OSError, ET.ParseError) as e:
    problems.append(f"no readable JUnit report: {e}")
expected = {"test_helper_first_visit": ("passed",), "test_helper_reused": ("passed",),
            "test_total_is_wrong": ("failure",), "test_segfault": ("failure", "error")}
for name, allowed in expected.items():
    if outcome.get(name) not in allowed:
        problems.append(f"{name} is {outcome.get(name, 'missing')} in the JUnit, not {' or '.join(allowed)}")
pinned = [c.get("nodeid") for c in crashes]
if pinned != ["test_3_crash.py::test_segfault"]:
    problems.append(f"crashes pinned on {pinned}, not on test_3_crash.py::test_segfault alone")
elif "read_through_null" not in (crashes[0].get("traceback") or ""):
    problems.append("the crash record has no traceback through read_through_null")
pause = next((p for p in pauses if p.get("pause_id") == pause_id), {})
if pause.get("status") != "resumed" or pause.get("nodeid") != "test_2_pause.py::test_total_is_wrong":
    problems.append(f"the pause is {pause.get('status')} on {pause.get('nodeid')}, not resumed on the failing test")
for name in expected:
    print(f"  {name:26} {outcome.get(name, 'missing')}")
for p in problems:
    print(f"  PROBLEM: {p}")
sys.exit(1 if problems else 0)
EOF
)" || ok=0

if [ "$run_code" = 139 ]; then
  how="128 + 11: pytest died of SIGSEGV"
else
  how="see lpctl runs -a"
fi
stop_command="$lpd stop"
ctl="lpctl"  # as the reader will type it: with the socket when it is not the default one
if [ -n "${LPD_SOCKET:-}" ]; then
  stop_command="$lpd stop --socket $socket"
  ctl="lpctl --socket $socket"
fi
say "what happened"
cat <<EOF
- run $run_id ended with exit code $run_code ($how)
- helper server sample-counter: started once by lpd (conftest.py's lpd_process
  fixture); test_1_helper.py's two tests talked to the same process
- $paused_test paused on its failure and was resumed from outside:
    lpctl resume $pause_id --failure-reason "$reason"
- test_3_crash.py::test_segfault crashed the test process: lpd pinned the
  crash on that test, with its traceback (above)
- JUnit report: $junit
$summary

Where to look (lpd and lpctl are in $bin: export PATH="$bin:\$PATH"):
  $ctl runs -a
                                  every run, with its exit code
  $ctl crashes -v
                                  each crash: its test, signal and traceback
  $ctl events --run-id $run_id
                                  what lpd saw of this run, in order
  $ctl attach $run_id
                                  this run's output again
  $sample/
                                  the sample's tests and its helper server

lpd keeps running on $socket (state: $state_dir):
every pytest --pause-on-failure of this user now talks to it. Stop it with:
  $stop_command
EOF
if [ "$ok" != 1 ]; then
  echo "run-sample: the sample did not behave as described (PROBLEM lines above)" >&2
  exit 1
fi

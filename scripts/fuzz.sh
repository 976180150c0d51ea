#!/usr/bin/env bash
# Builds the libFuzzer targets (the "fuzz" preset: clang, ASan + UBSan) and
# runs each for a bounded time over its committed seed corpus in
# fuzz/corpus/<target>/. Exits non-zero when any target finds something;
# the reproducer is left in build/fuzz/findings/.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 12)
#        scripts/fuzz.sh --merge [SECONDS]         also minimises what the run
#                                                  found into fuzz/corpus/ (-set_cover_merge=1)
# FUZZ_JOBS targets run side by side (default: the number of cores, at most 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

merge=0
if [ "${1:-}" = "--merge" ]; then merge=1; shift; fi
seconds="${1:-12}"
jobs="${FUZZ_JOBS:-$(nproc)}"
[ "$jobs" -gt 2 ] && jobs=2

# target:max_len. The ring needs its 64-byte header, 4 KiB of data and a few
# write positions; crash records carry tracebacks of several KiB.
targets=(
  line_reader:512 message:2048 event_ring:4400
  job:4096 run:4096 exit_status:2048 pause:4096 crash:8192
  process_record:4096 test_result:4096 state_lines:16384
)

bash scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

out="$root/build/fuzz/findings"
work="$root/build/fuzz/work"
rm -rf "$work"
mkdir -p "$out" "$work"
# A sanitizer report aborts the input (libFuzzer keeps it); leaks count too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_one() {
  local name="$1" max_len="$2"
  local dict=()
  [ "$name" = line_reader ] || [ "$name" = event_ring ] || dict=(-dict="$root/fuzz/json.dict")
  mkdir -p "$work/$name"
  # New inputs go to the scratch directory first on the list, never into the
  # committed corpus.
  "$root/build/fuzz/fuzz/fuzz_$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$name-" "${dict[@]}" \
    "$work/$name" "$root/fuzz/corpus/$name" >"$work/$name.log" 2>&1
}

declare -A pid_of
failed=()
report() {
  local name="$1" rc="$2"
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || echo "?")
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-15s ok   %s runs in %ss\n' "$name" "$runs" "$seconds"
  else
    printf 'fuzz: %-15s FAILED (exit %s); log %s\n' "$name" "$rc" "$work/$name.log"
    grep -E 'ERROR|runtime error|invariant violated|Test unit written' "$work/$name.log" | head -20 || true
    failed+=("$name")
  fi
}

running=0
for entry in "${targets[@]}"; do
  name="${entry%%:*}"
  run_one "$name" "${entry##*:}" &
  pid_of[$!]="$name"
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    rc=0; wait -n -p done_pid || rc=$?
    report "${pid_of[$done_pid]}" "$rc"
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  rc=0; wait -n -p done_pid || rc=$?
  report "${pid_of[$done_pid]}" "$rc"
  running=$((running - 1))
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}; reproducers in $out (run the target with the file as argument)" >&2
  exit 1
fi

if [ "$merge" -eq 1 ]; then
  for entry in "${targets[@]}"; do
    name="${entry%%:*}"
    merged="$work/$name.merged"
    mkdir -p "$merged"
    "$root/build/fuzz/fuzz/fuzz_$name" -set_cover_merge=1 -max_len="${entry##*:}" "$merged" \
      "$root/fuzz/corpus/$name" "$work/$name" >"$work/$name.merge.log" 2>&1
    rm -rf "$root/fuzz/corpus/$name"
    mv "$merged" "$root/fuzz/corpus/$name"
    echo "fuzz: corpus/$name now $(ls "$root/fuzz/corpus/$name" | wc -l) files"
  done
fi

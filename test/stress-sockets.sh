#!/usr/bin/env bash
# Runs the socket-heavy suites (test/login, test/faults, test/gateway, test/oauth) several times
# in a row with tap's usual settings from package.json (2 jobs in parallel), to bring out the
# failures that happen only by chance: a port taken by someone else, a timing assumption, an
# order between parallel files. One run passing says little; twenty in a row say more.
#
#   test/stress-sockets.sh [-n RUNS | RUNS]    RUNS defaults to 20
#
# Prints one line per run and, at the end, how many runs failed; exits 1 if any did. The full
# tap output of every failed run is kept (its path is printed); that of a passing run is not.
# Set GATEHOUSE_REQUIRE_REDIS=1 to fail rather than skip the Redis suites when Redis is missing.
set -uo pipefail

# The comment above, as help.
help() { sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; }

runs=20
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || { help >&2; exit 2; }; runs="$2"; shift 2 ;;
    -h | --help) help; exit 0 ;;
    *) runs="$1"; shift ;;
  esac
done
case "$runs" in
  '' | *[!0-9]* | 0) echo "stress-sockets: RUNS must be a positive whole number, not '$runs'" >&2; exit 2 ;;
esac

suites=(test/login test/faults test/gateway test/oauth)
# tap expands a directory to the file types its plugins run, and with the TypeScript plugin off
# that finds no .ts file: it gets globs instead, quoted so that tap expands them, not the shell.
globs=()
for suite in "${suites[@]}"; do globs+=("$suite/**/*.test.ts"); done
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
logs="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-stress.XXXXXX")"

echo "stress-sockets: ${suites[*]}, $runs run(s); failed runs' output goes to $logs"
failed=0
started=$SECONDS
for ((run = 1; run <= runs; run++)); do
  log="$logs/run-$run.log"
  run_started=$SECONDS
  npx tap "${globs[@]}" >"$log" 2>&1
  status=$?
  seconds=$((SECONDS - run_started))
  # tap's last summary line, e.g. "# { total: 1200, pass: 1190, skip: 10 }"
  counts="$(grep -E '^# \{ total' "$log" | tail -n 1 | sed 's/^# //')"
  if [ "$status" -eq 0 ]; then
    printf 'run %d/%d: ok      %4d s  %s\n' "$run" "$runs" "$seconds" "$counts"
    rm -f "$log"
  else
    failed=$((failed + 1))
    printf 'run %d/%d: FAILED  %4d s  %s  (exit %d, output in %s)\n' "$run" "$runs" "$seconds" "$counts" "$status" "$log"
    # The failing files and assertions, indented; the log has the details.
    grep -E '^\s*not ok ' "$log" | head -n 20 | sed 's/^\s*/    /'
    if grep -q EADDRINUSE "$log"; then echo '    EADDRINUSE in the output: a port race is back'; fi
  fi
done

total=$((SECONDS - started))
printf 'stress-sockets: %d of %d runs failed (%d s in all, %d s per run on average)\n' "$failed" "$runs" "$total" $((total / runs))
rmdir "$logs" 2>/dev/null
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# What CI and a new user do: clone HEAD into a temporary folder, then run
# `make test` with the distribution's interpreter and `make demo` there.
# Prints each one's wall time and the test summary; exits non-zero if either
# fails. Uncommitted changes are not part of the check (it clones HEAD).
#
# Environment: FRESH_PYTHON (default /usr/bin/python3), KEEP=1 keeps the clone
# (it is always kept when the check fails, for its logs).
set -euo pipefail

repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
python=${FRESH_PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/tasker-fresh.XXXXXX")

if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
    echo "note: uncommitted changes in $repo are not part of this check"
fi
echo "fresh clone of $head in $work/tasker, PYTHON=$python"
git clone --quiet "$repo" "$work/tasker"
git -C "$work/tasker" checkout --quiet --detach "$head"
cd "$work/tasker"

run() {  # run NAME LOG COMMAND...: time a command, keep its output in LOG
    local name=$1 log=$2 start end status
    shift 2
    start=$(date +%s%N)
    set +e
    "$@" >"$log" 2>&1
    status=$?
    set -e
    end=$(date +%s%N)
    local tenths=$(((end - start) / 100000000))
    printf '%-10s exit %d in %d.%d s\n' "$name" "$status" $((tenths / 10)) $((tenths % 10))
    return "$status"
}

failed=0
run "make test" "$work/test.log" make test PYTHON="$python" || failed=1
grep -E '^(=+ .*(passed|failed|error).* =+|make: using .*)$' "$work/test.log" || true
if ((failed)); then
    echo "--- last lines of make test:"
    tail -40 "$work/test.log"
fi
run "make demo" "$work/demo.log" make demo PYTHON="$python" || failed=1
tail -3 "$work/demo.log"
if ((failed)); then
    echo "FAILED: the clone and its logs are kept in $work"
    exit 1
fi
echo "fresh-clone check passed"
[[ ${KEEP:-0} == 1 ]] || rm -rf "$work"

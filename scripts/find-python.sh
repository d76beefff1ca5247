#!/usr/bin/env bash
# Print the Python interpreter `make` should use: `python3` when it is 3.11 or
# newer, else the newest `python3.N` (N >= 11) on PATH. When none is found it
# prints `python3` anyway: on Debian, scripts/system-deps.sh then installs it.
set -uo pipefail

ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

if command -v python3 >/dev/null 2>&1 && ok python3; then
    command -v python3
    exit 0
fi
# Newest first: python3.14, python3.13, ... as found on PATH.
IFS=: read -r -a dirs <<<"${PATH:-}"
best=""
best_minor=0
for dir in "${dirs[@]}"; do
    for candidate in "$dir"/python3.[0-9]*; do
        name=${candidate##*/}
        [[ $name =~ ^python3\.([0-9]+)$ ]] || continue
        minor=${BASH_REMATCH[1]}
        ((minor >= 11 && minor > best_minor)) || continue
        [[ -x $candidate ]] && ok "$candidate" || continue
        best=$candidate
        best_minor=$minor
    done
done
echo "${best:-python3}"

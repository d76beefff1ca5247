#!/usr/bin/env bash
# Make sure $VENV is a working virtualenv of $PYTHON with the project
# installed (editable, with $EXTRAS), doing only what is missing.
#
# A venv is rebuilt, with one line saying why, when its interpreter link
# dangles (a venv copied or cloned from another machine) or when it was made
# by another Python than the one chosen now. Otherwise this does nothing.
#
# The project is (re)installed when pyproject.toml is newer than the install
# stamp. PyGObject 3.52 and later build against girepository-2.0 (GLib >= 2.80:
# Debian 13, current Fedora and Arch); where pkg-config cannot find it (Debian
# 12) PyGObject is held below 3.52 by a pip constraint.
#
# Environment: PYTHON (the interpreter to use), VENV (the venv folder),
# EXTRAS (the project's extras to install, comma separated).
set -euo pipefail

: "${PYTHON:?}" "${VENV:?}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    echo "error: tasker needs Python >= 3.11; '$PYTHON' is $("$PYTHON" -V 2>&1)." >&2
    echo "       Run make with PYTHON=/path/to/python3.11+" >&2
    exit 1
fi

where='import os, sys; print(os.path.realpath(sys.base_prefix), *sys.version_info[:3])'
wanted=$("$PYTHON" -c "$where")
venv_python="$VENV/bin/python"
reason=""
if [[ -e $VENV || -L $VENV ]]; then
    if [[ ! -e $venv_python ]]; then
        reason="its interpreter link is broken ($(readlink "$venv_python" 2>/dev/null || echo missing))"
    elif ! have=$("$venv_python" -c "$where" 2>/dev/null); then
        reason="its interpreter does not run"
    elif [[ $have != "$wanted" ]]; then
        reason="it was made by another Python ($have), not $PYTHON ($wanted)"
    fi
fi
if [[ -n $reason ]]; then
    echo "make: rebuilding $VENV: $reason"
    rm -rf "$VENV"
fi
if [[ ! -e $venv_python ]]; then
    echo "$PYTHON -m venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.installed"
if [[ -e $stamp && ! pyproject.toml -nt $stamp ]]; then
    exit 0
fi
constraints="$VENV/constraints.txt"
if pkg-config --exists girepository-2.0 2>/dev/null; then
    : >"$constraints"
else
    echo "make: girepository-2.0 not found (GLib < 2.80): holding PyGObject < 3.52"
    echo "PyGObject<3.52" >"$constraints"
fi
spec="."
[[ -n ${EXTRAS:-} ]] && spec=".[$EXTRAS]"
echo "$venv_python -m pip install -e '$spec' -c $constraints"
"$venv_python" -m pip install --disable-pip-version-check -e "$spec" -c "$constraints"
touch "$stamp"

#!/usr/bin/env bash
# Install the Debian packages tasker's development set-up needs, but only the
# ones that are missing. Called by `make setup`; safe to run any number of times.
#
# Needed for:
#   libgirepository-2.0-dev (GLib >= 2.80: Debian 13) or
#   libgirepository1.0-dev (Debian 12)                   building PyGObject (see below)
#   libcairo2-dev pkg-config gcc                         building PyGObject and pycairo
#   gir1.2-gtk-4.0                                       the GTK 4 typelibs (tasker.gtk, demo)
#   xvfb xauth                                           headless display for tests and `make demo`
#   python3 python3-venv python3-dev                     only when $PYTHON lacks them
#
# Environment:
#   PYTHON             interpreter used for the venv (default: python3)
#   SYSTEM_PACKAGES    override the base package list (space separated)
#   QT_PACKAGES        override the Qt libraries' list (see below; "" skips them)
#   SKIP_SYSTEM_DEPS=1 do nothing (non-Debian machines, pre-built CI images)
set -euo pipefail

PYTHON="${PYTHON:-python3}"
BASE_PACKAGES="libcairo2-dev pkg-config gir1.2-gtk-4.0 xvfb xauth gcc"

# --- Qt (tasker.qt, the `qt` extra: PySide6 wheels bring Qt itself) ----------
# The shared libraries PySide6's wheels link against but do not ship, for the
# offscreen platform (tests, headless demo tour) and the xcb platform (a real
# or Xvfb display). On a stock Debian 12 with GTK 4 installed only
# libxcb-icccm4 and libxcb-keysyms1 were missing (xcb would not load without
# them); the rest is listed so a minimal machine gets it too.
# QT_PACKAGES="" skips them.
QT_PACKAGES="${QT_PACKAGES-libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 \
libdbus-1-3 libglib2.0-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1}"
if [[ -z "${SYSTEM_PACKAGES:-}" ]]; then
    read -r -a qt_packages <<<"$QT_PACKAGES"
    packages+=("${qt_packages[@]}")
fi

log() { printf 'system-deps: %s\n' "$*" >&2; }

if [[ "${SKIP_SYSTEM_DEPS:-0}" == 1 ]]; then
    log "SKIP_SYSTEM_DEPS=1, not checking system packages"
    exit 0
fi

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    log "not a Debian-like system (no dpkg/apt-get); make sure the equivalents of"
    log "  ${SYSTEM_PACKAGES:-$BASE_PACKAGES} and the girepository-2.0 headers (or, with"
    log "  GLib < 2.80, girepository-1.0's) and Python >= 3.11 with headers and venv are installed"
    exit 0
fi

installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# PyGObject >= 3.52 builds against girepository-2.0, which Debian 13 has
# (libgirepository-2.0-dev) and Debian 12 does not; there `make setup` holds
# PyGObject below 3.52, which builds against libgirepository1.0-dev.
girepository_package() {
    if installed libgirepository-2.0-dev; then
        echo libgirepository-2.0-dev
        return
    fi
    # A fresh machine has no package lists yet: without them apt-cache knows
    # no package, and Debian 13 would wrongly get the old library.
    if ! compgen -G '/var/lib/apt/lists/*Packages*' >/dev/null && ((EUID == 0)); then
        log "no apt package lists yet: apt-get update"
        apt-get update >&2
    fi
    if apt-cache policy libgirepository-2.0-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        echo libgirepository-2.0-dev
    else
        echo libgirepository1.0-dev
    fi
}

if [[ -n "${SYSTEM_PACKAGES:-}" ]]; then
    read -r -a packages <<<"$SYSTEM_PACKAGES"
else
    read -r -a packages <<<"$BASE_PACKAGES"
    packages+=("$(girepository_package)")
fi

# Python itself: the interpreter, its venv support and its C headers.
python_headers() {
    "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        >/dev/null 2>&1
}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    packages+=(python3 python3-venv python3-dev)
else
    # On Debian `python3 -m venv` needs python3-venv, which ships ensurepip.
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
    python_headers || packages+=(python3-dev)
fi

missing=()
for pkg in "${packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
    if ((EUID != 0)); then
        log "missing Debian packages: ${missing[*]}"
        log "run this as root, then re-run make:"
        log "  apt-get update && apt-get install -y ${missing[*]}"
        exit 1
    fi
    log "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${missing[@]}"
fi

# Checks apt cannot fix when $PYTHON is not Debian's own python3.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "$PYTHON is not on PATH (set PYTHON=/path/to/python3.11+)"
    exit 1
fi
if ! python_headers; then
    log "Python.h not found for $("$PYTHON" -c 'import sys; print(sys.executable)')."
    log "python3-dev only provides headers for Debian's own python3; install the"
    log "development headers of this interpreter or set PYTHON=/usr/bin/python3"
    exit 1
fi

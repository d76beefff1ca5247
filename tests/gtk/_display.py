"""Give the GTK tests a display: the real one, or an Xvfb started for the session.

GTK 4 opens the display when ``gi.repository.Gtk`` is first imported, so
``ensure_display()`` must run before that: ``conftest.py`` calls it at import.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import subprocess
import time
from typing import Any

_xvfb: subprocess.Popen[bytes] | None = None
_problem: str | None = None


def ensure_display() -> str | None:
    """Make sure ``DISPLAY`` (or ``WAYLAND_DISPLAY``) is usable; return why not, or None."""
    global _xvfb, _problem
    if _xvfb is not None or _problem is not None:
        return _problem
    # An accessibility backend GTK ships for tests: no D-Bus needed, and
    # Gtk.test_accessible_has_property() works.
    os.environ.setdefault("GTK_A11Y", "test")
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        _problem = "no display and no Xvfb to start one"
        return _problem
    read_fd, write_fd = os.pipe()
    try:
        # -displayfd: Xvfb picks a free display number and writes it to us when ready.
        process = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 30
    try:
        while not number.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(0.0, remaining))
            if not ready:
                break
            chunk = os.read(read_fd, 32)
            if not chunk:
                break
            number += chunk
    finally:
        os.close(read_fd)
    if not number.strip().isdigit():
        process.kill()
        process.wait()
        _problem = "Xvfb did not start"
        return _problem
    _xvfb = process
    os.environ["DISPLAY"] = f":{number.strip().decode()}"
    atexit.register(stop_display)
    return None


def stop_display() -> None:
    """Stop the Xvfb this module started, if any."""
    global _xvfb
    process, _xvfb = _xvfb, None
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_gtk() -> Any:
    """Return the ``Gtk`` 4 module, or skip the calling test module cleanly."""
    import pytest

    problem = ensure_display()
    if problem is not None:
        pytest.skip(problem, allow_module_level=True)
    try:
        import gi

        gi.require_version("Gtk", "4.0")
        from gi.repository import Gtk
    except (ImportError, ValueError) as error:
        pytest.skip(f"GTK 4 is not available: {error}", allow_module_level=True)
    if not Gtk.init_check():
        pytest.skip(f"GTK cannot open display {os.environ.get('DISPLAY')}", allow_module_level=True)
    return Gtk

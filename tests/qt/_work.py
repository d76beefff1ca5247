"""Task bodies for the Qt tests (module level, so worker processes can import them)."""

from __future__ import annotations

from typing import Any


def upper(context: Any, text: str) -> str:
    """Report half-way, then return ``text`` in capitals."""
    context.set_progress(0.5)
    return text.upper()


def fail(context: Any, message: str) -> None:
    """Raise ``ValueError(message)``."""
    raise ValueError(message)


def spin(context: Any) -> str:
    """Send this process's pid as event ``pid``, then poll the cancel flag until cancelled."""
    import os
    import time

    context.send_event("pid", os.getpid())
    while not context.is_cancelled():
        time.sleep(0.001)  # a worker polling its flag, as cooperative tasks do
    return "stopped"

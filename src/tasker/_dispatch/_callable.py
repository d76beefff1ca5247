"""Dispatch through any ``scheduler(fn, *args)`` callable the application supplies."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._common import run_logged
from ._thread import ThreadDispatcher

__all__ = ["CallableDispatcher"]


class CallableDispatcher:
    """Wraps a scheduler callable such as a toolkit's "run this on the UI thread".

    The callable is called as ``scheduler(fn)``; ``fn`` returns False so
    idle-style schedulers run it once. Delayed calls wait on a private
    timer thread, then go through the scheduler.
    """

    def __init__(self, scheduler: Callable[..., Any]) -> None:
        self._scheduler = scheduler
        self._timer = ThreadDispatcher("tasker-timer")  # its thread starts on first use

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Hand ``fn`` to the scheduler."""

        def once(*_: object) -> bool:
            run_logged(fn)
            return False

        self._scheduler(once)

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Hand ``fn`` to the scheduler after ``delay`` seconds."""
        self._timer.call_later(delay, lambda: self.call_soon(fn))

    def is_dispatch_thread(self) -> bool:
        """A foreign scheduler does not say: the main thread is taken to be its thread."""
        return threading.current_thread() is threading.main_thread()

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """A foreign scheduler cannot be pumped from here: let the caller wait."""
        return True if predicate() else None

    def close(self) -> None:
        """Stop the timer thread, if one was started."""
        self._timer.close()

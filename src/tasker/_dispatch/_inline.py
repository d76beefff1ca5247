"""Run callbacks immediately in whichever thread produces them (tests, scripts)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._common import run_logged

__all__ = ["InlineDispatcher"]


class InlineDispatcher:
    """Runs each callable at once, in the calling thread, serialised by a lock.

    Meant for tests and scripts without a main loop: callbacks run on
    background threads, one at a time. ``call_later`` does not wait, so
    updates are not rate-limited.
    """

    def __init__(self) -> None:
        # Re-entrant: a callback may start or cancel tasks, which dispatch again.
        self._lock = threading.RLock()

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` now."""
        with self._lock:
            run_logged(fn)

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` now; the inline dispatcher has no clock."""
        self.call_soon(fn)

    def is_dispatch_thread(self) -> bool:
        """Always True: callbacks run in whichever thread asks."""
        return True

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """Nothing to dispatch here: let the caller wait."""
        return True if predicate() else None

    def close(self) -> None:
        """Nothing to release."""

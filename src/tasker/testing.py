"""Test helpers: run the main loop until something happens, and a managed fixture.

Use ``pytest_plugins = ["tasker.testing"]`` in a ``conftest.py`` to get the
``task_manager`` fixture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ._manager import TaskManager

__all__ = ["drain", "run_until", "task_manager"]


def run_until(
    predicate: Callable[[], object], timeout: float = 10.0, *, context: Any = None
) -> None:
    """Run the GLib main context until ``predicate()`` is true.

    Raises ``TimeoutError`` if it is still false after ``timeout`` seconds.
    ``context`` defaults to the default main context; the calling thread must
    be able to own it (the test's main thread, normally).
    """
    from gi.repository import GLib

    from ._dispatch._glib import iterate_until

    ctx = context or GLib.MainContext.default()
    outcome = iterate_until(ctx, lambda: bool(predicate()), timeout)
    if outcome is None:
        raise RuntimeError("another thread owns the main context; run_until cannot run it")
    if not outcome:
        raise TimeoutError(f"condition still false after {timeout:g} s: {predicate!r}")


def drain(timeout: float = 0.05) -> None:
    """Run the default main context for ``timeout`` seconds, dispatching whatever is ready."""
    deadline = time.monotonic() + timeout
    run_until(lambda: time.monotonic() >= deadline, timeout + 1.0)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pass
else:

    @pytest.fixture
    def task_manager() -> Iterator[TaskManager]:
        """A fresh ``TaskManager`` on the GLib main loop, shut down after the test.

        The test drives the loop with ``run_until``; after the test any task
        still running is cancelled and every worker stopped.
        """
        from ._dispatch._glib import GLibDispatcher

        manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=0.5)
        try:
            yield manager
        finally:
            manager.shutdown(timeout=5.0)

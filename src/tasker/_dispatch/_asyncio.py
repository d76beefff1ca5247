"""Dispatch onto an asyncio event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._common import run_logged

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncioDispatcher"]


class AsyncioDispatcher:
    """Runs callables on the thread of an asyncio event loop.

    Use it when the application's main thread runs asyncio (for example
    PyGObject's ``gi.events`` loop, or a headless asyncio program).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` on the loop's thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(run_logged, fn)

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop's thread after ``delay`` seconds."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, run_logged, fn)

    def is_dispatch_thread(self) -> bool:
        """True inside the loop (called from a coroutine or callback it runs)."""
        import asyncio

        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """Run the loop until ``predicate()`` holds, if it is idle and this is its thread.

        Returns None when the loop is running (in this thread or another): the
        caller must wait by other means (in a coroutine, ``await`` instead).
        """
        if predicate():
            return True
        if self._loop.is_running() or threading.current_thread() is not threading.main_thread():
            return None

        import asyncio

        async def poll() -> bool:
            # A running loop has no "run until predicate" primitive; a short
            # asyncio.sleep lets queued callbacks run between checks.
            while not predicate():
                await asyncio.sleep(0.001)
            return True

        try:
            return self._loop.run_until_complete(asyncio.wait_for(poll(), timeout))
        except TimeoutError:
            return False

    def close(self) -> None:
        """Nothing to release: the loop belongs to the application."""

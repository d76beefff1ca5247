"""The asyncio loop that runs coroutine tasks, on a thread the manager owns."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LoopThread"]


class LoopThread:
    """An asyncio event loop running on a private daemon thread, started on first use.

    Alternatively wraps a loop the application already runs (``TaskManager(loop=...)``),
    in which case it starts and stops nothing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._external = loop
        self._loop: asyncio.AbstractEventLoop | None = loop
        self._thread: threading.Thread | None = None
        # Guards lazy start and stop only.
        self._lock = threading.Lock()

    def call_soon(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on the loop, starting the loop thread if needed.

        Returns False, dropping ``fn``, once ``stop`` has closed the loop.
        """
        try:
            self._ensure_loop().call_soon_threadsafe(fn, *args)
        except RuntimeError:  # "Event loop is closed"
            return False
        return True

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop after ``delay`` seconds."""
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(loop.call_later, delay, fn, *args)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (started if it was not)."""
        return self._ensure_loop()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="tasker-asyncio", daemon=True
                )
                thread.start()
                ready.wait()
                self._thread = thread
                self._loop = loop
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def stop(self, timeout: float) -> bool:
        """Cancel what still runs on the private loop, stop it and join its thread.

        Returns False if the thread did not end within ``timeout`` seconds.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            if thread is None or loop is None:
                return True
            self._thread = None

        async def cancel_all() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            loop.stop()

        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.create_task, cancel_all())
        thread.join(timeout + 1.0)
        return not thread.is_alive()

"""Dispatch onto a private thread (headless programs without a main loop)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from ._common import run_logged

__all__ = ["ThreadDispatcher"]


class ThreadDispatcher:
    """Runs callables on one private daemon thread, started on first use.

    For command-line tools and services that have no GLib or asyncio loop:
    callbacks still run one at a time, in order, off the worker threads.
    """

    def __init__(self, name: str = "tasker-dispatch") -> None:
        self._name = name
        # Guards the heap, the thread handle and _closed; never held while fn runs.
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` for the dispatch thread."""
        self.call_later(0.0, fn)

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the dispatch thread after ``delay`` seconds."""
        when = time.monotonic() + max(0.0, delay)
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (when, next(self._order), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        fn = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            run_logged(fn)

    def in_dispatch_thread(self) -> bool:
        """True when called from the dispatch thread."""
        return threading.current_thread() is self._thread

    def is_dispatch_thread(self) -> bool:
        """True when called from the dispatch thread."""
        return self.in_dispatch_thread()

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """Callbacks run on the private thread: let the caller wait."""
        return True if predicate() else None

    def close(self) -> None:
        """Stop the dispatch thread; callables not yet run are dropped."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            thread, self._thread = self._thread, None
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

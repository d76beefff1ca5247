"""Dispatch onto the GLib main loop (the default when PyGObject is installed)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from gi.repository import GLib

from ._common import run_logged

__all__ = ["GLibDispatcher"]

#: The longest delay a GLib timeout source takes (G_MAXUINT ms, about 49.7 days).
_MAX_DELAY_MS = 0xFFFFFFFF


class GLibDispatcher:
    """Runs callables on the thread that runs a GLib main context.

    All callables share one idle source that drains a thread-safe queue in
    time slices of ``slice_ms`` milliseconds, so a flood of work from
    background threads cannot hold the main loop for a frame.
    """

    def __init__(
        self,
        context: GLib.MainContext | None = None,
        *,
        priority: int = GLib.PRIORITY_DEFAULT_IDLE,
        slice_ms: float = 4.0,
    ) -> None:
        default = GLib.MainContext.default()
        self._context = context or default
        # On the default context one GLib.idle_add (timeout_add) call does what
        # creating, setting up and attaching a source does in four; each call
        # into GLib releases the GIL, a chance for another thread to take it.
        self._on_default = self._context == default
        self._priority = priority
        self._slice = slice_ms / 1000.0
        self._queue: deque[Callable[[], object]] = deque()
        # Guards _source_attached only; deque appends and pops are atomic.
        self._lock = threading.Lock()
        self._source_attached = False
        self._closed = False

    @property
    def context(self) -> GLib.MainContext:
        """The main context callables run on."""
        return self._context

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` for the main context's thread."""
        self._queue.append(fn)
        with self._lock:
            if self._source_attached or self._closed:
                return
            self._source_attached = True
        if self._on_default:
            GLib.idle_add(self._drain, priority=self._priority)  # type: ignore[call-arg]  # stubs lack it
            return
        source = GLib.idle_source_new()
        source.set_priority(self._priority)
        source.set_callback(self._drain)  # type: ignore[no-untyped-call]
        source.attach(self._context)

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the main context's thread after ``delay`` seconds."""
        if self._closed:
            return

        def fire(*_: object) -> bool:
            run_logged(fn)
            return GLib.SOURCE_REMOVE

        # GLib takes a guint of milliseconds: a longer delay (a tiny update_rate) is cut to it.
        delay_ms = max(0, round(min(delay * 1000.0, _MAX_DELAY_MS)))
        if self._on_default:
            GLib.timeout_add(delay_ms, fire, priority=self._priority)  # type: ignore[call-arg]
            return
        source = GLib.timeout_source_new(delay_ms)
        source.set_priority(self._priority)
        source.set_callback(fire)  # type: ignore[no-untyped-call]
        source.attach(self._context)

    def _drain(self, *_: object) -> bool:
        deadline = time.monotonic() + self._slice
        queue = self._queue
        while queue:
            run_logged(queue.popleft())
            if time.monotonic() >= deadline and queue:
                return GLib.SOURCE_CONTINUE
        with self._lock:
            if queue:  # something arrived after the loop's last check
                return GLib.SOURCE_CONTINUE
            self._source_attached = False
        return GLib.SOURCE_REMOVE

    def is_dispatch_thread(self) -> bool:
        """True on the thread that runs the main context (for the default one: the main thread).

        For the default context the main thread is taken to be its thread, as
        ``run_until`` does (no GLib call: this runs on every main-thread call).
        """
        if self._on_default:
            return threading.current_thread() is threading.main_thread()
        return bool(self._context.is_owner())

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """Iterate the main context until ``predicate()`` holds or ``timeout`` passes.

        Returns None, doing nothing, when called off the thread that runs the
        context (for the default context: the main thread), so callbacks never
        run on a thread that merely waits for them.
        """
        if (
            self._context == GLib.MainContext.default()
            and threading.current_thread() is not threading.main_thread()
        ):
            return None
        return iterate_until(self._context, predicate, timeout)

    def close(self) -> None:
        """Stop accepting work; queued callables are dropped."""
        self._closed = True
        self._queue.clear()


def iterate_until(
    context: GLib.MainContext, predicate: Callable[[], bool], timeout: float | None
) -> bool | None:
    """Run ``context`` until ``predicate()`` holds; False if ``timeout`` seconds pass first.

    Returns None without waiting when another thread owns the context.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    if predicate():
        return True
    if not context.acquire():
        return None
    try:
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # A timeout source bounds the blocking iteration; it wakes us up.
            wake = GLib.timeout_source_new(
                50 if remaining is None else max(1, min(50, round(remaining * 1000)))
            )
            wake.set_callback(lambda *_: GLib.SOURCE_REMOVE)  # type: ignore[no-untyped-call]
            wake.attach(context)
            try:
                context.iteration(True)
            finally:
                wake.destroy()
        return True
    finally:
        context.release()

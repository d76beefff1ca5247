"""Main-thread dispatchers: how background threads get work onto the UI thread.

A dispatcher runs callables on one thread, in the order they were handed
over. The manager needs three things from it, all callable from any thread:
``call_soon(fn)``, ``call_later(delay, fn)`` and ``run_until(predicate,
timeout)`` (used by ``wait_until_settled`` when it is called on the dispatch
thread itself, so waiting does not starve the callbacks it waits for).
A dispatcher may also offer ``is_dispatch_thread()`` (the shipped ones do):
``call_on_main_thread`` then runs its function at once on that thread
instead of waiting for itself; without it, the main thread is assumed.

A dispatcher may also define ``attach_manager(manager)``: a ``TaskManager``
calls it once, from any thread, when it starts delivering through the
dispatcher. A dispatcher that knows when its loop ends for good (Qt's
``aboutToQuit``) uses it to shut those managers down; the hook is optional
and names no toolkit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._asyncio import AsyncioDispatcher
from ._callable import CallableDispatcher
from ._inline import InlineDispatcher
from ._thread import ThreadDispatcher

__all__ = [
    "AsyncioDispatcher",
    "CallableDispatcher",
    "Dispatcher",
    "InlineDispatcher",
    "ThreadDispatcher",
    "resolve_dispatcher",
]


@runtime_checkable
class Dispatcher(Protocol):
    """Runs callables on one thread, in order; every method is thread-safe."""

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on the dispatch thread as soon as possible."""

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on the dispatch thread after ``delay`` seconds."""

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """On the dispatch thread, dispatch until ``predicate()`` holds or the timeout passes.

        Returns whether the predicate holds, or None (at once) when called
        from another thread: the caller then waits by its own means.
        """

    def close(self) -> None:
        """Release resources the dispatcher owns (threads, sources)."""


def resolve_dispatcher(scheduler: Any) -> Dispatcher:
    """Turn the ``scheduler`` argument of ``TaskManager`` into a dispatcher.

    ``None`` picks GLib when PyGObject can be imported, else a private
    dispatch thread. ``GLib.idle_add`` itself becomes the GLib dispatcher;
    an asyncio loop becomes an ``AsyncioDispatcher``; any other callable
    ``scheduler(fn, *args)`` is wrapped.
    """
    import sys

    if scheduler is None:
        try:
            from ._glib import GLibDispatcher
        except ImportError:
            return ThreadDispatcher()
        return GLibDispatcher()
    if isinstance(scheduler, Dispatcher):
        return scheduler
    asyncio = sys.modules.get("asyncio")  # no loop can exist unless asyncio is imported
    if asyncio is not None and isinstance(scheduler, asyncio.AbstractEventLoop):
        return AsyncioDispatcher(scheduler)
    if callable(scheduler):
        if _is_glib_idle_add(scheduler):
            from ._glib import GLibDispatcher

            return GLibDispatcher()
        return CallableDispatcher(scheduler)
    raise TypeError(
        "scheduler must be None, a dispatcher, an asyncio loop or a callable "
        f"scheduler(fn, *args), not {type(scheduler).__name__}"
    )


def _is_glib_idle_add(fn: Any) -> bool:
    import sys

    glib = sys.modules.get("gi.repository.GLib")
    return glib is not None and fn is getattr(glib, "idle_add", None)

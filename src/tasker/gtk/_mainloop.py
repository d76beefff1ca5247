"""Helpers for applications that run asyncio on the GLib main loop (PyGObject's ``gi.events``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from gi.repository import GLib

from .._dispatch._glib import GLibDispatcher
from .._manager import TaskManager

__all__ = ["glib_event_loop", "main_loop_manager", "shutdown_async"]


def glib_event_loop() -> asyncio.AbstractEventLoop:
    """Return the asyncio loop that runs on the default GLib main context.

    Needs ``asyncio.set_event_loop_policy(gi.events.GLibEventLoopPolicy())``
    first: only then does ``Gtk.Application.run()`` (or ``GLib.MainLoop.run()``)
    also run that asyncio loop.
    """
    from gi.events import GLibEventLoopPolicy  # type: ignore[import-untyped]

    policy = asyncio.get_event_loop_policy()
    if not isinstance(policy, GLibEventLoopPolicy):
        raise RuntimeError(
            "the asyncio event loop policy is not gi.events.GLibEventLoopPolicy; call "
            "asyncio.set_event_loop_policy(gi.events.GLibEventLoopPolicy()) before "
            "creating the manager, so the application's main loop also runs asyncio"
        )
    loop: asyncio.AbstractEventLoop = policy.get_event_loop_for_context(GLib.MainContext.default())
    return loop


def main_loop_manager(**options: Any) -> TaskManager:
    """Create a ``TaskManager`` whose coroutine tasks run on the GLib main loop itself.

    Its coroutines run on the main thread, between the frames GTK draws, so
    they may touch widgets directly and await Gio's ``*_async`` calls; they
    must never block or compute for long, or the window freezes. Thread
    and process tasks of this manager run in the background as usual, and
    callbacks arrive on the main loop. Needs the ``gi.events`` loop policy
    (see ``glib_event_loop``). Other keyword arguments are manager options.

    Shut it down with ``await shutdown_async(manager)`` while the loop still
    runs: a blocking ``shutdown()`` on the main thread cannot let the
    cancelled coroutines finish, because they need that very loop.
    """
    loop = options.pop("loop", None) or glib_event_loop()
    scheduler = options.pop("scheduler", None) or GLibDispatcher()
    return TaskManager(scheduler, loop=loop, **options)


async def shutdown_async(manager: TaskManager | None = None, timeout: float = 5.0) -> bool:
    """Cancel every task, wait (without blocking the loop) until all have settled, shut down.

    Use it from a coroutine on the application's main loop (``gi.events``),
    for example when the main window closes. Returns True if every task's
    ``when_done`` ran within ``timeout`` seconds; then calls
    ``manager.shutdown()``, which kills what is left either way.
    ``manager=None`` means the global ``tasker.task_mgr``.
    """
    if manager is None:
        from .. import task_mgr

        manager = task_mgr
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("shutdown_async() must run on the main thread's event loop")
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def on_updated(sender: object, **_: object) -> None:
        if not manager.has_tasks() and not done.done():
            done.set_result(None)

    manager.tasks_updated.connect(on_updated)
    try:
        for task in list(manager):
            task.cancel()
        if manager.has_tasks():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, timeout)
        settled = not manager.has_tasks()
    finally:
        manager.tasks_updated.disconnect(on_updated)
    manager.shutdown(timeout=timeout)
    return settled

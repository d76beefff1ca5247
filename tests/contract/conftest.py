"""One behaviour contract, four main-thread dispatchers: GLib, Qt, asyncio and a thread.

The ``env`` fixture is parametrized over the dispatchers; each test runs on
every one. Qt runs on the offscreen platform (chosen before pytest-qt makes
its ``QApplication``); a dispatcher whose toolkit is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasker import TaskManager

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DISPATCHERS = ("glib", "qt", "asyncio", "thread")


class Env:
    """A manager on one dispatcher, the thread its callbacks must run on, and a way to wait."""

    def __init__(self, name: str, manager: TaskManager, wait: Callable[..., Any]) -> None:
        self.name = name
        self.manager = manager
        self._wait = wait
        self.main_ident: int | None = None

    def wait(self, predicate: Callable[[], object], timeout: float = 20.0) -> None:
        """Let the dispatcher run until ``predicate()`` holds; TimeoutError after ``timeout``."""
        if not self._wait(lambda: bool(predicate()), timeout):
            raise TimeoutError(f"{self.name}: still false after {timeout:g} s: {predicate!r}")


def _wait_by_polling(predicate: Callable[[], bool], timeout: float) -> bool:
    """For the thread dispatcher: callbacks run on its own thread, so this one only watches."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        tick.wait(0.002)
    return True


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.fixture(params=DISPATCHERS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """A fresh manager on each dispatcher in turn, shut down after the test."""
    options: dict[str, Any] = {"max_workers": 2, "max_threads": 4, "cancel_grace": 0.3}
    name = request.param
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if name == "glib":
        _needs("gi")
        from gi.repository import GLib

        from tasker import GLibDispatcher
        from tasker._dispatch._glib import iterate_until

        manager = TaskManager(GLibDispatcher(), **options)
        made = Env(name, manager, lambda p, t: iterate_until(GLib.MainContext.default(), p, t))
        made.main_ident = threading.get_ident()
    elif name == "qt":
        _needs("PySide6")
        _needs("pytestqt")
        request.getfixturevalue("qapp")
        from tasker.qt import QtDispatcher

        dispatcher = QtDispatcher()
        manager = TaskManager(dispatcher, **options)
        made = Env(name, manager, dispatcher.run_until)
        made.main_ident = threading.get_ident()
    elif name == "asyncio":
        import asyncio

        from tasker import AsyncioDispatcher

        loop = asyncio.new_event_loop()
        asyncio_dispatcher = AsyncioDispatcher(loop)
        manager = TaskManager(asyncio_dispatcher, **options)
        made = Env(name, manager, asyncio_dispatcher.run_until)
        made.main_ident = threading.get_ident()
        cleanup = loop.close
    else:
        from tasker import ThreadDispatcher

        thread_dispatcher = ThreadDispatcher(name="contract-dispatch")
        manager = TaskManager(thread_dispatcher, **options)
        made = Env(name, manager, _wait_by_polling)
        known = threading.Event()
        idents: list[int] = []
        thread_dispatcher.call_soon(lambda: (idents.append(threading.get_ident()), known.set()))
        assert known.wait(10)
        made.main_ident = idents[0]
        cleanup = thread_dispatcher.close  # passed in, so the manager leaves it running
    try:
        yield made
    finally:
        manager.shutdown(timeout=10.0)
        cleanup()

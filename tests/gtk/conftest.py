"""GTK test set-up: a display (Xvfb when there is none) and GTK-side fixtures.

Every test module here starts with ``Gtk = load_gtk()``, which skips the
module when PyGObject, GTK 4 or a display is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasker import TaskManager

from ._display import ensure_display, stop_display

# Before any test module imports Gtk, which opens the display at import time.
ensure_display()


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_display()


@pytest.fixture
def one_thread_manager() -> Iterator[TaskManager]:
    """A GLib-dispatched manager with a single worker thread, so a second thread task waits."""
    from tasker import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), max_threads=1, max_workers=2, cancel_grace=0.5)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=5.0)


@pytest.fixture
def window() -> Iterator[Any]:
    """A presented ``Gtk.Window`` (1000x700), destroyed after the test."""
    from gi.repository import Gtk

    win = Gtk.Window(title="tasker test")
    win.set_default_size(1000, 700)
    try:
        yield win
    finally:
        win.destroy()


class Gate:
    """A thread task body that reports, then waits for the test to open the gate.

    It returns early (the task ends cancelled) when the task is cancelled, so
    shutting the manager down never waits on a closed gate.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def open(self) -> None:
        self.opened.set()

    def __call__(
        self, context: Any, progress: float = 0.0, message: str | None = None, fail: bool = False
    ) -> str:
        context.set_progress(progress)
        context.set_message(message)
        self.entered.set()
        while not self.opened.wait(0.005):
            if context.is_cancelled():
                return "stopped"
        if fail:
            raise ValueError("the gate was a trap")
        return "passed"


@pytest.fixture
def gate() -> Gate:
    """A fresh ``Gate``."""
    return Gate()
